"""Sequence chart of the live trace: a lane per component, an arrow per message.

:class:`SequenceChart` paints only the rows in view, so a long trace costs no more than a
short one. Live, it follows the newest message; scrolling back (wheel, scroll bar) or
*Pause* freezes the view while messages keep arriving. Filters pick protocols and match
text against message type and component names. A click selects a message and
:class:`SequencePane` shows all its decoded fields, and the raw bytes when the sender
traced them (``--trace-raw``). *Export* writes what is in view as SVG or PNG for slides.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QWheelEvent,
)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from control_center.gui.message_dots import CATEGORY_COLOURS
from control_center.trace_store import Exchange
from rsplib.trace.record import record_json

ROW: Final = 22
HEADER: Final = 34
TIME_COLUMN: Final = 74
MAX_ROWS: Final = 20_000
PROTOCOLS: Final = ("asap", "enrp", "fgp")

#: (sender, receiver) component ids of an exchange.
EndsOf = Callable[[Exchange], tuple[int | None, int | None]]
#: Display name of a component id.
NameOf = Callable[[int], str]


def describe(exchange: Exchange, name_of: NameOf) -> str:
    """Every field of the message's records, for the details pane."""
    parts = []
    for label, record in (("sent", exchange.sent), ("received", exchange.received)):
        if record is None:
            continue
        obj = record_json(record)
        raw = obj.pop("raw", None)
        stamp = datetime.datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
        parts.append(f"{label} by {name_of(record.component)} at {stamp}")
        parts.append(json.dumps(obj, indent=2))
        if isinstance(raw, str):
            parts.append("raw bytes:\n" + _hexdump(bytes.fromhex(raw)))
    return "\n".join(parts)


def _hexdump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:04x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


