"""The map: nodes and association lines on a background that keeps its aspect ratio.

Positions are percentages of the map (as in the scenario file), so the scene
has a fixed logical size -- 1000 units wide, as high as the background's
aspect ratio asks (16:10 without one) -- and the view scales the whole scene
to fit the window with the aspect ratio kept. A legend of the link colours and
node states sits in the view's corner, independent of the zoom.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetricsF,
    QImage,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QFrame, QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from control_center.gui.icons import icon_pixmap
from control_center.gui.link_item import PARALLEL_GAP, LinkItem
from control_center.gui.node_item import NodeItem
from control_center.gui.view_model import CATEGORY_LABELS, MapLink, NodeState, ViewModel
from control_center.safe_text import plain_markup

SCENE_WIDTH = 1000.0
DEFAULT_ASPECT = 10 / 16
_LEGEND_FONT = QFont("DejaVu Sans", 9)
_LEGEND_TITLE = QFont("DejaVu Sans", 9, QFont.Weight.Bold)


class Background:
    """An optional image (SVG or bitmap) drawn into the whole scene rectangle."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.svg: QSvgRenderer | None = None
        self.pixmap: QPixmap | None = None
        self.error: str | None = None
        if path is None:
            return
        if path.suffix.lower() == ".svg":
            renderer = QSvgRenderer(str(path))
            if renderer.isValid():
                self.svg = renderer
            else:
                self.error = f"cannot read the background {path}"
        else:
            pixmap = QPixmap(str(path))
            if pixmap.isNull():
                self.error = f"cannot read the background {path}"
            else:
                self.pixmap = pixmap

    @property
    def aspect(self) -> float:
        """Height / width of the image (the default map's without one)."""
        if self.svg is not None:
            size = self.svg.defaultSize()
            if size.width() > 0 and size.height() > 0:
                return size.height() / size.width()
        if self.pixmap is not None and self.pixmap.width() > 0:
            return self.pixmap.height() / self.pixmap.width()
        return DEFAULT_ASPECT

    def paint(self, painter: QPainter, rect: QRectF) -> bool:
        if self.svg is not None:
            self.svg.render(painter, rect)
            return True
        if self.pixmap is not None:
            painter.drawPixmap(rect, self.pixmap, QRectF(self.pixmap.rect()))
            return True
        return False


class MapScene(QGraphicsScene):
    def __init__(self, background: Background) -> None:
        super().__init__()
        self.background = background
        self.setSceneRect(QRectF(0, 0, SCENE_WIDTH, SCENE_WIDTH * background.aspect))

    def drawBackground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        painter.fillRect(rect, QColor("#dfe4ea"))
        scene = self.sceneRect()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.background.paint(painter, scene):
            return
        gradient = QLinearGradient(scene.topLeft(), scene.bottomRight())
        gradient.setColorAt(0.0, QColor("#fbfcfe"))
        gradient.setColorAt(1.0, QColor("#e9eef5"))
        painter.fillRect(scene, QBrush(gradient))
        painter.setPen(QPen(QColor(120, 140, 170, 38), 1))
        step = 40.0
        x = scene.left()
        while x <= scene.right():
            painter.drawLine(QPointF(x, scene.top()), QPointF(x, scene.bottom()))
            x += step
        y = scene.top()
        while y <= scene.bottom():
            painter.drawLine(QPointF(scene.left(), y), QPointF(scene.right(), y))
            y += step


