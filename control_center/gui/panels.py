"""Side panels: component list, pools with their pool elements, timeline of events."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from control_center.gui.icons import qicon
from control_center.gui.node_item import STATE_COLORS
from control_center.gui.view_model import NodeState, TimelineEntry, ViewModel

TIMELINE_LIMIT = 5000
KIND_LABELS = {
    "registrar": "registrar",
    "pool-element": "pool element",
    "pool-user": "pool user",
    "other": "program",
}
TIMELINE_COLORS = {
    "failover": "#c25e00",
    "fault": "#6c35a3",
    "error": "#b8342a",
    "command": "#1f5fbf",
    "story": "#0f6b5c",
    "monitor": "#5b6470",
}


class ComponentPanel(QTreeWidget):
    """Every component with its state, status text and host (the icon shows its kind).

    Columns fit their content; a status too long for the panel is cut with "…"
    and shown whole in the tooltip.
    """

    component_selected = Signal(str)  # "" for none (see map_view.MapView)
    menu_requested = Signal(str, QPoint)

    COLUMNS = ("Component", "State", "Status", "Host")

    def __init__(self, model: ViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view_model = model
        self.rows: dict[str, QTreeWidgetItem] = {}
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemSelectionChanged.connect(self._selection_changed)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The status takes what is left; the host column sits at the end.
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        for name in model.nodes:
            self.add(name)

    def add(self, name: str) -> None:
        node = self.view_model.nodes[name]
        item = QTreeWidgetItem([node.name, "", "", ""])
        item.setToolTip(0, f"{node.name}: {KIND_LABELS.get(node.kind, node.kind)}")
        item.setData(0, Qt.ItemDataRole.UserRole, name)
        self.rows[name] = item
        self.addTopLevelItem(item)
        self.refresh([name])

    def remove(self, name: str) -> None:
        item = self.rows.pop(name, None)
        if item is not None:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))

    def refresh(self, names: list[str] | set[str]) -> None:
        for name in names:
            item = self.rows.get(name)
            if item is None or name not in self.view_model.nodes:
                continue
            node = self.view_model.nodes[name]
            state = self.view_model.node_state(name)
            item.setIcon(0, qicon(node.kind, state.value))
            item.setText(1, state.value)
            item.setForeground(1, QBrush(QColor(STATE_COLORS[state])))
            status = self.view_model.status_text(name)
            item.setText(2, status)
            item.setToolTip(2, status)
            item.setText(3, node.host or "(discovered)")
            item.setToolTip(3, self.view_model.location_text(name))

    def select(self, name: str | None) -> None:
        current = self.selected()
        if name == current:
            return
        self.blockSignals(True)
        self.clearSelection()
        if name is not None and name in self.rows:
            self.rows[name].setSelected(True)
            self.scrollToItem(self.rows[name])
        self.blockSignals(False)

    def selected(self) -> str | None:
        items = self.selectedItems()
        return str(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def _selection_changed(self) -> None:
        self.component_selected.emit(self.selected() or "")

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is not None:
            name = str(item.data(0, Qt.ItemDataRole.UserRole))
            self.menu_requested.emit(name, self.viewport().mapToGlobal(pos))


class PoolsPanel(QTreeWidget):
    """Pools and their pool elements as the status reports tell them; registrars below."""

    COLUMNS = ("Pool / element", "State", "Home", "Sessions", "Used by")

    def __init__(self, model: ViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view_model = model
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setUniformRowHeights(True)
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.refresh()

    def refresh(self) -> None:
        tops = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        collapsed = {
            top.text(0).split(" ", 1)[0] for top in tops if top is not None and not top.isExpanded()
        }
        self.clear()
        bold = QFont()
        bold.setBold(True)
        for handle, rows in self.view_model.pools():
            active = sum(1 for r in rows if r.state is NodeState.ACTIVE)
            top = QTreeWidgetItem([f"{handle}  ({active} of {len(rows)} active)"])
            top.setFont(0, bold)
            self.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)  # a long pool handle does not widen the column
            for row in rows:
                child = QTreeWidgetItem(
                    [
                        row.name,
                        row.state.value,
                        row.home or "",
                        str(row.sessions) if row.sessions else "",
                        ", ".join(row.users),
                    ]
                )
                child.setIcon(0, qicon("pool-element", row.state.value))
                child.setToolTip(0, f"{row.name}: {row.status}")
                child.setToolTip(2, f"home registrar: {row.home or 'none'}")
                child.setForeground(1, QBrush(QColor(STATE_COLORS[row.state])))
                top.addChild(child)
            top.setExpanded(handle not in collapsed)
        registrars = [n for n in self.view_model.nodes.values() if n.kind == "registrar"]
        if registrars:
            top = QTreeWidgetItem(["Registrars"])
            top.setFont(0, bold)
            self.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)
            for node in registrars:
                state = self.view_model.node_state(node.name)
                homes = sorted(
                    row.name
                    for _, rows in self.view_model.pools()
                    for row in rows
                    if row.home == node.name
                )
                child = QTreeWidgetItem(
                    [node.name, state.value, self.view_model.status_text(node.name), "", ""]
                )
                child.setIcon(0, qicon("registrar", state.value))
                child.setForeground(1, QBrush(QColor(STATE_COLORS[state])))
                if homes:
                    child.setText(4, "home of " + ", ".join(homes))
                top.addChild(child)
            top.setExpanded("Registrars" not in collapsed)


class TimelinePanel(QTreeWidget):
    """Every event with its time: since the window opened, and the clock."""

    COLUMNS = ("t (s)", "Time", "Event")

    def __init__(self, origin: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.origin = origin
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.entries: list[TimelineEntry] = []

    def add(self, entry: TimelineEntry) -> None:
        self.entries.append(entry)
        item = QTreeWidgetItem([f"{entry.at - self.origin:8.3f}", entry.clock(), entry.text])
        item.setTextAlignment(0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        color = TIMELINE_COLORS.get(entry.kind)
        if color is not None:
            item.setForeground(2, QBrush(QColor(color)))
        if entry.kind in ("failover", "fault", "error", "story"):
            font = item.font(2)
            font.setBold(True)
            item.setFont(2, font)
        item.setToolTip(2, f"{entry.kind}: {entry.text}")
        at_end = self.verticalScrollBar().value() >= self.verticalScrollBar().maximum() - 2
        self.addTopLevelItem(item)
        while self.topLevelItemCount() > TIMELINE_LIMIT:
            self.takeTopLevelItem(0)
            self.entries.pop(0)
        if at_end:
            self.scrollToBottom()

    def texts(self) -> list[str]:
        return [e.text for e in self.entries]
