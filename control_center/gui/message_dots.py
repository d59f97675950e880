"""Traced messages travelling as dots along the map, in slow motion if wanted.

Each exchange of the trace (one message, see :mod:`control_center.trace_store`) whose
sender and receiver are both on the map becomes a dot moving from the sender's node to
the receiver's, coloured by category (registration, keep-alive, resolution, Handle Update,
other ENRP, cookie, data). Playback runs on its own clock: at speed 1 a message starts
when it happened (plus the trace's delivery delay) and takes ``TRAVEL`` seconds to cross;
at speed 0.1 everything, order and gaps included, takes ten times as long; paused, the
dots stand still and new messages wait. What waits is bounded (oldest skipped and
counted), and so is the number of dots drawn at once: one item paints them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

from PySide6.QtCore import QElapsedTimer, QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from control_center.trace_store import CATEGORIES, Exchange

#: Seconds (of playback time) a dot takes from sender to receiver.
TRAVEL: Final = 0.45
#: Messages waiting to start, and dots drawn at once, at most.
MAX_WAITING: Final = 5000
MAX_DOTS: Final = 150
#: At speed 1 playback never lags the trace by more than this (it catches up).
MAX_LAG: Final = 1.0
FRAME_MS: Final = 40
SPEEDS: Final = (1.0, 0.5, 0.25, 0.1, 0.05)

CATEGORY_COLOURS: Final = {
    "registration": QColor("#1f6fd1"),
    "keep-alive": QColor("#39b7e6"),
    "resolution": QColor("#2ca02c"),
    "handle-update": QColor("#e4572e"),
    "enrp": QColor("#a4161a"),
    "cookie": QColor("#c039c0"),
    "data": QColor("#f2b705"),
    "other": QColor("#808080"),
}
assert set(CATEGORY_COLOURS) == set(CATEGORIES)

#: Node position (scene coordinates) of a component id, or None if it is not on the map.
NodeLocator = Callable[[int], QPointF | None]
#: (sender, receiver) component ids of an exchange.
EndsOf = Callable[[Exchange], tuple[int | None, int | None]]


class _Dot:
    __slots__ = ("colour", "source", "start", "target")

    def __init__(self, source: QPointF, target: QPointF, start: float, colour: QColor):
        self.source = source
        self.target = target
        self.start = start
        self.colour = colour


class DotsItem(QGraphicsItem):
    """Paints every dot in flight (one item, so a thousand dots cost one paint call)."""

    RADIUS: Final = 6.0

    def __init__(self) -> None:
        super().__init__()
        self.dots: list[tuple[QPointF, QColor]] = []
        self._rect = QRectF()
        self.setZValue(50)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_area(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(rect)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        radius = self.RADIUS
        painter.setPen(QPen(QColor(255, 255, 255, 220), 1.5))
        for point, colour in self.dots:
            painter.setBrush(QBrush(colour))
            painter.drawEllipse(point, radius, radius)


class MessageDots(QObject):
    """The animation (see the module docstring); ``feed`` it exchanges as they come."""

    def __init__(
        self, item: DotsItem, locate: NodeLocator, ends: EndsOf, parent: QObject | None = None
    ) -> None:
        # The parent ends the animation timer with the window (it must not outlive the map).
        super().__init__(parent)
        self.item = item
        self._locate = locate
        self._ends = ends
        self.speed = 1.0
        self.paused = False
        self.enabled: set[str] = set(CATEGORIES)
        self.skipped = 0
        self.shown = 0
        self._waiting: deque[Exchange] = deque()
        self._dots: list[_Dot] = []
        self._clock = 0.0  # playback seconds
        self._anchor: float | None = None  # trace time at playback time 0
        self._elapsed = QElapsedTimer()
        self._elapsed.start()
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self.tick)

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        self._elapsed.restart()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def set_enabled(self, category: str, enabled: bool) -> None:
        if enabled:
            self.enabled.add(category)
        else:
            self.enabled.discard(category)
            self._dots = [d for d in self._dots if d.colour != CATEGORY_COLOURS[category]]

    def clear(self) -> None:
        self._waiting.clear()
        self._dots.clear()
        self._anchor = None
        self.item.dots = []
        self.item.update()

    @property
    def in_flight(self) -> int:
        return len(self._dots)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # ------------------------------------------------------------------ input

    def feed(self, exchanges: Iterable[Exchange]) -> None:
        for exchange in exchanges:
            if exchange.category not in self.enabled:
                continue
            self._waiting.append(exchange)
            if self._anchor is None:
                self._anchor = exchange.time - self._clock
        while len(self._waiting) > MAX_WAITING:
            self._waiting.popleft()
            self.skipped += 1

    # ------------------------------------------------------------------ animation

    def tick(self) -> None:
        """Advance the playback clock by the wall time since the last tick, then draw."""
        wall = self._elapsed.restart() / 1000.0
        if not self.paused:
            self.advance(wall * self.speed)
        self._draw()

    def advance(self, seconds: float) -> None:
        """Move playback forward by ``seconds`` (launching and retiring dots)."""
        self._clock += seconds
        anchor = self._anchor
        if anchor is None:
            return
        now = anchor + self._clock
        if self.speed >= 1.0 and self._waiting and self._waiting[-1].time - now > MAX_LAG:
            # Real time must stay live: jump to just before the newest message.
            self._anchor = anchor = self._waiting[-1].time - self._clock - MAX_LAG / 2
            now = anchor + self._clock
        while self._waiting and self._waiting[0].time <= now:
            self._launch(self._waiting.popleft())
        self._dots = [d for d in self._dots if self._clock - d.start < TRAVEL]

    def _launch(self, exchange: Exchange) -> None:
        source, target = self._ends(exchange)
        if source is None or target is None or source == target:
            return
        a, b = self._locate(source), self._locate(target)
        if a is None or b is None:
            return
        if len(self._dots) >= MAX_DOTS:
            self.skipped += 1
            return
        self.shown += 1
        self._dots.append(_Dot(a, b, self._clock, CATEGORY_COLOURS[exchange.category]))

    def positions(self) -> list[tuple[QPointF, QColor]]:
        """Where each dot in flight is now."""
        out = []
        for dot in self._dots:
            f = min(1.0, max(0.0, (self._clock - dot.start) / TRAVEL))
            point = dot.source + (dot.target - dot.source) * f
            out.append((point, dot.colour))
        return out

    def _draw(self) -> None:
        dots = self.positions()
        if dots or self.item.dots:
            # Repaint only where dots were and are: the rest of the map stays cached.
            dirty = _extent(self.item.dots) | _extent(dots)
            self.item.dots = dots
            self.item.update(dirty)


def _extent(dots: list[tuple[QPointF, QColor]]) -> QRectF:
    if not dots:
        return QRectF()
    xs = [p.x() for p, _ in dots]
    ys = [p.y() for p, _ in dots]
    pad = DotsItem.RADIUS + 2
    return QRectF(
        min(xs) - pad, min(ys) - pad, max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad
    )