class MapView(QGraphicsView):
    # Signals never carry None: PySide6 loses a reference to None on every such emit.
    node_selected = Signal(str)  # node name, "" for none
    node_menu_requested = Signal(str, QPoint)
    background_menu_requested = Signal(QPoint)
    layout_changed = Signal()

    def __init__(self, model: ViewModel, background: Path | None, parent: QWidget | None = None):
        self.model = model
        self.background = Background(background)
        scene = MapScene(self.background)
        super().__init__(scene, parent)
        self.map_scene = scene
        self.nodes: dict[str, NodeItem] = {}
        self.links: dict[tuple[frozenset[str], str], LinkItem] = {}
        self.show_durations = True
        self.show_legend = True
        self.presenting = False
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing
            | QPainter.RenderHint.TextAntialiasing
            | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Repaint only what changed, and draw the background once per size: a full
        # antialiased repaint per status report would cost the event loop dearly.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumSize(480, 320)
        scene.selectionChanged.connect(self._selection_changed)
        for name in model.nodes:
            self.add_node(name)
        self.refresh_nodes(list(model.nodes))
        self.refresh_links()

    # ------------------------------------------------------------------ nodes
    def to_scene(self, position: tuple[float, float]) -> QPointF:
        rect = self.map_scene.sceneRect()
        return QPointF(rect.width() * position[0] / 100.0, rect.height() * position[1] / 100.0)

    def to_percent(self, point: QPointF) -> tuple[float, float]:
        rect = self.map_scene.sceneRect()
        x = round(100.0 * point.x() / rect.width(), 1)
        y = round(100.0 * point.y() / rect.height(), 1)
        return (min(max(x, 0.0), 100.0), min(max(y, 0.0), 100.0))

    def add_node(self, name: str) -> NodeItem:
        node = self.model.nodes[name]
        item = NodeItem(name, node.kind, node.display_name)
        item.setPos(self.to_scene(node.position))
        item.on_moved = self._node_moved
        item.on_released = self._node_released
        self.map_scene.addItem(item)
        self.nodes[name] = item
        self.refresh_nodes([name])
        return item

    def remove_node(self, name: str) -> None:
        item = self.nodes.pop(name, None)
        if item is not None:
            self.map_scene.removeItem(item)
        self.refresh_links()

    def refresh_nodes(self, names: list[str] | set[str]) -> None:
        for name in names:
            item = self.nodes.get(name)
            if item is None or name not in self.model.nodes:
                continue
            item.update_content(
                state=self.model.node_state(name),
                status=self.model.status_text(name),
                location=self.model.location_text(name),
                workload=self.model.workload(name),
                tooltip=self._node_tooltip(name),
            )

    def refresh_all(self) -> None:
        self.refresh_nodes(list(self.nodes))
        self.refresh_links()

    def _node_tooltip(self, name: str) -> str:
        node = self.model.nodes[name]
        state = self.model.states.get(name)
        lines = [f"<b>{node.display_name}</b> ({node.kind})"]
        if node.csp_id is not None:
            lines.append(f"CSP id {node.csp_id:x}")
        if node.host is not None:
            lines.append(f"host {node.host}")
        lines.append(f"state: {self.model.node_state(name).value}")
        lines.append(f"status: {plain_markup(self.model.status_text(name))}")
        if state is not None and state.location:
            lines.append(f"reports from: {plain_markup(state.location)}")
        if state is not None and state.report_interval:
            lines.append(f"report interval {state.report_interval * 1000:.0f} ms")
        workload = self.model.workload(name)
        if workload is not None:
            lines.append(f"workload {workload.text}: {workload.tooltip}")
        if node.discovered:
            lines.append("<i>not in the scenario (discovered)</i>")
        return "<br>".join(lines)

    def _node_moved(self, item: NodeItem) -> None:
        for link in self.links.values():
            if link.source is item or link.target is item:
                link.refresh_geometry()

    def _node_released(self, item: NodeItem) -> None:
        position = self.to_percent(item.pos())
        if position != self.model.nodes[item.name].position:
            self.model.set_position(item.name, position)
            self.layout_changed.emit()

    def positions(self) -> dict[str, tuple[float, float]]:
        return {
            name: self.to_percent(item.pos())
            for name, item in self.nodes.items()
            if not self.model.nodes[name].discovered
        }

    def selected(self) -> str | None:
        items = [i for i in self.map_scene.selectedItems() if isinstance(i, NodeItem)]
        return items[0].name if items else None

    def select(self, name: str | None) -> None:
        if name == self.selected():
            return
        self.map_scene.clearSelection()
        if name is not None and name in self.nodes:
            self.nodes[name].setSelected(True)

    def _selection_changed(self) -> None:
        try:
            name = self.selected()
        except RuntimeError:  # the scene is being destroyed with the window
            return
        self.node_selected.emit(name or "")

    def set_hotkeys(self, keys: dict[str, str], visible: bool) -> None:
        for name, item in self.nodes.items():
            item.set_hotkey(keys.get(name), visible)

    # ------------------------------------------------------------------ links
    def refresh_links(self) -> None:
        wanted: dict[tuple[frozenset[str], str], MapLink] = {
            link.key: link
            for link in self.model.links()
            if link.source in self.nodes and link.target in self.nodes
        }
        for key in list(self.links):
            if key not in wanted:
                self.map_scene.removeItem(self.links.pop(key))
        for key, link in wanted.items():
            item = self.links.get(key)
            if item is None:
                color = self.model.colors.get(link.category, "#333333")
                item = LinkItem(link, self.nodes[link.source], self.nodes[link.target], color)
                item.show_duration = self.show_durations
                self.links[key] = item
                self.map_scene.addItem(item)
            else:
                item.update_link(link)
        # Several protocols between the same pair: side by side, not on top of each other.
        by_pair: dict[frozenset[str], list[LinkItem]] = {}
        for key, item in sorted(self.links.items(), key=lambda kv: kv[0][1]):
            by_pair.setdefault(key[0], []).append(item)
        for items in by_pair.values():
            for index, item in enumerate(items):
                item.set_offset((index - (len(items) - 1) / 2) * PARALLEL_GAP)
                item.refresh_geometry()

    def visible_links(self) -> list[MapLink]:
        return [item.link for item in self.links.values()]

    def set_show_durations(self, show: bool) -> None:
        self.show_durations = show
        for item in self.links.values():
            item.show_duration = show
            item.update()

    # ------------------------------------------------------------------ view
    def fit(self) -> None:
        """Scale the whole map into the view, keeping the legend's strip below it free.

        The view shows the map plus an empty band of the legend's height under it
        (in scene units at the resulting scale), so no node can hide under the legend.
        """
        rect = self.map_scene.sceneRect()
        width, height = float(self.viewport().width()), float(self.viewport().height())
        reserve = self.legend_rect().height() + 20 if self.show_legend else 0.0
        scale = min(width / rect.width(), max(1.0, height - reserve) / rect.height())
        shown = rect.adjusted(0, 0, 0, reserve / max(scale, 1e-6))
        self.setSceneRect(shown)
        self.fitInView(shown, Qt.AspectRatioMode.KeepAspectRatio)

    def map_rect(self) -> QRectF:
        """Where the map (the scene without the legend's band) is, in viewport coordinates."""
        return self.mapFromScene(self.map_scene.sceneRect()).boundingRect().toRectF()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.fit()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        item = self.itemAt(event.pos())
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, NodeItem):
            self.select(item.name)
            self.node_menu_requested.emit(item.name, event.globalPos())
        else:
            self.background_menu_requested.emit(event.globalPos())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        super().mouseDoubleClickEvent(event)

    def set_presenting(self, presenting: bool) -> None:
        """Presentation mode (the window shows its caption and hotkeys around the map)."""
        self.presenting = presenting
        self.viewport().update()

    # ------------------------------------------------------------------ overlay
    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.show_legend:
            self._paint_legend(painter)
        painter.restore()

    def legend_rect(self) -> QRectF:
        """Where the legend is drawn, in viewport coordinates."""
        return self._legend_layout(float(self.viewport().width()), float(self.viewport().height()))[
            0
        ]

    def _legend_layout(
        self, view_width: float, view_height: float
    ) -> tuple[QRectF, list[list[tuple[str, str, str]]], float]:
        """The legend's box, its rows of (kind, payload, text) and the row height."""
        metrics = QFontMetricsF(_LEGEND_FONT)
        row = metrics.height() + 8
        # (kind, payload, text): "title", "line" (colour), "icon" (state)
        items: list[tuple[str, str, str]] = [("title", "", "Links")]
        items += [("line", self.model.colors.get(c, "#333"), t) for c, t in CATEGORY_LABELS.items()]
        items += [("title", "", "Components")]
        items += [("icon", s.value, s.value) for s in NodeState]
        rows: list[list[tuple[str, str, str]]] = [[]]
        used = 0.0
        limit = max(200.0, view_width - 44)
        for item in items:
            w = _legend_item_width(item[0], item[2])
            if rows[-1] and used + w > limit:
                rows.append([])
                used = 0.0
            rows[-1].append(item)
            used += w
        box_w = max(sum(_legend_item_width(k, t) for k, _, t in r) for r in rows) + 16
        box_h = row * len(rows) + 6
        return QRectF(10, view_height - box_h - 10, box_w, box_h), rows, row

    def _paint_legend(
        self, painter: QPainter, width: float | None = None, height: float | None = None
    ) -> None:
        """One strip along the bottom: link colours, then the node states."""
        view_width = float(self.viewport().width()) if width is None else width
        view_height = float(self.viewport().height()) if height is None else height
        box, rows, row = self._legend_layout(view_width, view_height)
        painter.setPen(QPen(QColor(60, 70, 90, 90), 1))
        painter.setBrush(QColor(255, 255, 255, 228))
        painter.drawRoundedRect(box, 8, 8)
        y = box.top() + 3
        for items_in_row in rows:
            x = box.left() + 10
            for kind, payload, text in items_in_row:
                w = _legend_item_width(kind, text)
                cell = QRectF(x, y, w, row)
                if kind == "title":
                    painter.setFont(_LEGEND_TITLE)
                    painter.setPen(QColor("#1d2430"))
                    painter.drawText(cell, Qt.AlignmentFlag.AlignVCenter, text)
                elif kind == "line":
                    mid = y + row / 2
                    pen = QPen(QColor(payload), 5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
                    painter.setPen(pen)
                    painter.drawLine(QPointF(x + 3, mid), QPointF(x + 25, mid))
                    painter.setFont(_LEGEND_FONT)
                    painter.setPen(QColor("#1d2430"))
                    painter.drawText(
                        cell.adjusted(32, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, text
                    )
                else:
                    icon = icon_pixmap("pool-element", payload, 48)
                    h = row - 6
                    painter.drawPixmap(QRectF(x, y + 3, h / 0.875, h), icon, QRectF())
                    painter.setFont(_LEGEND_FONT)
                    painter.setPen(QColor("#1d2430"))
                    painter.drawText(
                        cell.adjusted(24, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, text
                    )
                x += w
            y += row

    # ------------------------------------------------------------------ images
    def render_image(self, width: int = 1600) -> QImage:
        """The whole map (with legend) as an image, independent of the window size."""
        rect = self.map_scene.sceneRect()
        size = QSize(width, round(width * rect.height() / rect.width()))
        image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QColor("#ffffff"))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        # Item caches belong to the on-screen view; rendering elsewhere through them
        # can show an outdated node, so the nodes paint directly for this image.
        for item in self.nodes.values():
            item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
        try:
            self.map_scene.render(painter, QRectF(0, 0, size.width(), size.height()), rect)
        finally:
            for item in self.nodes.values():
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        painter.resetTransform()
        if self.show_legend:
            self._paint_legend(painter, float(size.width()), float(size.height()))
        painter.end()
        return image


def _legend_item_width(kind: str, text: str) -> float:
    if kind == "title":
        return QFontMetricsF(_LEGEND_TITLE).horizontalAdvance(text) + 10
    return (30 if kind == "line" else 22) + QFontMetricsF(_LEGEND_FONT).horizontalAdvance(text) + 16
