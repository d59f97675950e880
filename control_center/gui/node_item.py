"""One component on the map: icon by kind and state, label plate, workload badge,
and for a pool user a live thumbnail of its picture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsObject,
    QGraphicsSceneMouseEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from control_center.gui.icons import ICON_ASPECT, icon_pixmap
from control_center.gui.view_model import NodeState, Workload

ICON_WIDTH = 76.0
ICON_HEIGHT = ICON_WIDTH * ICON_ASPECT
PLATE_MIN_WIDTH = 96.0
#: Width of a pool user's live thumbnail, beside its icon (scene units).
THUMBNAIL_WIDTH = 96.0
#: Accent of the label plate per state (its border and the status text).
STATE_COLORS: dict[NodeState, str] = {
    NodeState.ACTIVE: "#1f8f4e",
    NodeState.INACTIVE: "#b8342a",
    NodeState.HUNG: "#c97a00",
    NodeState.UNPLUGGED: "#6c35a3",
}
_TITLE_FONT = QFont("DejaVu Sans", 11, QFont.Weight.Bold)
_STATUS_FONT = QFont("DejaVu Sans", 9)
_LOCATION_FONT = QFont("DejaVu Sans", 7)
_BADGE_FONT = QFont("DejaVu Sans", 8, QFont.Weight.Bold)
_KEY_FONT = QFont("DejaVu Sans", 9, QFont.Weight.Bold)
_MAX_TEXT = 34


def workload_color(fraction: float) -> QColor:
    """rserpooldemo's badge colours: red above 75 %, amber from 50 %, green above 0."""
    if fraction > 0.75:
        return QColor("#d0312d")
    if fraction >= 0.5:
        return QColor("#c98a00")
    if fraction > 0.001:
        return QColor("#1f8f4e")
    return QColor("#5b6470")


