"""One association line between two nodes, coloured by protocol, with a duration label."""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from control_center.gui.node_item import ICON_HEIGHT, ICON_WIDTH, NodeItem
from control_center.gui.view_model import MapLink, format_duration

LINE_WIDTH = 5.0
#: Lines of different protocols between the same two nodes are drawn side by side.
PARALLEL_GAP = 7.0
_LABEL_FONT = QFont("DejaVu Sans", 8, QFont.Weight.Bold)


class LinkItem(QGraphicsItem):
    def __init__(self, link: MapLink, source: NodeItem, target: NodeItem, color: str) -> None:
        super().__init__()
        self.link = link
        self.source = source
        self.target = target
        self.color = QColor(color)
        self.offset = 0.0
        self.show_duration = True
        self.setZValue(1)
        self.setAcceptHoverEvents(True)
        self._line = QLineF()
        self._bounds = QRectF()
        self.update_link(link)

    def update_link(self, link: MapLink) -> None:
        self.link = link
        self.setToolTip(link.describe())
        self.update()

    def set_offset(self, offset: float) -> None:
        if offset != self.offset:
            self.offset = offset
            self.refresh_geometry()

    def refresh_geometry(self) -> None:
        """Follow the end nodes (after a drag)."""
        self.prepareGeometryChange()
        a, b = self.source.pos(), self.target.pos()
        line = QLineF(a, b)
        if line.length() > 0 and self.offset:
            normal = line.normalVector().unitVector()
            shift = QPointF(normal.dx(), normal.dy()) * self.offset
            line = QLineF(a + shift, b + shift)
        self._line = line
        self._bounds = QRectF(line.p1(), line.p2()).normalized().adjusted(-40, -20, 40, 20)
        self.update()

    def label_text(self) -> str | None:
        if not self.show_duration or self.link.duration is None:
            return None
        text = format_duration(self.link.duration)
        return f"{text} x{self.link.count}" if self.link.count > 1 else text

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        line = self._line
        if line.length() == 0:
            return path
        normal = line.normalVector().unitVector()
        d = QPointF(normal.dx(), normal.dy()) * (LINE_WIDTH + 3)
        path.addPolygon(QPolygonF([line.p1() + d, line.p2() + d, line.p2() - d, line.p1() - d]))
        path.closeSubpath()
        return path

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        line = self._line
        if line.length() < 1:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        casing = QColor(255, 255, 255, 200)
        painter.setPen(QPen(casing, LINE_WIDTH + 3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawLine(line)
        pen = QPen(self.color, LINE_WIDTH, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawLine(line)
        if not self.link.both_ways:
            self._paint_arrow(painter, line)
        text = self.label_text()
        if text:
            self._paint_label(painter, line.center(), text)

    def _paint_arrow(self, painter: QPainter, line: QLineF) -> None:
        """A small head where the line meets the target's icon: who reported whom."""
        length = line.length()
        reach = min(ICON_WIDTH, ICON_HEIGHT) * 0.62
        if length < reach * 2.2:
            return
        unit = line.unitVector()
        dx, dy = unit.dx(), unit.dy()
        tip = line.p2() - QPointF(dx, dy) * reach
        angle = math.atan2(dy, dx)
        size = 13.0
        left = tip - QPointF(math.cos(angle - 0.45), math.sin(angle - 0.45)) * size
        right = tip - QPointF(math.cos(angle + 0.45), math.sin(angle + 0.45)) * size
        painter.setPen(QPen(QColor(255, 255, 255, 220), 1.5))
        painter.setBrush(self.color)
        painter.drawPolygon(QPolygonF([tip, left, right]))

    def _paint_label(self, painter: QPainter, center: QPointF, text: str) -> None:
        metrics = QFontMetricsF(_LABEL_FONT)
        width = metrics.horizontalAdvance(text) + 10
        height = metrics.height() + 2
        rect = QRectF(center.x() - width / 2, center.y() - height / 2, width, height)
        painter.setPen(QPen(self.color, 1.5))
        painter.setBrush(QColor("#fffbe6"))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setFont(_LABEL_FONT)
        painter.setPen(self.color.darker(140))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
