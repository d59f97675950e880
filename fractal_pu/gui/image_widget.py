"""The image area: the fractal (or the PE identity overlay) plus the session grid.

The picture itself comes from the model's RGB buffers, one pixel per widget
pixel (the image is computed at the widget's size, as in rsplib). On top of
it, unless the grid is switched off, go the decorations, which are never
part of the picture (saving or comparing the image ignores them):

* cell borders, in the current PE's colour while the overlay is on;
* the cell number in red at the centre of every unfinished cell (rsplib);
* the current PE of each cell in a small label on its top border
  ("failover ..." while the cell is between PEs, "waiting ..." without one);
* at every point where a cell resumed after a failover, a dashed seam across
  the cell and a triangle in the new PE's colour.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
    QResizeEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from fractal_pu.gui.model import CellView, ViewerModel
from fractal_pu.gui.overlay import PE_COLOURS
from fractal_pu.palette import BACKGROUND_RGB

# Labels are only drawn where they fit.
LABEL_MIN_WIDTH = 70
LABEL_MIN_HEIGHT = 20
NUMBER_MIN_SIDE = 14


def qimage_of(rgb: np.ndarray) -> QImage:
    """A QImage copy of an (H, W, 3) uint8 array."""
    array = np.ascontiguousarray(rgb)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def rgb_of(image: QImage) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of a QImage (any format)."""
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = converted.width(), converted.height()
    line = converted.bytesPerLine()
    raw = np.frombuffer(converted.constBits(), dtype=np.uint8, count=line * height)
    return raw.reshape(height, line)[:, : 3 * width].reshape(height, width, 3).copy()


class ImageWidget(QWidget):
    #: The widget's size changed (the viewer restarts the image, debounced).
    resized = Signal(QSize)

    def __init__(self, model: ViewerModel, width: int, height: int) -> None:
        super().__init__()
        self.model = model
        self._hint = QSize(width, height)
        self.overlay_on = False
        self.grid_on = True
        self.setMinimumSize(64, 64)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def sizeHint(self) -> QSize:
        return self._hint

    # ------------------------------------------------------------------ picture

    def picture(self) -> np.ndarray | None:
        """The RGB buffer being shown (overlay or fractal), or None before the first image."""
        image = self.model.image
        if image is None:
            return None
        return image.overlay if self.overlay_on else image.base

    def image(self) -> QImage:
        """A copy of the picture as shown, without the grid decorations."""
        rgb = self.picture()
        if rgb is None:
            return QImage()
        return qimage_of(rgb)

    def placement(self, width: int, height: int) -> tuple[float, float, float]:
        """(scale, x offset, y offset) that fit a width x height picture into the widget."""
        if self.width() == width and self.height() == height:
            return 1.0, 0.0, 0.0
        scale = min(self.width() / width, self.height() / height)
        return (
            scale,
            (self.width() - width * scale) / 2.0,
            (self.height() - height * scale) / 2.0,
        )

    # ------------------------------------------------------------------ Qt events

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit(event.size())

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(*BACKGROUND_RGB))
            rgb = self.picture()
            image = self.model.image
            if rgb is None or image is None:
                painter.setPen(QColor(60, 60, 60))
                painter.drawText(
                    self.rect(), Qt.AlignmentFlag.AlignCenter, "Waiting for the first image ..."
                )
                return
            height, width = rgb.shape[:2]
            # Wraps the buffer without a copy; it lives on in the model during the paint.
            view = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
            # The image keeps its size when the window is resized: drawn scaled to fit.
            scale, dx, dy = self.placement(width, height)
            painter.translate(dx, dy)
            painter.scale(scale, scale)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale != 1.0)
            painter.drawImage(0, 0, view)
            if self.grid_on:
                self._decorate(painter, image.cells, len(image.cells) > 1)
        finally:
            painter.end()

    # ------------------------------------------------------------------ decorations

    def _pe_colour(self, pe_id: int | None) -> QColor | None:
        if pe_id is None or pe_id not in self.model.legend:
            return None
        return QColor(*self.model.legend.entry(pe_id).colour)

    def _decorate(self, painter: QPainter, cells: list[CellView], several: bool) -> None:
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        metrics = QFontMetrics(small)
        for cell in cells:
            r = cell.rect
            box = QRect(r.x, r.y, r.w, r.h)
            colour = self._pe_colour(cell.current_pe) if self.overlay_on else None
            if several or colour is not None:
                pen = QPen(colour if colour is not None else QColor(0, 0, 0, 120))
                pen.setWidth(2 if colour is not None else 1)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(box.adjusted(0, 0, -1, -1))
            for x, y, pe in cell.resume_points:
                self._resume_marker(painter, cell, x, y, pe)
            if several and not cell.done and min(r.w, r.h) >= NUMBER_MIN_SIDE:
                number = QFont(self.font())
                number.setBold(True)
                number.setPixelSize(max(8, min(24, r.h // 3)))
                painter.setFont(number)
                painter.setPen(QColor(255, 0, 0))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, str(cell.index + 1))
            if r.w >= LABEL_MIN_WIDTH and r.h >= LABEL_MIN_HEIGHT:
                self._pe_label(painter, cell, small, metrics)

    def _pe_label(
        self, painter: QPainter, cell: CellView, font: QFont, metrics: QFontMetrics
    ) -> None:
        if cell.done and not self.overlay_on:
            return
        if cell.in_failover:
            text, fill = "failover ...", QColor(255, 255, 255, 220)
        elif cell.current_pe is None:
            text, fill = "waiting ...", QColor(255, 255, 255, 220)
        else:
            text = self.model.pe_name(cell.current_pe)
            fill = self._pe_colour(cell.current_pe) or QColor(255, 255, 255, 220)
        r = cell.rect
        width = min(metrics.horizontalAdvance(text) + 8, r.w - 4)
        label = QRect(r.x + 2, r.y + 2, width, metrics.height() + 2)
        painter.setPen(QPen(QColor(0, 0, 0, 160)))
        painter.setBrush(fill)
        painter.drawRect(label)
        painter.setFont(font)
        painter.setPen(_text_colour(fill))
        painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)

    def _resume_marker(self, painter: QPainter, cell: CellView, x: int, y: int, pe: int) -> None:
        r = cell.rect
        seam = QPen(QColor(255, 255, 255, 230))
        seam.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(seam)
        painter.drawLine(r.x, y, r.x + r.w - 1, y)
        colour = self._pe_colour(pe) or QColor(*PE_COLOURS[0])
        size = 6.0
        x = max(x, int(r.x + size))
        triangle = QPolygonF(
            [QPointF(x, y), QPointF(x - size, y - size), QPointF(x - size, y + size)]
        )
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(colour)
        painter.drawPolygon(triangle)


def _text_colour(fill: QColor) -> QColor:
    light = 0.299 * fill.red() + 0.587 * fill.green() + 0.114 * fill.blue()
    return QColor(0, 0, 0) if light > 140 else QColor(255, 255, 255)
