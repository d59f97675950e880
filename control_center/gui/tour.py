"""Guided tours in the window: captions on the map, Space to go on, the dots' speed.

A storyboard step may carry a ``caption``, ``wait_for_key`` and ``message_speed`` (see
:mod:`control_center.storyboard`). The story runs in the engine thread; :class:`TourControl`
is its presenter: it shows the caption in a box at the top of the map (so it is there in
presentation mode, where only the map is shown), sets the message dots' speed, and holds
the story until the presenter presses Space.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Final

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QKeySequence,
    QPainter,
    QPen,
    QShortcut,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from control_center.gui.map_view import MapView
from control_center.gui.trace_panes import TraceView

CONTINUE_KEY: Final = "Space"
CAPTION_FONT: Final = QFont("Sans Serif", 15)
HINT_FONT: Final = QFont("Sans Serif", 10)


class CaptionItem(QGraphicsItem):
    """A caption box at the top of the map (above nodes and dots)."""

    WIDTH_SHARE: Final = 0.72

    def __init__(self) -> None:
        super().__init__()
        self.text = ""
        self.waiting = False
        self._area = QRectF()
        self.setZValue(100)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setVisible(False)

    def set_area(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._area = QRectF(rect)

    def set_caption(self, text: str) -> None:
        self.prepareGeometryChange()  # the box's size follows the text
        self.text = text
        self.setVisible(bool(text))
        self.update()

    def set_waiting(self, waiting: bool) -> None:
        self.prepareGeometryChange()
        self.waiting = waiting
        self.update()

    def box(self) -> QRectF:
        area = self._area
        width = area.width() * self.WIDTH_SHARE
        metrics = QFontMetricsF(CAPTION_FONT)
        text_rect = metrics.boundingRect(
            QRectF(0, 0, width - 40, 1000), Qt.TextFlag.TextWordWrap, self.text
        )
        height = text_rect.height() + 34 + (18 if self.waiting else 0)
        return QRectF(area.center().x() - width / 2, area.top() + 14, width, height)

    def boundingRect(self) -> QRectF:
        return self.box().adjusted(-4, -4, 4, 4) if self.text else QRectF()

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        if not self.text:
            return
        box = self.box()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#1f3a60"), 2))
        painter.setBrush(QBrush(QColor(255, 255, 255, 250)))
        painter.drawRoundedRect(box, 10, 10)
        painter.setPen(QColor("#10203a"))
        painter.setFont(CAPTION_FONT)
        inner = box.adjusted(20, 14, -20, -14 - (18 if self.waiting else 0))
        painter.drawText(inner, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter, self.text)
        if self.waiting:
            painter.setFont(HINT_FONT)
            painter.setPen(QColor("#6a6a6a"))
            hint = QRectF(box.left(), box.bottom() - 24, box.width(), 18)
            painter.drawText(hint, Qt.AlignmentFlag.AlignCenter, "press Space to go on")


class TourControl(QObject):
    """The window's tour presenter (``story_runner.TourPresenter``)."""

    caption_requested = Signal(str)
    speed_requested = Signal(float)
    waiting_changed = Signal(bool)

    def __init__(self, map_view: MapView, trace_view: TraceView, shortcut_parent: QWidget):
        super().__init__(map_view)
        self.trace_view = trace_view
        self.item = CaptionItem()
        self.item.set_area(map_view.sceneRect())
        map_view.map_scene.addItem(self.item)
        map_view.map_scene.sceneRectChanged.connect(self.item.set_area)
        self.caption_requested.connect(self.item.set_caption)
        self.speed_requested.connect(self._set_speed)
        self.waiting_changed.connect(self.item.set_waiting)
        self.shortcut = QShortcut(QKeySequence(CONTINUE_KEY), shortcut_parent)
        self.shortcut.activated.connect(self.key_pressed)
        self._lock = threading.Lock()
        self._waiting: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.keys = 0

    # ------------------------------------------------------------------ engine side

    def show_caption(self, text: str) -> None:
        self.caption_requested.emit(text)

    def set_message_speed(self, speed: float) -> None:
        self.speed_requested.emit(speed)

    async def wait_for_key(self) -> None:
        event = asyncio.Event()
        with self._lock:
            self._waiting = (asyncio.get_running_loop(), event)
        self.waiting_changed.emit(True)
        try:
            await event.wait()
        finally:
            with self._lock:
                self._waiting = None
            self.waiting_changed.emit(False)

    # ------------------------------------------------------------------ GUI side

    def key_pressed(self) -> None:
        self.keys += 1
        with self._lock:
            waiting = self._waiting
        if waiting is not None:
            loop, event = waiting
            loop.call_soon_threadsafe(event.set)

    @property
    def waiting(self) -> bool:
        return self._waiting is not None

    def _set_speed(self, speed: float) -> None:
        box = self.trace_view.speed_box
        speeds = [float(box.itemData(i)) for i in range(box.count())]
        nearest = min(range(len(speeds)), key=lambda i: abs(speeds[i] - speed))
        box.setCurrentIndex(nearest)
        self.trace_view.dots.set_speed(speed)