class SequenceChart(QWidget):
    """Lanes and arrows (see the module docstring)."""

    exchange_clicked = Signal(object)
    live_changed = Signal(bool)

    def __init__(self, ends: EndsOf, name_of: NameOf, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ends = ends
        self._name_of = name_of
        self.lanes: list[int | None] = []
        self.rows: list[Exchange] = []
        self.first = 0
        self.live = True
        self.selected: Exchange | None = None
        self.protocols: set[str] = set(PROTOCOLS)
        self.text_filter = ""
        self.scroll_bar = QScrollBar(Qt.Orientation.Vertical, self)
        self.scroll_bar.valueChanged.connect(self._scrolled)
        self.setMinimumSize(420, 200)
        self.setMouseTracking(False)
        self.setAutoFillBackground(True)

    # ------------------------------------------------------------------ data

    def set_lanes(self, components: Iterable[int]) -> None:
        """Lane order (registrars, PEs, PUs as the map lists them); others are appended."""
        self.lanes = list(dict.fromkeys(components))
        self.update()

    def accepts(self, exchange: Exchange) -> bool:
        record = exchange.record
        proto = record.proto if record.proto in PROTOCOLS else "fgp"
        if proto not in self.protocols:
            return False
        needle = self.text_filter
        if not needle:
            return True
        if needle in record.type.lower():
            return True
        return any(
            component is not None and needle in self._name_of(component).lower()
            for component in self._ends(exchange)
        )

    def add(self, exchanges: Iterable[Exchange]) -> None:
        added = False
        for exchange in exchanges:
            if self.accepts(exchange):
                self.rows.append(exchange)
                self._lane_of_ends(exchange)
                added = True
        if len(self.rows) > MAX_ROWS:
            cut = len(self.rows) - MAX_ROWS
            del self.rows[:cut]
            self.first = max(0, self.first - cut)
        if added:
            self._update_scroll()

    def rebuild(self, exchanges: Iterable[Exchange]) -> None:
        """All rows again from ``exchanges`` (after a filter change)."""
        self.rows = []
        self.first = 0
        self.add(exchanges)
        self._update_scroll()
        self.update()

    def set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.live_changed.emit(live)
        self._update_scroll()

    # ------------------------------------------------------------------ geometry

    def visible_count(self) -> int:
        return max(1, (self.height() - HEADER) // ROW)

    def _update_scroll(self) -> None:
        top = max(0, len(self.rows) - self.visible_count())
        if self.live:
            self.first = top
        self.first = min(self.first, top)
        self.scroll_bar.blockSignals(True)
        self.scroll_bar.setRange(0, top)
        self.scroll_bar.setPageStep(self.visible_count())
        self.scroll_bar.setValue(self.first)
        self.scroll_bar.blockSignals(False)
        self.update()

    def _scrolled(self, value: int) -> None:
        self.first = value
        self.set_live(value >= self.scroll_bar.maximum())
        self.update()

    def resizeEvent(self, event: object) -> None:
        width = self.scroll_bar.sizeHint().width()
        self.scroll_bar.setGeometry(self.width() - width, 0, width, self.height())
        self._update_scroll()

    def sizeHint(self) -> QSize:
        return QSize(640, 420)

    def _lane_of_ends(self, exchange: Exchange) -> None:
        for component in self._ends(exchange):
            if component is not None and component not in self.lanes:
                self.lanes.append(component)

    def lane_x(self, component: int | None, width: float) -> float:
        """Horizontal position of a component's lane (unknown peers: the far right)."""
        count = len(self.lanes) + 1
        usable = width - TIME_COLUMN - 20
        index = self.lanes.index(component) if component in self.lanes else len(self.lanes)
        return TIME_COLUMN + usable * (index + 0.5) / count

    def row_at(self, y: float) -> Exchange | None:
        index = self.first + int((y - HEADER) // ROW)
        if y < HEADER or not 0 <= index < len(self.rows):
            return None
        return self.rows[index]

    # ------------------------------------------------------------------ events

    def mousePressEvent(self, event: QMouseEvent) -> None:
        exchange = self.row_at(event.position().y())
        if exchange is not None:
            self.selected = exchange
            self.exchange_clicked.emit(exchange)
            self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = -event.angleDelta().y() // 40
        self.scroll_bar.setValue(self.scroll_bar.value() + steps)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            width = self.width() - self.scroll_bar.width()
            self.paint_rows(painter, QRectF(0, 0, width, self.height()), self.first)
        finally:
            painter.end()

    # ------------------------------------------------------------------ painting

    def paint_rows(self, painter: QPainter, area: QRectF, first: int) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(area, QColor("#ffffff"))
        width = area.width()
        font = QFont(painter.font())
        font.setPointSizeF(8.5)
        painter.setFont(font)
        metrics = QFontMetrics(font)
        count = max(1, int((area.height() - HEADER) // ROW))
        rows = self.rows[first : first + count]
        lanes: list[int | None] = [*self.lanes, None]
        # Lane heads and lines.
        painter.setPen(QPen(QColor("#c8c8c8"), 1, Qt.PenStyle.DashLine))
        for component in lanes:
            x = self.lane_x(component, width)
            painter.drawLine(QPointF(x, HEADER - 6), QPointF(x, area.height()))
        painter.setPen(QColor("#202020"))
        bold = QFont(font)
        bold.setBold(True)
        painter.setFont(bold)
        for component in lanes:
            x = self.lane_x(component, width)
            label = self._name_of(component) if component is not None else "(other)"
            text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, 110)
            painter.drawText(
                QRectF(x - 60, 4, 120, HEADER - 12), Qt.AlignmentFlag.AlignCenter, text
            )
        painter.setFont(font)
        origin = rows[0].time if rows else 0.0
        for offset, exchange in enumerate(rows):
            y = HEADER + offset * ROW + ROW * 0.62
            self._paint_arrow(painter, exchange, y, width, origin, metrics)

    def _paint_arrow(
        self,
        painter: QPainter,
        exchange: Exchange,
        y: float,
        width: float,
        origin: float,
        metrics: QFontMetrics,
    ) -> None:
        source, target = self._ends(exchange)
        x1, x2 = self.lane_x(source, width), self.lane_x(target, width)
        colour = CATEGORY_COLOURS[exchange.category]
        if exchange is self.selected:
            painter.fillRect(QRectF(0, y - ROW * 0.62, width, ROW), QColor(255, 240, 170))
        painter.setPen(QColor("#606060"))
        painter.drawText(
            QRectF(2, y - ROW * 0.62, TIME_COLUMN - 6, ROW),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"+{exchange.time - origin:.3f}s",
        )
        pen = QPen(colour, 2.0)
        if not exchange.paired:
            pen.setStyle(Qt.PenStyle.DashLine)  # only one end traced this message
        painter.setPen(pen)
        if abs(x2 - x1) < 1:
            x2 = x1 + 24  # to itself (multicast loopback): a short stub
        painter.drawLine(QPointF(x1, y), QPointF(x2, y))
        direction = 1.0 if x2 >= x1 else -1.0
        head = QPainterPath(QPointF(x2, y))
        head.lineTo(x2 - 8 * direction, y - 4)
        head.lineTo(x2 - 8 * direction, y + 4)
        head.closeSubpath()
        painter.fillPath(head, colour)
        record = exchange.record
        label = record.type
        if record.pool_handle:
            label += f" {record.pool_handle}"
        if record.pe is not None:
            label += f" PE 0x{record.pe:08x}"
        left, right = sorted((x1, x2))
        room = max(60, int(right - left) - 8)
        text = metrics.elidedText(label, Qt.TextElideMode.ElideRight, room)
        painter.setPen(QColor("#202020"))
        painter.drawText(
            QRectF(left + 4, y - ROW * 0.62, room, ROW * 0.58),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
            text,
        )

    # ------------------------------------------------------------------ export

    def export_png(self, path: Path, width: int = 1600) -> None:
        height = HEADER + ROW * self.visible_count() + 8
        scale = width / max(1, self.width() - self.scroll_bar.width())
        image = QImage(width, int(height * scale), QImage.Format.Format_ARGB32)
        image.fill(QColor("#ffffff"))
        painter = QPainter(image)
        try:
            painter.scale(scale, scale)
            self.paint_rows(painter, QRectF(0, 0, width / scale, height), self.first)
        finally:
            painter.end()
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}")

    def export_svg(self, path: Path) -> None:
        width = self.width() - self.scroll_bar.width()
        height = HEADER + ROW * self.visible_count() + 8
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(QSize(width, height))
        generator.setViewBox(QRectF(0, 0, width, height))
        generator.setTitle("RSerPool message sequence")
        painter = QPainter(generator)
        try:
            self.paint_rows(painter, QRectF(0, 0, width, height), self.first)
        finally:
            painter.end()
        if not path.exists():
            raise OSError(f"cannot write {path}")


class SequencePane(QWidget):
    """The chart with its controls and the details of the selected message."""

    def __init__(
        self,
        ends: EndsOf,
        name_of: NameOf,
        snapshot: Callable[[], list[Exchange]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._snapshot = snapshot
        self._name_of = name_of
        self.chart = SequenceChart(ends, name_of)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("Click a message to see its fields.")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.details.setFont(mono)

        self.live_box = QCheckBox("Live")
        self.live_box.setChecked(True)
        self.live_box.toggled.connect(self.chart.set_live)
        self.chart.live_changed.connect(self._live_changed)
        self.protocol_boxes: dict[str, QCheckBox] = {}
        controls = QHBoxLayout()
        controls.addWidget(self.live_box)
        for proto in PROTOCOLS:
            box = QCheckBox(proto.upper())
            box.setChecked(True)
            box.toggled.connect(self._filters_changed)
            self.protocol_boxes[proto] = box
            controls.addWidget(box)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter: type or component")
        self.filter_edit.textChanged.connect(self._filters_changed)
        controls.addWidget(self.filter_edit, 1)
        svg = QPushButton("SVG…")
        svg.clicked.connect(lambda: self._export("svg"))
        png = QPushButton("PNG…")
        png.clicked.connect(lambda: self._export("png"))
        controls.addWidget(QLabel("Export:"))
        controls.addWidget(svg)
        controls.addWidget(png)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.chart)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        self.chart.exchange_clicked.connect(self.show_details)

    def add(self, exchanges: Iterable[Exchange]) -> None:
        self.chart.add(exchanges)

    def show_details(self, exchange: Exchange) -> None:
        self.details.setPlainText(describe(exchange, self._name_of))

    def _live_changed(self, live: bool) -> None:
        self.live_box.blockSignals(True)
        self.live_box.setChecked(live)
        self.live_box.blockSignals(False)

    def _filters_changed(self) -> None:
        chart = self.chart
        chart.protocols = {p for p, box in self.protocol_boxes.items() if box.isChecked()}
        chart.text_filter = self.filter_edit.text().strip().lower()
        chart.rebuild(self._snapshot())

    def _export(self, kind: str) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self,
            f"Export the sequence chart as {kind.upper()}",
            f"sequence.{kind}",
            f"{kind.upper()} (*.{kind})",
        )
        if not name:
            return
        path = Path(name)
        if kind == "svg":
            self.chart.export_svg(path)
        else:
            self.chart.export_png(path)
