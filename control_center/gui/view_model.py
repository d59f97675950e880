"""What the window shows, computed from monitor and launcher events (no Qt here).

The window receives two event streams: status-monitor events (component
snapshots with their links) and launcher events (process started, exited,
hung, host unplugged...). :class:`ViewModel` folds both into the facts the
widgets draw -- one node per component with a display state, status text and
workload, one line per associated pair and protocol, pools with their pool
elements -- and into a timeline of what happened. Failovers come from the pool
users themselves (their trace events, :meth:`ViewModel.apply_failover`); the
model only adds the time at which the control center injected the fault that
caused one, never a failover of its own guessing. Keeping this free of Qt makes
it testable without a display and keeps the widgets thin.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from control_center.launchers.base import (
    HostChanged,
    HostFailed,
    LauncherEvent,
    LaunchFailed,
    ProcessExited,
    ProcessHung,
    ProcessResumed,
    ProcessStarted,
    SignalSent,
)
from control_center.monitor import (
    AssociationsChanged,
    ComponentActive,
    ComponentChanged,
    ComponentDiscovered,
    ComponentInactive,
    ComponentRemoved,
    ComponentState,
    InactiveReason,
    Link,
    MonitorEvent,
    group_label,
)
from control_center.scenario import DEFAULT_COLORS, Component, Scenario
from control_center.trace_events import PuFailover
from rsplib.wire.csp import ComponentGroup

#: Icon family per CSP group.
GROUP_KIND: dict[int, str] = {
    ComponentGroup.REGISTRAR: "registrar",
    ComponentGroup.POOL_ELEMENT: "pool-element",
    ComponentGroup.POOL_USER: "pool-user",
}
#: A fault we injected is named as the cause of a failover the pool user detected
#: at most this long after it (a hang is detected after the session heartbeat times out).
FAULT_MATCH_S = 60.0
#: Clocks of the control center and a pool user on the same machine agree; allow this
#: much for the order of "fault injected" and "loss detected" anyway.
CLOCK_SLACK_S = 0.5
#: Failovers kept per pool user for its viewer pane.
FAILOVERS_KEPT = 50
#: Where discovered components (not in the scenario) are placed: a shelf at the bottom.
SHELF_Y = 93.0
SHELF_X0, SHELF_DX = 6.0, 11.0


class NodeState(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    HUNG = "hung"
    UNPLUGGED = "unplugged"


CATEGORY_LABELS: dict[str, str] = {
    "asap": "ASAP",
    "enrp": "ENRP",
    "application": "Application (FGP)",
}


@dataclass(slots=True)
class Node:
    """One component on the map."""

    name: str
    display_name: str
    kind: str  # registrar, pool-element, pool-user, other
    host: str | None
    csp_id: int | None
    position: tuple[float, float]  # percent of the map
    discovered: bool = False
    component: Component | None = None


@dataclass(frozen=True, slots=True)
class MapLink:
    """One line on the map: every association of one protocol between two nodes."""

    source: str  # the reporting side (for registrar pairs: the first reporter)
    target: str
    category: str
    protocols: tuple[str, ...]
    transports: tuple[str, ...]
    #: Associations reported by ``source`` (sessions of a pool user with one PE).
    count: int
    #: Longest reported duration in seconds (None: not reported, e.g. ENRP).
    duration: float | None
    #: Both ends reported it (registrar pairs).
    both_ways: bool = False

    @property
    def key(self) -> tuple[frozenset[str], str]:
        return (frozenset((self.source, self.target)), self.category)

    def describe(self) -> str:
        label = CATEGORY_LABELS.get(self.category, self.category)
        arrow = "↔" if self.both_ways else "→"
        protocols = "/".join(self.protocols)
        lines = [f"{label}: {self.source} {arrow} {self.target}"]
        lines.append(f"{protocols} over {'/'.join(self.transports)}")
        if self.count > 1:
            lines.append(f"{self.count} associations (sessions)")
        if self.duration is not None:
            lines.append(f"up {format_duration(self.duration)}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float  # monotonic seconds
    wall: float  # time.time() at the same moment
    kind: str  # process, monitor, host, failover, command, error, story
    text: str
    component: str | None = None

    def clock(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.wall))
        return f"{stamp}.{int((self.wall % 1) * 1000):03d}"


@dataclass(frozen=True, slots=True)
class Workload:
    fraction: float
    text: str
    tooltip: str


@dataclass(frozen=True, slots=True)
class PoolRow:
    name: str
    state: NodeState
    home: str | None
    users: tuple[str, ...]
    sessions: int
    status: str


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """A fault the control center caused: what, to which component, when (wall clock)."""

    component: str
    what: str
    wall: float


@dataclass(frozen=True, slots=True)
class FailoverView:
    """A failover as the pool user reported it, with the fault we injected (if any)."""

    user: str
    old: str
    new: str
    report: PuFailover
    fault: InjectedFault | None

    @property
    def fault_to_resume(self) -> float | None:
        """Seconds from our fault injection to the first message from the new PE."""
        return None if self.fault is None else self.report.resumed - self.fault.wall

    def figures(self) -> str:
        """Both times, as the timeline and the viewer pane show them."""
        parts = [f"detected→resumed {_seconds(self.report.detect_to_resume)}"]
        if self.fault_to_resume is not None:
            parts.append(f"fault→resumed {_seconds(self.fault_to_resume)}")
        return " · ".join(parts)

    def text(self) -> str:
        report = self.report
        cells = ", ".join(str(c + 1) for c in report.cells) or "-"
        how = report.reason + ("" if report.cookie else ", no cookie: cell restarted")
        return (
            f"{self.user} failover: {self.old} → {self.new} ({how}), "
            f"image {report.image}, cell{'s' if len(report.cells) != 1 else ''} {cells}; "
            f"{self.figures()}"
        )


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"


def format_duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from one hour on), as rserpooldemo labels links."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def node_kind(component: Component) -> str:
    return GROUP_KIND.get(component.group, "other") if component.group is not None else "other"


def _default_position(index: int, count: int) -> tuple[float, float]:
    """A column layout for components without a position."""
    return (15.0 + 70.0 * (index % 4) / 3.0, 15.0 + 60.0 * (index // 4) / max(1, count // 4))


@dataclass(slots=True)
class _Changes:
    nodes: set[str] = field(default_factory=set)
    links: bool = False
    pools: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    entries: list[TimelineEntry] = field(default_factory=list)


Changes = _Changes


class ViewModel:
    """Nodes, links, pools and the timeline of one running scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.colors = {**DEFAULT_COLORS, **dict(scenario.colors)}
        self.nodes: dict[str, Node] = {}
        self._by_id: dict[int, str] = {}
        count = len(scenario.components)
        for index, comp in enumerate(scenario.components):
            self.nodes[comp.name] = Node(
                name=comp.name,
                display_name=comp.display_name,
                kind=node_kind(comp),
                host=comp.host,
                csp_id=comp.csp_id,
                position=comp.position or _default_position(index, count),
                component=comp,
            )
            if comp.csp_id is not None:
                self._by_id[comp.csp_id] = comp.name
        self.states: dict[str, ComponentState] = {}
        #: Process state per component from the launchers: running, hung, exited.
        self.process: dict[str, str] = {}
        self.exit_text: dict[str, str] = {}
        self.unplugged: set[str] = set()
        self.impaired: set[str] = set()
        self.host_errors: dict[str, str] = {}
        #: Actions in progress per component (``"stopping"``...), shown in the status text.
        self.busy: dict[str, str] = {}
        self.timeline: list[TimelineEntry] = []
        #: Failovers the pool users reported, in arrival order.
        self.failovers = 0
        self.failovers_of: dict[str, deque[FailoverView]] = {}
        self._faults: dict[str, InjectedFault] = {}
        self._pe_by_identifier = {
            c.identifier: c.name
            for c in scenario.components
            if c.group == ComponentGroup.POOL_ELEMENT and c.identifier is not None
        }
        self._serving: dict[str, dict[str, int]] = {}
        self._shelf = 0

    # ------------------------------------------------------------------ queries
    def node_of_id(self, csp_id: int) -> str | None:
        return self._by_id.get(csp_id)

    def pool_elements(self) -> list[str]:
        """Pool elements in scenario order (presenter hotkeys 1-9 select them)."""
        return [n.name for n in self.nodes.values() if n.kind == "pool-element"]

    def node_state(self, name: str) -> NodeState:
        node = self.nodes[name]
        if node.host is not None and node.host in self.unplugged:
            return NodeState.UNPLUGGED
        process = self.process.get(name)
        if process == "hung":
            return NodeState.HUNG
        if process == "exited":
            # The launcher saw the process end: no need to wait for the report timeout.
            return NodeState.INACTIVE
        state = self.states.get(name)
        if state is not None and state.active:
            return NodeState.ACTIVE
        return NodeState.INACTIVE

    def status_text(self, name: str) -> str:
        """The status line under a node."""
        busy = self.busy.get(name)
        if busy:
            return f"{busy}…"
        state = self.states.get(name)
        shown = self.node_state(name)
        if shown is NodeState.UNPLUGGED:
            return "host unplugged"
        if shown is NodeState.HUNG:
            return "hung (SIGSTOP)"
        if shown is NodeState.ACTIVE and state is not None:
            return state.status or "active"
        process = self.process.get(name)
        if process == "exited":
            return self.exit_text.get(name, "exited")
        if process == "running":
            if state is not None and state.reports:
                reason = state.inactive_reason
                return "stopped (final report)" if reason is InactiveReason.FINAL else "silent"
            return "starting"
        node = self.nodes[name]
        if node.host is not None and node.host in self.host_errors:
            return "host unavailable"
        if state is not None and state.reports and not state.active:
            return "gone" if state.inactive_reason is InactiveReason.TIMEOUT else "stopped"
        return "not started" if not node.discovered else "silent"

    def location_text(self, name: str) -> str:
        node = self.nodes[name]
        state = self.states.get(name)
        parts: list[str] = []
        if node.host is not None:
            host = self.scenario.hosts.get(node.host)
            address = getattr(host, "component_address", None) if host is not None else None
            parts.append(node.host if address is None else f"{node.host} · {address}")
        elif state is not None and state.location:
            parts.append(state.location)
        return "  ".join(parts)

    def workload(self, name: str) -> Workload | None:
        """Reported workload, or sessions / max_threads from the pool users' reports."""
        node = self.nodes[name]
        state = self.states.get(name)
        if state is None or self.node_state(name) is not NodeState.ACTIVE:
            return None
        if state.workload is not None:
            return Workload(state.workload, f"{state.workload:.0%}", "workload reported by the PE")
        if node.kind != "pool-element":
            return None
        sessions = self.sessions_of(name)
        limit = _max_threads(node.component)
        if limit:
            fraction = min(1.0, sessions / limit)
            tip = f"{sessions} of {limit} sessions (from the pool users' reports)"
            return Workload(fraction, f"{fraction:.0%}", tip)
        if sessions:
            return Workload(0.0, f"{sessions} sess.", f"{sessions} sessions (from the pool users)")
        return None

    def sessions_of(self, pe: str) -> int:
        return sum(per_pe.get(pe, 0) for per_pe in self._serving.values())

    def links(self) -> list[MapLink]:
        """Current lines: one per node pair and protocol category."""
        groups: dict[tuple[frozenset[str], str], list[tuple[str, str, Link]]] = {}
        for name, state in self.states.items():
            if not state.active or self.process.get(name) == "exited":
                continue
            for link in state.links:
                target = self._by_id.get(link.receiver_id)
                if target is None or target == name:
                    continue
                key = (frozenset((name, target)), link.category)
                groups.setdefault(key, []).append((name, target, link))
        out: list[MapLink] = []
        for (_pair, category), items in groups.items():
            reporters = {source for source, _, _ in items}
            source, target, _ = items[0]
            first = [link for s, _, link in items if s == source]
            durations = [link.duration for _, _, link in items if link.duration is not None]
            out.append(
                MapLink(
                    source=source,
                    target=target,
                    category=category,
                    protocols=tuple(sorted({link.protocol for _, _, link in items})),
                    transports=tuple(sorted({link.transport_name for _, _, link in items})),
                    count=len(first),
                    duration=max(durations) if durations else None,
                    both_ways=len(reporters) > 1,
                )
            )
        out.sort(key=lambda m: (m.category, m.source, m.target))
        return out

    def pools(self) -> list[tuple[str, list[PoolRow]]]:
        """Pool handle -> its pool elements with state, home registrar and users."""
        pools: dict[str, list[PoolRow]] = {}
        for node in self.nodes.values():
            if node.kind != "pool-element":
                continue
            if node.component is not None:
                handle = node.component.pool_handle or self.scenario.pool_handle
            else:
                handle = "(discovered)"
            state = self.states.get(node.name)
            home = None
            if state is not None and state.active:
                for link in state.links:
                    if link.category == "asap":
                        home = self._by_id.get(link.receiver_id)
            users = tuple(sorted(u for u, per_pe in self._serving.items() if per_pe.get(node.name)))
            pools.setdefault(handle, []).append(
                PoolRow(
                    name=node.name,
                    state=self.node_state(node.name),
                    home=home,
                    users=users,
                    sessions=self.sessions_of(node.name),
                    status=self.status_text(node.name),
                )
            )
        return sorted(pools.items())

    def serving(self, user: str) -> dict[str, int]:
        """Pool elements serving ``user`` with their session counts."""
        return dict(self._serving.get(user, {}))

    # ------------------------------------------------------------------ inputs
    def note(
        self,
        kind: str,
        text: str,
        component: str | None = None,
        *,
        at: float | None = None,
        changes: Changes | None = None,
    ) -> TimelineEntry:
        now = time.monotonic()
        at = now if at is None else at
        entry = TimelineEntry(at, time.time() - (now - at), kind, text, component)
        self.timeline.append(entry)
        if changes is not None:
            changes.entries.append(entry)
        return entry

    def record_fault(self, component: str, what: str, at: float | None = None) -> None:
        """A fault we injected (``at``: monotonic seconds, default now).

        A failover that a pool user later reports for this component names it
        with its time, so the fault-to-resume time can be shown beside the pool
        user's own detection-to-resume time.
        """
        now = time.monotonic()
        wall = time.time() - (now - (now if at is None else at))
        self._faults[component] = InjectedFault(component, what, wall)

    def pe_name(self, pe_id: int | None) -> str:
        """The scenario's name of a PE identifier (else rsplib's ``$%08x``)."""
        if pe_id is None:
            return "?"
        return self._pe_by_identifier.get(pe_id, f"${pe_id:08x}")

    def apply_failover(self, event: PuFailover, now: float | None = None) -> Changes:
        """A failover a pool user reported on the trace channel."""
        changes = Changes()
        user = self._by_id.get(event.sender)
        if user is None:
            return changes  # not a component of ours, and not worth a node of its own
        old = self.pe_name(event.old_pe)
        fault = self._faults.get(old)
        if fault is not None and not (
            fault.wall - CLOCK_SLACK_S <= event.detected <= fault.wall + FAULT_MATCH_S
        ):
            fault = None
        view = FailoverView(user, old, self.pe_name(event.new_pe), event, fault)
        self.failovers += 1
        self.failovers_of.setdefault(user, deque(maxlen=FAILOVERS_KEPT)).append(view)
        changes.nodes.add(user)
        self.note("failover", view.text(), user, at=now, changes=changes)
        return changes

    def apply_monitor(self, event: MonitorEvent, now: float | None = None) -> Changes:
        now = time.monotonic() if now is None else now
        changes = Changes()
        match event:
            case ComponentDiscovered(component=state):
                name = self._add_discovered(state)
                changes.added.append(name)
                self.note(
                    "monitor",
                    f"{name} discovered (not in the scenario)",
                    name,
                    at=now,
                    changes=changes,
                )
            case ComponentRemoved(component=state):
                gone = self._by_id.get(state.csp_id)
                if gone is not None and self.nodes[gone].discovered:
                    del self.nodes[gone]
                    del self._by_id[state.csp_id]
                    self.states.pop(gone, None)
                    changes.removed.append(gone)
                    changes.links = changes.pools = True
                return changes
            case _:
                pass
        state = event.component
        known = self._by_id.get(state.csp_id)
        if known is None:
            name = self._add_discovered(state)
            changes.added.append(name)
        else:
            name = known
        previous = self.states.get(name)
        self.states[name] = state
        changes.nodes.add(name)
        if previous is None or previous.links != state.links or previous.active != state.active:
            changes.links = True
        match event:
            case ComponentActive():
                self.note(
                    "monitor", f"{name} active: {state.status}", name, at=now, changes=changes
                )
                changes.pools = True
            case ComponentInactive(reason=reason):
                why = {"final": "final report", "timeout": "no reports"}.get(reason.value, "")
                self.note("monitor", f"{name} inactive ({why})", name, at=now, changes=changes)
                changes.pools = True
                if state.group == ComponentGroup.POOL_USER:
                    self._update_serving(name, state)
            case AssociationsChanged():
                changes.pools = True
            case ComponentChanged(fields=fields) if "links" in fields:
                # Several sessions with one PE share a link key, so a changed session
                # count shows only here, not as an AssociationsChanged event.
                if state.group == ComponentGroup.POOL_USER:
                    self._update_serving(name, state)
            case _:
                pass
        return changes

    def apply_launcher(self, event: LauncherEvent) -> Changes:
        changes = Changes()
        match event:
            case ProcessStarted(component=name, host=host, pid=pid, at=at):
                self.process[name] = "running"
                self.exit_text.pop(name, None)
                changes.nodes.add(name)
                self.note(
                    "process", f"{name} started on {host} (pid {pid})", name, at=at, changes=changes
                )
            case ProcessExited(component=name, status=status, expected=expected, at=at):
                self.process[name] = "exited"
                self.exit_text[name] = str(status)
                changes.nodes.add(name)
                changes.links = changes.pools = True
                kind = "process" if expected or status.success else "error"
                how = "" if expected else " on its own"
                self.note(kind, f"{name} {status}{how}", name, at=at, changes=changes)
            case SignalSent(component=name, signal=sent, at=at):
                # A stop or kill of ours (the window's or a storyboard's), as it is sent.
                self.record_fault(name, sent, at)
            case ProcessHung(component=name, at=at):
                self.process[name] = "hung"
                self.record_fault(name, "hang (SIGSTOP)", at)
                changes.nodes.add(name)
                changes.pools = True
                self.note("fault", f"{name} hung (SIGSTOP)", name, at=at, changes=changes)
            case ProcessResumed(component=name, at=at):
                if self.process.get(name) == "hung":
                    self.process[name] = "running"
                changes.nodes.add(name)
                self.note("process", f"{name} resumed (SIGCONT)", name, at=at, changes=changes)
            case LaunchFailed(component=name, message=message, at=at):
                changes.nodes.add(name)
                self.note("error", message, name, at=at, changes=changes)
            case HostChanged(host=host, what=what, at=at):
                if what == "unplugged":
                    self.unplugged.add(host)
                    for node in self.nodes.values():
                        if node.host == host:
                            self.record_fault(node.name, f"unplug host {host}", at)
                elif what == "replugged":
                    self.unplugged.discard(host)
                elif what == "impaired":
                    self.impaired.add(host)
                elif what == "unimpaired":
                    self.impaired.discard(host)
                changes.nodes.update(n.name for n in self.nodes.values() if n.host == host)
                changes.pools = True
                self.note(
                    "fault" if what in ("unplugged", "impaired") else "host",
                    f"host {host} {what}",
                    at=at,
                    changes=changes,
                )
            case HostFailed(host=host, message=message, at=at):
                self.host_errors[host] = message
                changes.nodes.update(n.name for n in self.nodes.values() if n.host == host)
                self.note("error", f"host {host}: {message}", at=at, changes=changes)
        return changes

    def set_host_errors(self, errors: dict[str, str]) -> Changes:
        changes = Changes()
        for host, message in errors.items():
            self.host_errors[host] = message
            changes.nodes.update(n.name for n in self.nodes.values() if n.host == host)
            self.note("error", f"host {host} not available: {message}", changes=changes)
        return changes

    def set_busy(self, name: str, what: str | None) -> None:
        if what is None:
            self.busy.pop(name, None)
        else:
            self.busy[name] = what

    def set_position(self, name: str, position: tuple[float, float]) -> None:
        self.nodes[name].position = position

    # ------------------------------------------------------------------ internals
    def _add_discovered(self, state: ComponentState) -> str:
        name = state.name
        if name in self.nodes:  # a scenario name clash: keep both apart
            name = f"{name} ({state.csp_id:x})"
        position = (SHELF_X0 + SHELF_DX * (self._shelf % 9), SHELF_Y - 9.0 * (self._shelf // 9))
        self._shelf += 1
        self.nodes[name] = Node(
            name=name,
            display_name=f"{group_label(state.csp_id)} {state.csp_id & 0xFFFFFFFF:x}",
            kind=GROUP_KIND.get(state.group, "other"),
            host=None,
            csp_id=state.csp_id,
            position=position,
            discovered=True,
        )
        self._by_id[state.csp_id] = name
        return name

    def _update_serving(self, user: str, state: ComponentState) -> None:
        """Which PEs serve a pool user, with how many sessions (from its reports)."""
        counts: dict[str, int] = {}
        if state.active:
            for link in state.links:
                if link.category != "application":
                    continue
                pe = self._by_id.get(link.receiver_id)
                if pe is not None and self.nodes[pe].kind == "pool-element":
                    counts[pe] = counts.get(pe, 0) + 1
        self._serving[user] = counts

    def ordered_names(self) -> Iterable[str]:
        return list(self.nodes)


def _max_threads(component: Component | None) -> int | None:
    if component is None:
        return None
    for key in ("max_threads", "max-threads", "maxthreads"):
        value = component.options.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
