"""The Plots pane: pixels per second per PE (last minute) and the failover-time histogram.

Redrawn once a second from the trace store, with the same SVG charts as the storyboard's
HTML report (:mod:`control_center.plots`): pixels from the PEs' FGP data messages, failover
times from the pool users' ``failover`` events (their own measurement, never inferred).
"""

from __future__ import annotations

import time
from typing import Final

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QHBoxLayout, QWidget

from control_center.gui.view_model import ViewModel
from control_center.plots import (
    failover_seconds,
    histogram,
    pixel_rates,
    svg_histogram,
    svg_line_chart,
)
from control_center.trace_store import TraceStore
from rsplib.trace.record import TraceRecord

WINDOW_S: Final = 60.0
REFRESH_MS: Final = 1000


class SvgChart(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.renderer = QSvgRenderer()
        self.renderer.setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
        self.svg = ""
        self.setMinimumSize(320, 180)

    def set_svg(self, svg: str) -> None:
        if svg != self.svg:
            self.svg = svg
            self.renderer.load(QByteArray(svg.encode()))
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(640, 280)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self.renderer.render(painter, QRectF(self.rect()))
        finally:
            painter.end()


class PlotsPane(QWidget):
    def __init__(self, store: TraceStore, model: ViewModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.model = model
        self.rates = SvgChart()
        self.failovers = SvgChart()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.rates, 3)
        layout.addWidget(self.failovers, 2)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible() and self.rates.svg:
            return
        since = time.time() - WINDOW_S
        recent: list[TraceRecord] = []
        for exchange in reversed(self.store.snapshot()):
            if exchange.time < since:
                break
            if exchange.sent is not None:
                recent.append(exchange.sent)
        series = {
            self.model.node_of_id(c) or f"0x{c:x}": points
            for c, points in pixel_rates(recent).items()
        }
        self.rates.set_svg(
            svg_line_chart(
                series,
                title="Pixels per second per pool element (last minute)",
                x_label="seconds",
                y_label="pixels/s",
            )
        )
        times = [t * 1000.0 for t in failover_seconds(self.store.event_snapshot())]
        self.failovers.set_svg(
            svg_histogram(
                histogram(times, bins=10),
                title="Failover times reported by the pool users",
                x_label="milliseconds",
                empty="no failover reported yet",
            )
        )
