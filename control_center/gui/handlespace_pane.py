"""The Handlespace pane: every registrar's table, live, and their checksums side by side.

While the pane is shown (and *Auto* is on) it asks every running registrar for its
handlespace every ``REFRESH_MS`` through the engine (ENRP Handle Table Requests, like
``rsp-hsdump``). The checksum table has a row per home registrar and a column per
registrar asked: a row of equal values (green) means every registrar agrees on what that
home owns; after a fault the differing cells (red) show the copies converging. Below, the
tree lists each registrar's pools and PEs with policy, load, home, transport and lifetime.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from control_center.commands import registrar_endpoints
from control_center.gui.engine import EngineBridge
from control_center.gui.view_model import NodeState, ViewModel
from control_center.handlespace_poller import (
    RegistrarTable,
    RegistrarTarget,
    checksum_rows,
    fetch_tables,
)
from rsplib.inspect.handlespace_dump import policy_text, transport_text
from rsplib.trace.record import escape_bytes
from rsplib.wire.constants import FRACTION_MAX
from rsplib.wire.csp import ComponentGroup, component_id

REFRESH_MS: Final = 2000
AGREE: Final = QColor("#d8f0d8")
DIFFER: Final = QColor("#f6d0d0")

#: Runs a coroutine function in the engine loop (EngineBridge.call).
Runner = Callable[[Callable[[], Coroutine[Any, Any, Any]]], concurrent.futures.Future[Any]]
#: The registrars to ask now (running ones only).
Targets = Callable[[], list[RegistrarTarget]]
#: Display name of a registrar server id.
RegistrarName = Callable[[int], str]


class HandlespacePane(QWidget):
    def __init__(
        self, run: Runner, targets: Targets, name_of: RegistrarName, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._run = run
        self._targets = targets
        self._name_of = name_of
        self._pending: concurrent.futures.Future[Any] | None = None
        self.tables: list[RegistrarTable] = []
        self.refreshes = 0

        self.auto_box = QCheckBox("Auto (every 2 s while shown)")
        self.auto_box.setChecked(True)
        refresh = QPushButton("Refresh now")
        refresh.clicked.connect(self.refresh)
        self.status = QLabel("not asked yet")
        top = QHBoxLayout()
        top.addWidget(self.auto_box)
        top.addWidget(refresh)
        top.addWidget(self.status, 1)

        self.checksums = QTableWidget()
        self.checksums.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.checksums.verticalHeader().setVisible(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Registrar / pool / PE", "Policy", "Load", "Home",
                                   "Transport", "Lifetime"])  # fmt: skip
        self.tree.setColumnWidth(0, 220)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.checksums)
        splitter.addWidget(self.tree)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(QLabel("Ownership checksums (row: home registrar, column: asked):"))
        layout.addWidget(splitter, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._auto_refresh)
        self._timer.start()
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._collect)

    # ------------------------------------------------------------------ fetching

    def _auto_refresh(self) -> None:
        if self.auto_box.isChecked() and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        """Ask every running registrar once (no-op while an answer is still pending)."""
        if self._pending is not None:
            return
        targets = self._targets()
        if not targets:
            self.status.setText("no registrar running")
            return
        try:
            self._pending = self._run(lambda: fetch_tables(targets))
        except (AssertionError, RuntimeError):
            self.status.setText("the engine is not running")
            return
        self._poll.start()

    def _collect(self) -> None:
        future = self._pending
        if future is None or not future.done():
            return
        self._pending = None
        self._poll.stop()
        try:
            tables = future.result()
        except Exception as exc:
            self.status.setText(f"failed: {exc}")
            return
        self.show_tables(tables)

    # ------------------------------------------------------------------ showing

    def show_tables(self, tables: list[RegistrarTable]) -> None:
        self.tables = tables
        self.refreshes += 1
        errors = [f"{t.name}: {t.error}" for t in tables if t.error]
        stamp = time.strftime("%H:%M:%S")
        self.status.setText(f"as of {stamp}" + (f"; {'; '.join(errors)}" if errors else ""))
        self._fill_checksums(tables)
        self._fill_tree(tables)

    def _fill_checksums(self, tables: list[RegistrarTable]) -> None:
        rows = checksum_rows(tables)
        table = self.checksums
        table.clear()
        table.setColumnCount(len(tables))
        table.setRowCount(len(rows))
        table.setHorizontalHeaderLabels([f"at {t.name}" for t in tables])
        table.setVerticalHeaderLabels([f"home {self._name_of(home)}" for home, _ in rows])
        for row, (_home, cells) in enumerate(rows):
            values = {cell for cell in cells if cell is not None}
            colour = AGREE if len(values) == 1 and None not in cells else DIFFER
            for column, cell in enumerate(cells):
                text = "no answer" if cell is None else f"0x{cell[0]:04x} ({cell[1]} PEs)"
                item = QTableWidgetItem(text)
                item.setBackground(QBrush(colour))
                table.setItem(row, column, item)
        table.resizeColumnsToContents()

    def _fill_tree(self, tables: list[RegistrarTable]) -> None:
        tree = self.tree
        collapsed = set()
        for index in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(index)
            if item is not None and not item.isExpanded():
                collapsed.add(item.data(0, Qt.ItemDataRole.UserRole))
        tree.clear()
        for table in tables:
            dump = table.dump
            if dump is None:
                QTreeWidgetItem(tree, [f"{table.name}: {table.error}"])
                continue
            top = QTreeWidgetItem(
                tree, [f"{table.name} (0x{dump.server_id:08x}): {dump.pe_count} PE(s)"]
            )
            top.setData(0, Qt.ItemDataRole.UserRole, table.name)
            for pool_handle in sorted(dump.pools):
                pes = dump.pools[pool_handle]
                pool = QTreeWidgetItem(top, [f'pool "{escape_bytes(pool_handle)}"'])
                for identifier in sorted(pes):
                    pe = pes[identifier]
                    QTreeWidgetItem(
                        pool,
                        [
                            f"PE 0x{identifier:08x}",
                            policy_text(pe),
                            f"{pe.policy.load / FRACTION_MAX:.0%}",
                            self._name_of(pe.home_registrar_id),
                            transport_text(pe.user_transport),
                            f"{pe.registration_life} ms",
                        ],
                    )
                pool.setExpanded(True)
            top.setExpanded(table.name not in collapsed)
        for column in range(1, tree.columnCount()):
            tree.resizeColumnToContents(column)


def make_handlespace_pane(bridge: EngineBridge, model: ViewModel) -> HandlespacePane:
    """The pane for the window's engine: asks the registrars that are running now."""

    def targets() -> list[RegistrarTarget]:
        orchestrator = bridge.orchestrator
        if orchestrator is None or not bridge.running:
            return []
        context = orchestrator.run_context()
        found = []
        for component in bridge.scenario.registrars():
            if model.node_state(component.name) is not NodeState.ACTIVE:
                continue
            host, _asap, enrp = registrar_endpoints(bridge.scenario, component, context)
            found.append(RegistrarTarget(component.name, host, enrp))
        return found

    def name_of(server_id: int) -> str:
        name = model.node_of_id(component_id(ComponentGroup.REGISTRAR, server_id))
        return name or f"0x{server_id:08x}"

    return HandlespacePane(bridge.call, targets, name_of)
