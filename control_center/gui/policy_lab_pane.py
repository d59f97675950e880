"""The Policy lab pane: pick a pool policy, set per-PE values, watch the selections.

*Apply to the pool* restarts every pool element, one after the other, with the chosen
policy (the value box sets weight, priority or degradation where the family has one);
each PE row can be restarted alone with its own value. The chart counts, per PE, how
often a registrar's Handle Resolution Response put it first (the policy's pick), how often
it was listed at all, and how many sessions pool users opened on it; below it, the last
response with the values the policy compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from control_center.gui.engine import CommandResult, EngineBridge
from control_center.gui.view_model import ViewModel
from control_center.orchestrator import Orchestrator
from control_center.policy_lab import (
    FAMILIES,
    SelectionCounter,
    policy_text,
    pool_elements,
    with_component_option,
)
from control_center.trace_store import Exchange, TraceStore
from rsplib.wire.constants import FRACTION_MAX
from rsplib.wire.csp import ComponentGroup, component_id

SERIES: Final = (
    ("picks", "picked first", QColor("#2ca02c")),
    ("listed", "listed", QColor("#9fd39f")),
    ("sessions", "sessions opened", QColor("#f2b705")),
)


class SelectionChart(QWidget):
    """Grouped bars per PE (see the module docstring)."""

    def __init__(self, counter: SelectionCounter, names: list[tuple[int, str]]) -> None:
        super().__init__()
        self.counter = counter
        self.names = names  # (PE identifier, label)
        self.setMinimumHeight(160)

    def sizeHint(self) -> QSize:
        return QSize(520, 220)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self.paint_chart(painter, QRectF(self.rect()))
        finally:
            painter.end()

    def paint_chart(self, painter: QPainter, area: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(area, QColor("#ffffff"))
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        painter.setFont(font)
        counts = {key: getattr(self.counter, key) for key, _, _ in SERIES}
        top = max([1, *(c[pe] for c in counts.values() for pe, _ in self.names)])
        left, bottom = area.left() + 34, area.bottom() - 34
        height = bottom - area.top() - 24
        groups = max(1, len(self.names))
        group_width = (area.width() - 44) / groups
        bar = group_width / (len(SERIES) + 1)
        painter.setPen(QColor("#909090"))
        painter.drawLine(int(left), int(bottom), int(area.right() - 6), int(bottom))
        painter.drawText(QRectF(area.left(), area.top() + 16, 30, 14), Qt.AlignmentFlag.AlignRight,
                         str(top))  # fmt: skip
        for index, (pe, label) in enumerate(self.names):
            x0 = left + index * group_width + bar / 2
            for offset, (key, _, colour) in enumerate(SERIES):
                value = counts[key][pe]
                h = height * value / top
                rect = QRectF(x0 + offset * bar, bottom - h, bar * 0.9, h)
                painter.fillRect(rect, colour)
                if value:
                    painter.setPen(QColor("#303030"))
                    painter.drawText(QRectF(rect.left() - 6, rect.top() - 14, bar + 12, 12),
                                     Qt.AlignmentFlag.AlignCenter, str(value))  # fmt: skip
            painter.setPen(QColor("#202020"))
            painter.drawText(QRectF(x0 - bar / 2, bottom + 4, group_width, 14),
                             Qt.AlignmentFlag.AlignCenter, label)  # fmt: skip
        x = left
        for _key, text, colour in SERIES:
            painter.fillRect(QRectF(x, area.top() + 4, 10, 10), colour)
            painter.setPen(QColor("#202020"))
            painter.drawText(QRectF(x + 14, area.top() + 1, 120, 14), Qt.AlignmentFlag.AlignLeft,
                             text)  # fmt: skip
            x += 130


class PolicyLabPane(QWidget):
    def __init__(
        self,
        bridge: EngineBridge,
        model: ViewModel,
        store: TraceStore,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.model = model
        self.store = store
        self.counter = SelectionCounter()
        self.pes = pool_elements(bridge.scenario)
        ids = {c.name: c.identifier for c in bridge.scenario.components}
        names = [(ids[name] or 0, name) for name in self.pes]

        self.family_box = QComboBox()
        self.family_box.addItems(list(FAMILIES))
        self.family_box.currentTextChanged.connect(self._family_changed)
        self.value_box = self._value_box()
        apply = QPushButton("Apply to the pool (restart its PEs)")
        apply.clicked.connect(self.apply_to_pool)
        reset = QPushButton("Reset counts")
        reset.clicked.connect(self.reset)
        top = QHBoxLayout()
        top.addWidget(QLabel("Pool policy:"))
        top.addWidget(self.family_box)
        self.value_label = QLabel("")
        top.addWidget(self.value_label)
        top.addWidget(self.value_box)
        top.addWidget(apply)
        top.addStretch(1)
        top.addWidget(reset)

        grid = QGridLayout()
        self.pe_values: dict[str, QDoubleSpinBox] = {}
        for row, name in enumerate(self.pes):
            grid.addWidget(QLabel(name), row, 0)
            box = self._value_box()
            self.pe_values[name] = box
            grid.addWidget(box, row, 1)
            button = QPushButton("Restart with this value")
            button.clicked.connect(lambda _=False, n=name: self.apply_to([n]))
            grid.addWidget(button, row, 2)
        grid.setColumnStretch(3, 1)

        self.chart = SelectionChart(self.counter, names)
        self.last_label = QLabel("No handle resolution traced yet.")
        self.last_label.setWordWrap(True)
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.last_label)
        layout.addWidget(self.status)
        self._family_changed(self.family_box.currentText())
        self.done: list[str] = []
        bridge.signals.command_finished.connect(self._command_finished)

    @staticmethod
    def _value_box() -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(2)
        box.setRange(0.0, 1_000_000.0)
        box.setValue(1.0)
        return box

    def _family_changed(self, family: str) -> None:
        meaning = FAMILIES[family][1]
        self.value_label.setText(f"{meaning}:" if meaning else "")
        for box in [self.value_box, *self.pe_values.values()]:
            box.setEnabled(meaning is not None)

    # ------------------------------------------------------------------ actions

    def apply_to_pool(self) -> None:
        for box in self.pe_values.values():
            box.setValue(self.value_box.value())
        self.apply_to(self.pes)

    def apply_to(self, names: list[str]) -> None:
        family = self.family_box.currentText()
        try:
            policies = {n: policy_text(family, self.pe_values[n].value()) for n in names}
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"restarting {', '.join(names)} with {family}…")

        async def restart(orchestrator: Orchestrator) -> str:
            for name in names:
                orchestrator.scenario = with_component_option(
                    orchestrator.scenario, name, "policy", policies[name]
                )
                # One at a time: the others keep serving the pool meanwhile.
                await orchestrator.restart(name)
            verb = "uses" if len(names) == 1 else "use"
            return f"{', '.join(names)} now {verb} {family}"

        self.bridge.submit(f"policy: {family}", restart)

    def _command_finished(self, result: CommandResult) -> None:
        if not result.label.startswith("policy:"):
            return
        text = result.message if result.ok else f"{result.label} failed: {result.message}"
        self.done.append(text)
        self.status.setText(text)

    def reset(self) -> None:
        self.counter.reset()
        self.chart.update()
        self.last_label.setText("Counts reset.")

    # ------------------------------------------------------------------ trace

    def feed(self, exchanges: Iterable[Exchange]) -> None:
        if self.counter.feed(exchanges, self.store.ends):
            self.chart.update()
            self._show_last()

    def _show_last(self) -> None:
        last = self.counter.last
        if last is None:
            return
        parts = []
        for index, pe in enumerate(last.pes):
            name = self.model.node_of_id(component_id(ComponentGroup.POOL_ELEMENT, pe))
            text = name or f"0x{pe:08x}"
            values = []
            if last.loads:
                values.append(f"load {last.loads[index] / FRACTION_MAX:.0%}")
            if last.weights:
                values.append(f"weight {last.weights[index]}")
            if last.priorities:
                values.append(f"priority {last.priorities[index]}")
            parts.append(text + (f" ({', '.join(values)})" if values else ""))
        registrar = self.model.node_of_id(last.registrar) or f"0x{last.registrar:016x}"
        self.last_label.setText(f"Last resolution by {registrar}: " + " > ".join(parts))
