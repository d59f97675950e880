"""The control center's main window: map, pictures, side panels, log pane, toolbar, menus.

Each pool user's picture is a dock of its own (:mod:`control_center.gui.picture_pane`),
beside the map in a wide window and below it in a tall one; the same picture
is drawn small on the pool user's node. Failovers shown anywhere are the ones
the pool users reported themselves.

Every action -- in a node's context menu, the toolbar, the menus or a
presenter hotkey -- becomes a command for the engine thread and returns at
once; the window shows the command as "stopping…" on the node until the
engine reports the outcome, and failures land in the timeline and the status
bar. Nothing here waits for a process, a socket or a file on another host.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QStyle,
    QToolBar,
    QToolButton,
    QWidget,
)

from control_center.gui.engine import CommandResult, EngineBridge, EngineInfo
from control_center.gui.handlespace_pane import make_handlespace_pane
from control_center.gui.layout_file import LayoutError, save_positions
from control_center.gui.log_pane import LogPane
from control_center.gui.map_view import MapView
from control_center.gui.panels import ComponentPanel, PoolsPanel, TimelinePanel
from control_center.gui.picture_pane import PicturePane
from control_center.gui.plots_pane import PlotsPane
from control_center.gui.policy_lab_pane import PolicyLabPane
from control_center.gui.presenter import ACTION_KEYS, Presenter, Stage
from control_center.gui.tour import TourControl
from control_center.gui.trace_panes import TraceView, scrollable
from control_center.gui.view_model import Changes, NodeState, TimelineEntry, ViewModel
from control_center.launchers.base import Action, LauncherEvent
from control_center.monitor import MonitorEvent
from control_center.orchestrator import Orchestrator
from control_center.registration import registration_wait
from control_center.scenario import ComponentKind
from control_center.trace_events import PuFailover

#: Component actions in menu order: (key, label, busy text, shortcut outside presenter mode).
COMPONENT_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("start", "Start", "starting"),
    ("stop", "Stop (SIGINT)", "stopping"),
    ("kill", "Kill (SIGKILL)", "killing"),
    ("hang", "Hang (SIGSTOP)", "hanging"),
    ("resume", "Resume (SIGCONT)", "resuming"),
    ("restart", "Restart", "restarting"),
    ("unplug", "Unplug host", "unplugging"),
    ("replug", "Replug host", "replugging"),
    ("log", "Show log", ""),
)
#: Coalesce bursts of reports into one repaint of the panels.
REFRESH_DELAY_MS = 60
#: Give up waiting for the engine to stop everything after this long when closing.
CLOSE_TIMEOUT_MS = 45_000
#: Wider than this (width / height) and the pictures go beside the map, else below it.
WIDE_ASPECT = 1.45
DEFAULT_SIZE = (1400, 860)


class MainWindow(QMainWindow):
    def __init__(self, bridge: EngineBridge, *, title_suffix: str = "") -> None:
        super().__init__()
        self.bridge = bridge
        self.scenario = bridge.scenario
        self.model = ViewModel(self.scenario)
        self.origin = time.monotonic()
        self.info: EngineInfo | None = None
        self.current: str | None = None
        self.layout_dirty = False
        self.engine_stopped = False
        self._closing = False
        self._close_when_stopped = False
        #: Closing the window ends the application (tests turn this off).
        self.quit_on_close = True
        self.commands_started = 0
        self.commands_finished = 0
        self.command_errors: list[CommandResult] = []
        self.on_timeline: list[Callable[[TimelineEntry], None]] = []
        self._dirty_nodes: set[str] = set()
        self._dirty_links = False
        self._dirty_pools = False
        source = self.scenario.source.name if self.scenario.source is not None else ""
        self.setWindowTitle(
            f"{self.scenario.name} - RSerPool control center"
            + (f" - {source}" if source else "")
            + title_suffix
        )
        self.resize(*DEFAULT_SIZE)

        self.map = MapView(self.model, self.scenario.background)
        self.stage = Stage(self.map, self.scenario.name)
        self.setCentralWidget(self.stage)
        self.pictures: dict[str, PicturePane] = {}
        self.picture_docks: dict[str, QDockWidget] = {}
        self._pictures_wide: bool | None = None
        self.components = ComponentPanel(self.model)
        self.pools = PoolsPanel(self.model)
        self.timeline = TimelinePanel(self.origin)
        self.log_pane = LogPane([c.name for c in self.scenario.components])
        self._docks()
        self._actions()
        self._menus_and_toolbar()
        self.engine_label = QLabel("engine starting…")
        self.statusBar().addPermanentWidget(self.engine_label)
        self.presenter = Presenter(
            self,
            select=self.select_pool_element,
            act=self.presenter_action,
            on_change=self._presenting_changed,
        )
        self._show_hotkeys_in_menus()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        # Durations on the links grow by themselves: redraw them once a second.
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._second_tick)
        self._tick.start()

        self.map.node_selected.connect(self.set_current)
        self.map.node_menu_requested.connect(self.popup_node_menu)
        self.map.background_menu_requested.connect(self.popup_scenario_menu)
        self.map.layout_changed.connect(self._layout_changed)
        self.components.component_selected.connect(self.set_current)
        self.components.menu_requested.connect(self.popup_node_menu)
        self.log_pane.component_changed.connect(self._log_component_changed)
        if self.map.background.error:
            self._note("error", self.map.background.error)

        queued = Qt.ConnectionType.QueuedConnection
        signals = bridge.signals
        signals.monitor_event.connect(self.on_monitor_event, queued)
        signals.launcher_event.connect(self.on_launcher_event, queued)
        signals.command_finished.connect(self.on_command_finished, queued)
        signals.ready.connect(self.on_engine_ready, queued)
        signals.failed.connect(self.on_engine_failed, queued)
        signals.stopped.connect(self.on_engine_stopped, queued)
        signals.log_text.connect(self.log_pane.append, queued)
        signals.picture.connect(self.on_picture, queued)
        signals.failover.connect(self.on_failover, queued)
        self.update_actions()

    # ------------------------------------------------------------------ construction
    def _docks(self) -> None:
        def dock(title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
            d = QDockWidget(title, self)
            d.setObjectName(name)
            d.setWidget(widget)
            self.addDockWidget(area, d)
            return d

        left = Qt.DockWidgetArea.LeftDockWidgetArea
        self.components_dock = dock("Components", self.components, left, "components")
        self.pools_dock = dock("Pools", self.pools, left, "pools")
        self.timeline_dock = dock(
            "Timeline", self.timeline, Qt.DockWidgetArea.RightDockWidgetArea, "timeline"
        )
        self.log_dock = dock("Log", self.log_pane, Qt.DockWidgetArea.BottomDockWidgetArea, "log")
        right = Qt.DockWidgetArea.RightDockWidgetArea
        for comp in self.scenario.components:
            if comp.kind is not ComponentKind.FRACTAL_PU:
                continue
            pane = PicturePane(comp.name)
            if self.scenario.host_of(comp).kind == "ssh":
                pane.set_note("the picture of a pool user on an SSH host is not shown here")
            self.pictures[comp.name] = pane
            self.picture_docks[comp.name] = dock(
                f"Picture · {comp.display_name}", pane, right, f"picture-{comp.name}"
            )
        self.tabifyDockWidget(self.components_dock, self.pools_dock)
        self.components_dock.raise_()
        # The live protocol trace: dots on the map and the sequence chart (tabbed with the log).
        self.trace_view = TraceView(self.map, self.model, self.bridge.trace_store)
        self.messages_dock = dock(
            "Messages",
            scrollable(self.trace_view.panel),
            Qt.DockWidgetArea.BottomDockWidgetArea,
            "messages",
        )
        self.tabifyDockWidget(self.log_dock, self.messages_dock)
        self.tour = TourControl(self.map, self.trace_view, self)
        self.handlespace = make_handlespace_pane(self.bridge, self.model)
        self.handlespace_dock = dock(
            "Handlespace",
            scrollable(self.handlespace),
            Qt.DockWidgetArea.BottomDockWidgetArea,
            "handlespace",
        )
        self.tabifyDockWidget(self.messages_dock, self.handlespace_dock)
        self.policy_lab = PolicyLabPane(self.bridge, self.model, self.bridge.trace_store)
        self.trace_view.consumers.append(self.policy_lab.feed)
        self.policy_lab_dock = dock(
            "Policy lab",
            scrollable(self.policy_lab),
            Qt.DockWidgetArea.BottomDockWidgetArea,
            "policy-lab",
        )
        self.tabifyDockWidget(self.handlespace_dock, self.policy_lab_dock)
        self.plots = PlotsPane(self.bridge.trace_store, self.model)
        self.plots_dock = dock(
            "Plots", scrollable(self.plots), Qt.DockWidgetArea.BottomDockWidgetArea, "plots"
        )
        self.tabifyDockWidget(self.policy_lab_dock, self.plots_dock)
        self.log_dock.raise_()
        self.resizeDocks([self.components_dock], [300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.timeline_dock], [340], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [110], Qt.Orientation.Vertical)

    def _actions(self) -> None:
        style = self.style()
        sp = QStyle.StandardPixmap
        icons = {
            "start": sp.SP_MediaPlay,
            "stop": sp.SP_MediaStop,
            "kill": sp.SP_DialogCancelButton,
            "hang": sp.SP_MediaPause,
            "resume": sp.SP_MediaSeekForward,
            "restart": sp.SP_BrowserReload,
            "unplug": sp.SP_DriveNetIcon,
            "replug": sp.SP_DialogApplyButton,
            "log": sp.SP_FileDialogDetailedView,
        }
        self.component_actions: dict[str, QAction] = {}
        for key, label, _busy in COMPONENT_ACTIONS:
            action = QAction(style.standardIcon(icons[key]), label, self)
            action.setToolTip(f"{label} the selected component")
            action.triggered.connect(lambda _=False, k=key: self.act_on_current(k))
            self.component_actions[key] = action
        self.start_all_action = QAction(style.standardIcon(sp.SP_MediaPlay), "Start all", self)
        self.start_all_action.setToolTip("Start every component: registrars, PEs, then PUs")
        self.start_all_action.triggered.connect(self.start_all)
        self.stop_all_action = QAction(style.standardIcon(sp.SP_MediaStop), "Stop all", self)
        self.stop_all_action.setToolTip("Stop everything (SIGINT): PUs, PEs, then registrars")
        self.stop_all_action.triggered.connect(self.stop_all)
        self.kill_all_action = QAction(
            style.standardIcon(sp.SP_DialogCancelButton), "Kill all", self
        )
        self.kill_all_action.setToolTip("Kill everything at once (SIGKILL)")
        self.kill_all_action.triggered.connect(self.kill_all)
        self.kill_serving_action = QAction(
            style.standardIcon(sp.SP_MessageBoxCritical), "Kill a serving PE", self
        )
        self.kill_serving_action.setToolTip(
            "Kill (SIGKILL) the pool element that serves the most pool-user sessions now (X)"
        )
        self.kill_serving_action.triggered.connect(self.kill_serving)
        self.save_layout_action = QAction(
            style.standardIcon(sp.SP_DialogSaveButton), "Save layout", self
        )
        self.save_layout_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_layout_action.setToolTip("Write the node positions into the scenario file")
        self.save_layout_action.triggered.connect(self.save_layout)
        self.durations_action = QAction("Link durations", self)
        self.durations_action.setCheckable(True)
        self.durations_action.setChecked(True)
        self.durations_action.toggled.connect(self.map.set_show_durations)
        self.legend_action = QAction("Legend", self)
        self.legend_action.setCheckable(True)
        self.legend_action.setChecked(True)
        self.legend_action.toggled.connect(self._set_legend)
        self.present_action = QAction(
            style.standardIcon(sp.SP_TitleBarMaxButton), "Presentation mode", self
        )
        self.present_action.setShortcut(QKeySequence("F11"))
        self.present_action.setToolTip("Full screen: the map and the pictures (F11; Esc leaves)")
        self.present_action.triggered.connect(lambda: self.presenter.toggle())
        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)

    def _menus_and_toolbar(self) -> None:
        menu = self.menuBar()
        scenario = menu.addMenu("&Scenario")
        for action in (self.start_all_action, self.stop_all_action, self.kill_all_action):
            scenario.addAction(action)
        scenario.addSeparator()
        scenario.addAction(self.kill_serving_action)
        scenario.addSeparator()
        scenario.addAction(self.save_layout_action)
        scenario.addSeparator()
        scenario.addAction(self.quit_action)
        component = menu.addMenu("&Component")
        for key, action in self.component_actions.items():
            if key in ("hang", "restart", "unplug", "log"):
                component.addSeparator()
            component.addAction(action)
        component.addSeparator()
        self.select_menu = component.addMenu("Select pool element")
        for number, name in enumerate(self.model.pool_elements()[:9], start=1):
            select = self.select_menu.addAction(f"{name}\t{number}")
            select.triggered.connect(lambda _=False, n=number: self.select_pool_element(n))
        view = menu.addMenu("&View")
        view.addAction(self.durations_action)
        view.addAction(self.legend_action)
        view.addSeparator()
        view.addAction(self.present_action)
        view.addSeparator()
        view.addSeparator()
        for dock in (
            *self.picture_docks.values(),
            self.components_dock,
            self.pools_dock,
            self.timeline_dock,
            self.log_dock,
        ):
            view.addAction(dock.toggleViewAction())

        # Scenario-wide actions with their names; the selected component's actions as
        # icons (names in their tooltips), so the bar fits a 1280-pixel-wide window.
        bar = QToolBar("Scenario", self)
        bar.setObjectName("scenario-toolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (
            self.start_all_action,
            self.stop_all_action,
            self.kill_all_action,
            self.kill_serving_action,
        ):
            bar.addAction(action)
        bar.addSeparator()
        self.selection_label = QLabel()
        self.selection_label.setStyleSheet("font-weight: bold; padding: 0 6px;")
        self.selection_label.setMinimumWidth(90)
        self.selection_label.setMaximumWidth(180)
        self._set_selection_text(None)
        bar.addWidget(self.selection_label)
        for key, action in self.component_actions.items():
            if key in ("unplug", "log"):
                bar.addSeparator()
            bar.addAction(action)
            button = bar.widgetForAction(action)
            if isinstance(button, QToolButton):
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        bar.addSeparator()
        bar.addAction(self.present_action)
        self.addToolBar(bar)
        self.toolbar = bar

    # ------------------------------------------------------------------ engine events
    def on_engine_ready(self, info: EngineInfo) -> None:
        self.info = info
        self.engine_label.setText(
            f"status reports on {info.csp_address[0]}:{info.csp_address[1]} · logs in "
            f"{info.run_dir}"
        )
        self._note("story", f"scenario {self.scenario.name!r} ready")
        self._apply(self.model.set_host_errors(info.host_errors))
        self.update_actions()

    def on_engine_failed(self, message: str) -> None:
        self.engine_label.setText("engine failed")
        self._note("error", message)
        self.statusBar().showMessage(message)

    def on_engine_stopped(self) -> None:
        self.engine_stopped = True
        self.engine_label.setText("engine stopped")
        self.update_actions()
        if self._close_when_stopped:
            self._closing = True
            self.close()

    def on_monitor_event(self, event: MonitorEvent) -> None:
        self._apply(self.model.apply_monitor(event))

    def on_launcher_event(self, event: LauncherEvent) -> None:
        self._apply(self.model.apply_launcher(event))

    def on_picture(self, name: str, data: bytes) -> None:
        """A pool user's picture in progress (PNG) changed."""
        pane = self.pictures.get(name)
        if pane is None or not pane.set_picture(data):
            return
        node = self.map.nodes.get(name)
        if node is not None:
            node.set_thumbnail(pane.view.image)

    def on_failover(self, event: PuFailover) -> None:
        """A pool user reported a failover on the trace channel."""
        changes = self.model.apply_failover(event)
        self._apply(changes)
        for user in changes.nodes & self.pictures.keys():
            self.pictures[user].show_failovers(self.model.failovers_of.get(user, ()))

    def on_command_finished(self, result: CommandResult) -> None:
        self.commands_finished += 1
        if result.component is not None:
            self.model.set_busy(result.component, None)
            self._dirty_nodes.add(result.component)
        if result.ok:
            self.statusBar().showMessage(f"{result.label}: done ({result.seconds:.1f} s)", 5000)
            if result.message and result.label == "start all":
                # How the start order went (waiting for the pool elements' registration).
                self._note("command", f"{result.label}: {result.message}")
        else:
            self.command_errors.append(result)
            self._note("error", f"{result.label} failed: {result.message}", result.component)
            self.statusBar().showMessage(f"{result.label} failed: {result.message}", 15000)
        self._schedule(links=True, pools=True)
        self.update_actions()

    def _apply(self, changes: Changes) -> None:
        for name in changes.added:
            self.map.add_node(name)
            self.components.add(name)
        for name in changes.removed:
            self.map.remove_node(name)
            self.components.remove(name)
        self._dirty_nodes |= changes.nodes
        for entry in changes.entries:
            self._show_entry(entry)
        self._schedule(links=changes.links, pools=changes.pools or bool(changes.nodes))
        if changes.nodes & {self.current}:
            self.update_actions()

    def _schedule(self, *, links: bool = False, pools: bool = False) -> None:
        self._dirty_links |= links
        self._dirty_pools |= pools
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh(self) -> None:
        names = self._dirty_nodes
        self._dirty_nodes = set()
        if self._dirty_links:
            # Link changes move workload badges of the PEs a pool user talks to.
            names |= {n for n, node in self.model.nodes.items() if node.kind == "pool-element"}
            self.map.refresh_links()
        self.map.refresh_nodes(names)
        self.components.refresh(names)
        if self._dirty_pools or self._dirty_links:
            self.pools.refresh()
        self._dirty_links = self._dirty_pools = False

    def _second_tick(self) -> None:
        for item in self.map.links.values():
            if item.link.duration is not None:
                item.update()

    def _show_entry(self, entry: TimelineEntry) -> None:
        self.timeline.add(entry)
        for callback in list(self.on_timeline):
            callback(entry)
        if entry.kind == "failover" and self.presenter.active:
            self.stage.flash(entry.text)

    def _note(self, kind: str, text: str, component: str | None = None) -> None:
        self._show_entry(self.model.note(kind, text, component))

    # ------------------------------------------------------------------ selection
    def set_current(self, name: str | None) -> None:
        if not name or name not in self.model.nodes:
            name = None
        self.current = name
        self.map.select(name)
        self.components.select(name)
        self._set_selection_text(name)
        self.update_actions()

    def _set_selection_text(self, name: str | None) -> None:
        text = name or "no component selected"
        metrics = self.selection_label.fontMetrics()
        shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, 170)
        self.selection_label.setText(shown)
        self.selection_label.setToolTip(f"selected: {text}" if name else text)

    def _show_hotkeys_in_menus(self) -> None:
        """Menus and tooltips name the hotkeys (they work in and out of presentation mode)."""
        labels = {key: label for key, label, _ in COMPONENT_ACTIONS}
        for key, action in self.component_actions.items():
            hotkey = ACTION_KEYS.get(key)
            if hotkey is not None:
                action.setText(f"{labels[key]}\t{hotkey}")
                action.setIconText(labels[key])
                action.setToolTip(f"{labels[key]} the selected component ({hotkey})")
        self.kill_serving_action.setText(f"Kill a serving PE\t{ACTION_KEYS['kill-serving']}")
        self.kill_serving_action.setIconText("Kill a serving PE")
        self.start_all_action.setText(f"Start all\t{ACTION_KEYS['start-all']}")
        self.start_all_action.setIconText("Start all")

    def available(self, name: str | None) -> dict[str, bool]:
        """Which component actions make sense for ``name`` right now."""
        result = {key: False for key, _, _ in COMPONENT_ACTIONS}
        if name is None or name not in self.model.nodes:
            return result
        node = self.model.nodes[name]
        if node.component is None or self.info is None or self.engine_stopped:
            return result
        host = node.host or ""
        process = self.model.process.get(name)
        running = process in ("running", "hung")
        busy = name in self.model.busy
        host_ok = host in self.info.supported and host not in self.model.host_errors
        unplug_ok = Action.UNPLUG in self.info.supported.get(host, frozenset())
        result.update(
            start=host_ok and not running and not busy,
            stop=running and not busy,
            kill=running,
            hang=process == "running" and not busy,
            resume=process == "hung",
            restart=host_ok and not busy,
            unplug=unplug_ok and host not in self.model.unplugged,
            replug=unplug_ok and host in self.model.unplugged,
            log=True,
        )
        return result

    def update_actions(self) -> None:
        enabled = self.available(self.current)
        for key, action in self.component_actions.items():
            action.setEnabled(enabled[key])
        engine_up = self.info is not None and not self.engine_stopped
        for action in (self.start_all_action, self.stop_all_action, self.kill_all_action):
            action.setEnabled(engine_up)
        self.kill_serving_action.setEnabled(engine_up)
        self.save_layout_action.setEnabled(self.scenario.source is not None)

    # ------------------------------------------------------------------ menus
    def node_menu(self, name: str) -> QMenu:
        """The context menu of ``name``'s node (every action, greyed out where impossible)."""
        menu = QMenu(self)
        node = self.model.nodes[name]
        title = menu.addAction(f"{node.display_name} ({node.kind})")
        title.setEnabled(False)
        menu.addSeparator()
        enabled = self.available(name)
        for key, label, _busy in COMPONENT_ACTIONS:
            if key in ("hang", "restart", "unplug", "log"):
                menu.addSeparator()
            if key in ("unplug", "replug") and node.host is not None:
                label = f"{label} {node.host}"
            if key in ACTION_KEYS:
                label = f"{label}\t{ACTION_KEYS[key]}"
            action = menu.addAction(self.component_actions[key].icon(), label)
            action.setObjectName(key)
            action.setEnabled(enabled[key])
            action.triggered.connect(lambda _=False, k=key, n=name: self.act(k, n))
        menu.addSeparator()
        for action in (self.start_all_action, self.stop_all_action, self.kill_all_action):
            menu.addAction(action)
        return menu

    def popup_node_menu(self, name: str, where: QPoint) -> None:
        self.set_current(name)
        menu = self.node_menu(name)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(where)  # not exec(): the window keeps running while the menu is open

    def popup_scenario_menu(self, where: QPoint) -> None:
        menu = QMenu(self)
        for action in (self.start_all_action, self.stop_all_action, self.kill_all_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.save_layout_action)
        menu.addAction(self.present_action)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(where)

    # ------------------------------------------------------------------ commands
    def act_on_current(self, key: str) -> None:
        if self.current is None:
            self.statusBar().showMessage("select a component first", 4000)
            return
        self.act(key, self.current)

    def act(self, key: str, name: str) -> None:
        """Run component action ``key`` on ``name`` in the engine (returns at once)."""
        if key == "log":
            self.show_log(name)
            return
        if not self.available(name).get(key, False):
            self.statusBar().showMessage(f"cannot {key} {name} now", 4000)
            return
        node = self.model.nodes[name]
        host = node.host or ""
        busy = dict((k, b) for k, _, b in COMPONENT_ACTIONS)[key]
        calls: dict[str, Callable[[Orchestrator], Awaitable[object]]] = {
            "start": lambda o: o.start(name),
            "stop": lambda o: o.stop(name),
            "kill": lambda o: o.kill(name),
            "hang": lambda o: o.hang(name),
            "resume": lambda o: o.resume(name),
            "restart": lambda o: o.restart(name),
            "unplug": lambda o: o.unplug(host),
            "replug": lambda o: o.replug(host),
        }
        target = f"host {host} of {name}" if key in ("unplug", "replug") else name
        label = f"{key} {target}"
        self._note("command", label, name)
        if key not in ("unplug", "replug"):
            self.model.set_busy(name, busy)
            self._dirty_nodes.add(name)
            self._schedule()
        self._submit(label, calls[key], name if key not in ("unplug", "replug") else None)
        self.update_actions()

    def _submit(
        self,
        label: str,
        make: Callable[[Orchestrator], Awaitable[object]],
        component: str | None = None,
    ) -> None:
        self.commands_started += 1
        self.bridge.submit(label, make, component)

    def start_all(self) -> None:
        self._note("command", "start all")
        monitor = self.bridge.monitor
        wait = registration_wait(monitor) if monitor is not None else None
        self._submit("start all", lambda o: o.start_all(before_pool_users=wait))

    def stop_all(self) -> None:
        self._note("command", "stop all")
        self._submit("stop all", lambda o: o.stop_all())

    def kill_all(self) -> None:
        self._note("command", "kill all")
        self._submit("kill all", lambda o: o.stop_all(kill=True))

    def show_log(self, name: str) -> None:
        self.log_dock.show()
        self.log_dock.raise_()
        self.log_pane.show_component(name)

    def _log_component_changed(self, chosen: str) -> None:
        name = chosen or None
        self.bridge.follow_log(name)
        orch = self.bridge.orchestrator
        path = ""
        if name is not None and orch is not None:
            try:
                path = orch.log_file(name)
            except Exception:  # a scenario component always has one; be safe anyway
                path = ""
        self.log_pane.set_path(path)

    # ------------------------------------------------------------------ hotkeys
    def flash(self, text: str) -> None:
        """Tell the audience (presentation mode) or the status bar what a hotkey did."""
        if self.presenter.active:
            self.stage.flash(text)
        elif text:
            self.statusBar().showMessage(text, 5000)

    def select_pool_element(self, number: int) -> None:
        pes = self.model.pool_elements()
        if not 1 <= number <= len(pes):
            self.flash(f"there is no pool element {number}")
            return
        name = pes[number - 1]
        self.set_current(name)
        self.flash(f"{name} selected")

    def serving_pool_element(self) -> str | None:
        """The pool element with the most pool-user sessions now (None: none serves)."""
        sessions: dict[str, int] = {}
        for user in self.model.nodes:
            for pe, count in self.model.serving(user).items():
                if self.available(pe).get("kill"):
                    sessions[pe] = sessions.get(pe, 0) + count
        if not sessions:
            return None
        return max(sorted(sessions), key=lambda pe: sessions[pe])

    def kill_serving(self) -> None:
        """Kill a PE that serves a pool user right now: always a failover to watch."""
        victim = self.serving_pool_element()
        if victim is None:
            self.flash("no pool element serves a pool user right now")
            return
        self.set_current(victim)
        self.flash(f"kill {victim} (serving)")
        self.act("kill", victim)

    def presenter_action(self, key: str) -> None:
        if key == "start-all":
            self.start_all()
            self.flash("starting all components")
            return
        if key == "kill-serving":
            self.kill_serving()
            return
        name = self.current
        if name is None:
            self.flash("press 1-9 to select a pool element first")
            return
        if key == "hang-toggle":
            key = "resume" if self.model.process.get(name) == "hung" else "hang"
        elif key == "unplug-toggle":
            host = self.model.nodes[name].host
            key = "replug" if host in self.model.unplugged else "unplug"
        if not self.available(name).get(key, False):
            self.flash(f"cannot {key} {name} now")
            return
        self.flash(f"{key} {name}")
        self.act(key, name)

    def _presenting_changed(self, presenting: bool) -> None:
        pes = self.model.pool_elements()
        keys = {name: str(i + 1) for i, name in enumerate(pes[:9])}
        self.map.set_hotkeys(keys, presenting)
        self.map.set_presenting(presenting)
        self.stage.flash("")
        self.stage.set_presenting(presenting)
        self._pictures_wide = None  # arrange them for the new window shape
        QTimer.singleShot(0, self._arrange_pictures)
        QTimer.singleShot(0, self.map.fit)

    # ------------------------------------------------------------------ pictures
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange_pictures()

    def _arrange_pictures(self) -> None:
        """Pictures beside the map in a wide window, below it in a tall one."""
        if not self.picture_docks:
            return
        size = self.size()
        wide = size.width() >= WIDE_ASPECT * size.height()
        if wide == self._pictures_wide:
            return
        self._pictures_wide = wide
        docks = list(self.picture_docks.values())
        if wide:
            area = Qt.DockWidgetArea.RightDockWidgetArea
            for dock in docks:
                self.addDockWidget(area, dock)
            self.splitDockWidget(docks[-1], self.timeline_dock, Qt.Orientation.Vertical)
            share = 0.42 if self.presenter.active else 0.3
            self.resizeDocks(
                docks, [int(size.width() * share)] * len(docks), Qt.Orientation.Horizontal
            )
            if not self.presenter.active:
                self.resizeDocks(
                    [*docks, self.timeline_dock],
                    [int(size.height() * 0.45)] * len(docks) + [int(size.height() * 0.3)],
                    Qt.Orientation.Vertical,
                )
        else:
            area = Qt.DockWidgetArea.BottomDockWidgetArea
            # Side by side with the bottom tab group (log, messages, handlespace ...): the
            # log dock is tabbed, so splitting it would put the picture in a hidden tab.
            for dock in docks:
                self.addDockWidget(area, dock, Qt.Orientation.Horizontal)
                dock.show()
                dock.raise_()
            self.resizeDocks(
                docks, [int(size.height() * 0.36)] * len(docks), Qt.Orientation.Vertical
            )

    # ------------------------------------------------------------------ layout
    def _layout_changed(self) -> None:
        self.layout_dirty = True
        self.statusBar().showMessage("layout changed: Save layout (Ctrl+S) keeps it", 6000)

    def save_layout(self) -> bool:
        source = self.scenario.source
        if source is None:
            self.statusBar().showMessage("this scenario has no file to save into", 6000)
            return False
        try:
            save_positions(source, self.map.positions())
        except (LayoutError, OSError) as exc:
            self._note("error", f"save layout: {exc}")
            self.statusBar().showMessage(f"save layout failed: {exc}", 15000)
            return False
        self.layout_dirty = False
        self._note("command", f"layout saved to {source}")
        self.statusBar().showMessage(f"layout saved to {source}", 6000)
        return True

    def _set_legend(self, show: bool) -> None:
        self.map.show_legend = show
        self.map.fit()
        self.map.viewport().update()

    # ------------------------------------------------------------------ closing
    def request_close(self) -> None:
        """Stop everything, then close (used by --exit-after and storyboards)."""
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing or self.engine_stopped:
            event.accept()
            app = QApplication.instance()
            if self.quit_on_close and app is not None:
                app.quit()
            return
        # Stop every component first; the window closes when the engine is done.
        event.ignore()
        if not self._close_when_stopped:
            self._close_when_stopped = True
            self.statusBar().showMessage("stopping all components…")
            self._note("command", "closing: stopping all components")
            self.bridge.shutdown()
            QTimer.singleShot(CLOSE_TIMEOUT_MS, self._force_close)

    def _force_close(self) -> None:
        self._closing = True
        self.close()


def node_state_of(window: MainWindow, name: str) -> NodeState:
    """The state the map shows for ``name`` (tests and scripts)."""
    return window.map.nodes[name].state