def _elide(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class NodeItem(QGraphicsObject):
    """Centred on its position; draggable; tells ``on_moved`` when it moves."""

    def __init__(self, name: str, kind: str, title: str) -> None:
        super().__init__()
        self.name = name
        self.kind = kind
        self.title = title
        self.state = NodeState.INACTIVE
        self.status = ""
        self.location = ""
        self.workload: Workload | None = None
        self.hotkey: str | None = None
        self.show_hotkey = False
        self.thumbnail: QImage | None = None
        self.on_moved: Callable[[NodeItem], None] | None = None
        self.on_released: Callable[[NodeItem], None] | None = None
        self._bounds = QRectF()
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setAcceptHoverEvents(True)
        # Painted again only when its content changes, not on every repaint around it.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setZValue(10)
        self._relayout()

    # ------------------------------------------------------------------ content
    def update_content(
        self,
        *,
        state: NodeState,
        status: str,
        location: str,
        workload: Workload | None,
        tooltip: str,
    ) -> None:
        if (state, status, location, workload) == (
            self.state,
            self.status,
            self.location,
            self.workload,
        ):
            if self.toolTip() != tooltip:
                self.setToolTip(tooltip)
            return
        self.prepareGeometryChange()
        self.state, self.status, self.location, self.workload = state, status, location, workload
        self.setToolTip(tooltip)
        self._relayout()
        self.update()

    def set_hotkey(self, key: str | None, visible: bool) -> None:
        if (key, visible) != (self.hotkey, self.show_hotkey):
            self.hotkey, self.show_hotkey = key, visible
            self.update()

    def set_thumbnail(self, image: QImage | None) -> None:
        """A pool user's picture in progress, drawn small beside its icon."""
        if image is not None and not image.isNull():
            image = image.scaledToWidth(
                round(THUMBNAIL_WIDTH * 2), Qt.TransformationMode.SmoothTransformation
            )
        else:
            image = None
        if (image is None) != (self.thumbnail is None):
            self.prepareGeometryChange()
            self.thumbnail = image
            self._relayout()
        else:
            self.thumbnail = image
        self.update()

    def thumbnail_rect(self) -> QRectF | None:
        if self.thumbnail is None:
            return None
        height = THUMBNAIL_WIDTH * self.thumbnail.height() / max(1, self.thumbnail.width())
        return QRectF(ICON_WIDTH / 2 + 6, -ICON_HEIGHT / 2, THUMBNAIL_WIDTH, height)

    # ------------------------------------------------------------------ geometry
    def _plate_rect(self) -> QRectF:
        title = QFontMetricsF(_TITLE_FONT)
        status = QFontMetricsF(_STATUS_FONT)
        location = QFontMetricsF(_LOCATION_FONT)
        width = max(
            PLATE_MIN_WIDTH,
            title.horizontalAdvance(self.title) + 16,
            status.horizontalAdvance(_elide(self.status)) + 16,
            location.horizontalAdvance(_elide(self.location, 44)) + 16,
        )
        height = title.height() + status.height() + (location.height() if self.location else 0)
        return QRectF(-width / 2, ICON_HEIGHT / 2 + 2, width, height + 8)

    def _relayout(self) -> None:
        plate = self._plate_rect()
        icon = QRectF(-ICON_WIDTH / 2, -ICON_HEIGHT / 2, ICON_WIDTH, ICON_HEIGHT)
        bounds = icon.united(plate)
        thumbnail = self.thumbnail_rect()
        if thumbnail is not None:
            bounds = bounds.united(thumbnail)
        self._bounds = bounds.adjusted(-8, -14, 8, 4)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(QRectF(-ICON_WIDTH / 2, -ICON_HEIGHT / 2, ICON_WIDTH, ICON_HEIGHT))
        path.addRect(self._plate_rect())
        return path

    def icon_rect(self) -> QRectF:
        return QRectF(-ICON_WIDTH / 2, -ICON_HEIGHT / 2, ICON_WIDTH, ICON_HEIGHT)

    # ------------------------------------------------------------------ painting
    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        accent = QColor(STATE_COLORS[self.state])
        icon = self.icon_rect()
        if self.isSelected():
            halo = QColor(accent)
            halo.setAlpha(55)
            painter.setPen(QPen(accent, 2.5, Qt.PenStyle.DashLine))
            painter.setBrush(halo)
            painter.drawEllipse(icon.center(), ICON_WIDTH * 0.62, ICON_HEIGHT * 0.66)
        scale = painter.transform().m11() or 1.0
        device_width = max(32, min(512, round(ICON_WIDTH * scale * 2)))
        painter.drawPixmap(icon, icon_pixmap(self.kind, self.state.value, device_width), QRectF())
        self._paint_plate(painter, accent)
        thumbnail = self.thumbnail_rect()
        if thumbnail is not None and self.thumbnail is not None:
            painter.drawImage(thumbnail, self.thumbnail)
            painter.setPen(QPen(accent, 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(thumbnail)
        if self.workload is not None:
            self._paint_badge(painter, self.workload)
        if self.show_hotkey and self.hotkey:
            self._paint_hotkey(painter, self.hotkey)

    def _paint_plate(self, painter: QPainter, accent: QColor) -> None:
        plate = self._plate_rect()
        painter.setPen(QPen(accent, 1.6))
        painter.setBrush(QColor(255, 255, 255, 235))
        painter.drawRoundedRect(plate, 6, 6)
        y = plate.top() + 4
        title = QFontMetricsF(_TITLE_FONT)
        painter.setFont(_TITLE_FONT)
        painter.setPen(QColor("#1d2430"))
        painter.drawText(
            QRectF(plate.left(), y, plate.width(), title.height()),
            Qt.AlignmentFlag.AlignCenter,
            self.title,
        )
        y += title.height()
        status = QFontMetricsF(_STATUS_FONT)
        painter.setFont(_STATUS_FONT)
        painter.setPen(accent.darker(115))
        painter.drawText(
            QRectF(plate.left(), y, plate.width(), status.height()),
            Qt.AlignmentFlag.AlignCenter,
            _elide(self.status),
        )
        y += status.height()
        if self.location:
            location = QFontMetricsF(_LOCATION_FONT)
            painter.setFont(_LOCATION_FONT)
            painter.setPen(QColor("#5b6470"))
            painter.drawText(
                QRectF(plate.left(), y, plate.width(), location.height()),
                Qt.AlignmentFlag.AlignCenter,
                _elide(self.location, 44),
            )

    def _paint_badge(self, painter: QPainter, workload: Workload) -> None:
        metrics = QFontMetricsF(_BADGE_FONT)
        width = metrics.horizontalAdvance(workload.text) + 12
        rect = QRectF(ICON_WIDTH / 2 - width + 8, -ICON_HEIGHT / 2 - 8, width, metrics.height() + 4)
        painter.setPen(QPen(QColor("#7d7dc8"), 1))
        painter.setBrush(QColor("#e4e4ff"))
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setFont(_BADGE_FONT)
        painter.setPen(workload_color(workload.fraction))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, workload.text)

    def _paint_hotkey(self, painter: QPainter, key: str) -> None:
        rect = QRectF(-ICON_WIDTH / 2 - 10, -ICON_HEIGHT / 2 - 8, 22, 22)
        painter.setPen(QPen(QColor("#1d2430"), 1.5))
        painter.setBrush(QBrush(QColor("#fff6cc")))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setFont(_KEY_FONT)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, key)

    # ------------------------------------------------------------------ moving
    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and self.scene():
            # Keep the icon inside the map.
            rect = self.scene().sceneRect()
            point = QPointF(value)
            x = min(max(point.x(), rect.left()), rect.right())
            y = min(max(point.y(), rect.top()), rect.bottom())
            return QPointF(x, y)
        moved = change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged
        if moved and self.on_moved is not None:
            self.on_moved(self)
        return super().itemChange(change, value)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        super().mouseReleaseEvent(event)
        if self.on_released is not None:
            self.on_released(self)
