"""The live trace in the window: message dots on the map and the sequence-chart pane.

:class:`TraceView` polls the engine's :class:`~control_center.trace_store.TraceStore`
(``POLL_MS``; the store is filled on the engine thread) and hands what is new to the map's
:class:`~control_center.gui.message_dots.MessageDots` and to the
:class:`~control_center.gui.sequence_chart.SequencePane`. Its :attr:`panel` holds the
playback controls (speed, pause, a filter per message category with its colour) above
the chart, ready to sit in a dock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6.QtCore import QObject, QPointF, QTimer
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from control_center.gui.map_view import MapView
from control_center.gui.message_dots import CATEGORY_COLOURS, SPEEDS, DotsItem, MessageDots
from control_center.gui.sequence_chart import SequencePane
from control_center.gui.view_model import ViewModel
from control_center.trace_store import CATEGORIES, Exchange, TraceStore

POLL_MS: Final = 50
CATEGORY_LABELS: Final = {
    "registration": "registration",
    "keep-alive": "keep-alive",
    "resolution": "handle resolution",
    "handle-update": "Handle Update",
    "enrp": "other ENRP",
    "cookie": "cookie",
    "data": "data (FGP)",
    "other": "other",
}


def scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area, so a dock holding it does not force the window's size."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _swatch(colour: QColor) -> QPixmap:
    pixmap = QPixmap(12, 12)
    pixmap.fill(colour)
    return pixmap


class TraceView(QObject):
    def __init__(self, map_view: MapView, model: ViewModel, store: TraceStore) -> None:
        super().__init__(map_view)
        self.map_view = map_view
        self.model = model
        self.store = store
        self.dots_item = DotsItem()
        self.dots_item.set_area(map_view.sceneRect())
        map_view.map_scene.addItem(self.dots_item)
        map_view.map_scene.sceneRectChanged.connect(self.dots_item.set_area)
        self.dots = MessageDots(self.dots_item, self.locate, store.ends, self)
        self.sequence = SequencePane(store.ends, self.name_of, store.snapshot)
        self.sequence.chart.set_lanes(self._lane_order())
        self.panel = QWidget()
        layout = QVBoxLayout(self.panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._controls())
        layout.addWidget(self.sequence, 1)
        #: Further panes that read the new exchanges (the policy lab).
        self.consumers: list[Callable[[list[Exchange]], None]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()
        self.dots.start()

    # ------------------------------------------------------------------ lookups

    def name_of(self, component: int) -> str:
        return self.model.node_of_id(component) or f"0x{component:016x}"

    def locate(self, component: int) -> QPointF | None:
        name = self.model.node_of_id(component)
        item = self.map_view.nodes.get(name) if name is not None else None
        return item.pos() if item is not None else None

    def _lane_order(self) -> list[int]:
        order = {"registrar": 0, "pool-element": 1, "pool-user": 2}
        nodes = [n for n in self.model.nodes.values() if n.csp_id is not None]
        nodes.sort(key=lambda n: (order.get(n.kind, 3), n.name))
        return [n.csp_id for n in nodes if n.csp_id is not None]

    # ------------------------------------------------------------------ controls

    def _controls(self) -> QVBoxLayout:
        box = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(QLabel("Messages on the map:"))
        self.speed_box = QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(
                "real time" if speed == 1.0 else f"{speed:g}x (slow motion)", speed
            )
        self.speed_box.currentIndexChanged.connect(
            lambda index: self.dots.set_speed(float(self.speed_box.itemData(index)))
        )
        row.addWidget(self.speed_box)
        self.pause_box = QCheckBox("Pause")
        self.pause_box.toggled.connect(self.dots.set_paused)
        row.addWidget(self.pause_box)
        row.addStretch(1)
        box.addLayout(row)
        grid = QGridLayout()
        self.category_boxes: dict[str, QCheckBox] = {}
        for index, category in enumerate(CATEGORIES):
            check = QCheckBox(CATEGORY_LABELS[category])
            check.setChecked(True)
            check.setIcon(_swatch(CATEGORY_COLOURS[category]))
            check.toggled.connect(lambda on, c=category: self.dots.set_enabled(c, on))
            self.category_boxes[category] = check
            grid.addWidget(check, index // 4, index % 4)
        box.addLayout(grid)
        return box

    # ------------------------------------------------------------------ polling

    def poll(self) -> None:
        new, _events = self.store.drain()
        if new:
            self.dots.feed(new)
            self.sequence.add(new)
            for consumer in self.consumers:
                consumer(new)

    def stop(self) -> None:
        self._timer.stop()
        self.dots.stop()
