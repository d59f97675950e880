"""Status monitor: a model of components built from CSP v0x0200 reports.

Two layers, in the project's usual split:

* :class:`StatusModel` is sans-IO and clock-free. It takes decoded reports
  with ``now`` and timer ticks (:meth:`StatusModel.expire`), keeps one
  immutable :class:`ComponentState` per component and emits plain events
  (no Qt) that a GUI or the storyboard runner subscribes to.
* :class:`CspMonitor` is the thin asyncio adapter: a UDP endpoint that feeds
  every datagram to the model as it arrives (event-driven, no polling) and
  one ``call_at`` timer re-armed at the model's next deadline.

Liveness follows rserpooldemo with its gaps closed: a component is active
while reports arrive within ``report interval x multiplier`` (the interval
comes from each report; multiplier 5 by default), and it turns inactive *at
once* on a FINAL report. Senders that the scenario does not list appear as
"discovered" components instead of being dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from control_center.safe_text import printable
from rsplib.core_driver import DeadlineTimer
from rsplib.wire.constants import PPID
from rsplib.wire.csp import (
    ComponentGroup,
    CspReport,
    decode_csp,
    format_component_id,
    split_component_id,
)
from rsplib.wire.errors import ProtocolError

log = logging.getLogger("control_center.monitor")

#: rsplib's CSP port.
DEFAULT_CSP_PORT = 2960
#: A component is timed out after this many missed report intervals.
DEFAULT_TIMEOUT_MULTIPLIER = 5.0
#: Interval assumed when a report states none (rserpooldemo assumes 6 s).
FALLBACK_INTERVAL = 6.0
_CLOCK_SLACK = 1e-6
#: cspmonitor drops an entry after at most this many silent intervals.
PURGE_INTERVALS = 10.0

_PROTOCOL_NAMES: Mapping[int, str] = {
    PPID.DATA: "Data",
    PPID.ASAP: "ASAP",
    PPID.ENRP: "ENRP",
    PPID.FGP: "FGP",
    PPID.PINGPONG: "PingPong",
    PPID.CALCAPP: "CalcApp",
    PPID.SCRIPTING: "Scripting",
}
_TRANSPORT_NAMES: Mapping[int, str] = {
    6: "TCP",
    17: "UDP",
    33: "DCCP",
    132: "SCTP",
    136: "UDP-Lite",
}
_GROUP_LABELS: Mapping[int, str] = {
    ComponentGroup.REGISTRAR: "PR",
    ComponentGroup.POOL_ELEMENT: "PE",
    ComponentGroup.POOL_USER: "PU",
}


def protocol_name(ppid: int) -> str:
    """Name of the protocol behind a PPID ("ASAP", "FGP", ...; ``$hex`` if unknown)."""
    return _PROTOCOL_NAMES.get(ppid, f"${ppid:x}")


def protocol_category(ppid: int) -> str:
    """Colour class of a link: ``"asap"``, ``"enrp"`` or ``"application"``."""
    if ppid == PPID.ASAP:
        return "asap"
    if ppid == PPID.ENRP:
        return "enrp"
    return "application"


def transport_name(protocol_id: int) -> str:
    """IP protocol number as a name ("SCTP", "TCP", ...; the number if unknown)."""
    return _TRANSPORT_NAMES.get(protocol_id, str(protocol_id))


def group_label(csp_id: int) -> str:
    """ "PR" / "PE" / "PU" for the ID's group, else ``G<n>``."""
    group, _ = split_component_id(csp_id)
    return _GROUP_LABELS.get(group, f"G{group}")


def default_name(csp_id: int) -> str:
    """Name for a component that no scenario names, e.g. ``PE 200000000000101``."""
    return f"{group_label(csp_id)} {format_component_id(csp_id)}"


@dataclass(frozen=True, slots=True)
class ExpectedComponent:
    """A component the scenario declares: its name and CSP id.

    ``timeout_multiplier`` overrides the model's default for this component
    (rserpooldemo's per-node ``RefreshTimeout``).
    """

    name: str
    csp_id: int
    timeout_multiplier: float | None = None


class DeclaredComponent(Protocol):
    """What :func:`expected_from` needs of a scenario component."""

    @property
    def name(self) -> str: ...
    @property
    def csp_id(self) -> int | None: ...
    @property
    def timeout_multiplier(self) -> float | None: ...


def expected_from(
    components: Iterable[DeclaredComponent], *, timeout_multiplier: float | None = None
) -> list[ExpectedComponent]:
    """The scenario's components with a CSP id, as the model expects them.

    ``timeout_multiplier`` is the scenario-wide value; a component's own
    value wins over it.
    """
    return [
        ExpectedComponent(
            component.name,
            component.csp_id,
            component.timeout_multiplier or timeout_multiplier,
        )
        for component in components
        if component.csp_id is not None
    ]


@dataclass(frozen=True, slots=True)
class Link:
    """One association a component reported, as of its last report.

    ``duration`` is in seconds (``None``: the reporter does not know it);
    ``transport`` is the IP protocol number (132 SCTP, 6 TCP, ...).
    """

    source_id: int
    receiver_id: int
    ppid: int
    transport: int
    duration: float | None
    flags: int = 0

    @property
    def key(self) -> tuple[int, int, int]:
        """What identifies the link across reports (the duration keeps changing)."""
        return (self.receiver_id, self.ppid, self.transport)

    @property
    def protocol(self) -> str:
        return protocol_name(self.ppid)

    @property
    def category(self) -> str:
        return protocol_category(self.ppid)

    @property
    def transport_name(self) -> str:
        return transport_name(self.transport)


class InactiveReason(StrEnum):
    NEVER_SEEN = "never-seen"
    TIMEOUT = "timeout"
    FINAL = "final"


@dataclass(frozen=True, slots=True)
class ComponentState:
    """Snapshot of one component; the model replaces it on every change.

    Times (``last_report_at``, ``active_since``, ``inactive_since``) are in the
    model's clock (the ``now`` passed in). ``uptime`` is the reporter's own
    timestamp (seconds since it started reporting). When a component turns
    inactive its links are cleared but the last status and location are kept,
    so a viewer can still say what it was doing when it stopped.
    """

    csp_id: int
    name: str
    discovered: bool
    timeout_multiplier: float
    active: bool = False
    inactive_reason: InactiveReason = InactiveReason.NEVER_SEEN
    status: str = ""
    location: str = ""
    workload: float | None = None
    links: tuple[Link, ...] = ()
    report_interval: float | None = None
    uptime: float | None = None
    last_report_at: float | None = None
    active_since: float | None = None
    inactive_since: float | None = None
    reports: int = 0
    source: tuple[str, int] | None = None

    @property
    def group(self) -> int:
        return split_component_id(self.csp_id)[0]

    @property
    def label(self) -> str:
        """Kind and hex id, as monitors print it (``PR 100000000010000``)."""
        return default_name(self.csp_id)

    @property
    def timeout(self) -> float:
        """Silence after which the component counts as gone."""
        interval = self.report_interval or FALLBACK_INTERVAL
        return interval * self.timeout_multiplier

    @property
    def deadline(self) -> float | None:
        """When the component times out without a further report (None: inactive)."""
        if not self.active or self.last_report_at is None:
            return None
        return self.last_report_at + self.timeout

    def silence(self, now: float) -> float | None:
        """Seconds since the last report, or None if none arrived yet."""
        return None if self.last_report_at is None else max(0.0, now - self.last_report_at)


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ComponentChanged:
    """After every report and every state change. ``fields`` names what changed."""

    component: ComponentState
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class ComponentActive:
    component: ComponentState


@dataclass(frozen=True, slots=True)
class ComponentInactive:
    component: ComponentState
    reason: InactiveReason


@dataclass(frozen=True, slots=True)
class AssociationsChanged:
    """The set of links changed (not just their durations)."""

    component: ComponentState
    added: tuple[Link, ...]
    removed: tuple[Link, ...]


@dataclass(frozen=True, slots=True)
class ComponentDiscovered:
    """A sender that the scenario does not list reported for the first time."""

    component: ComponentState


@dataclass(frozen=True, slots=True)
class ComponentRemoved:
    """A discovered component was purged after a long silence or its FINAL report."""

    component: ComponentState


MonitorEvent = (
    ComponentChanged
    | ComponentActive
    | ComponentInactive
    | AssociationsChanged
    | ComponentDiscovered
    | ComponentRemoved
)

E = TypeVar("E")


class Signal(Generic[E]):
    """A list of callbacks for one kind of event.

    A callback that raises is logged and skipped: a faulty view must not stop
    the monitor from tracking components.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[E], object]] = []

    def connect(self, callback: Callable[[E], object]) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes again."""
        self._callbacks.append(callback)
        return lambda: self.disconnect(callback)

    def disconnect(self, callback: Callable[[E], object]) -> None:
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def emit(self, event: E) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("%s listener %r failed", self.name, callback)


# ----------------------------------------------------------------------------- model


@dataclass(slots=True)
class MonitorStats:
    reports: int = 0
    malformed: int = 0
    last_error: str = ""


class StatusModel:
    """All components and their links; sans-IO, driven by ``now``.

    ``expected`` are the scenario's components (shown inactive until they
    report). ``purge_interval`` (seconds, None = never) removes *discovered*
    components after ``min(purge_interval, 10 x interval)`` of silence, or at
    once after a FINAL report, as cspmonitor does; scenario components stay.
    """

    def __init__(
        self,
        expected: Iterable[ExpectedComponent] = (),
        *,
        timeout_multiplier: float = DEFAULT_TIMEOUT_MULTIPLIER,
        purge_interval: float | None = None,
    ) -> None:
        if not timeout_multiplier > 0:
            raise ValueError(f"timeout multiplier must be positive, not {timeout_multiplier}")
        if purge_interval is not None and purge_interval < 0:
            raise ValueError(f"purge interval must not be negative, not {purge_interval}")
        self.timeout_multiplier = timeout_multiplier
        self.purge_interval = purge_interval
        self.stats = MonitorStats()
        self._components: dict[int, ComponentState] = {}
        self._names: dict[str, int] = {}
        self._last_timestamp: dict[int, int] = {}
        self.component_changed: Signal[ComponentChanged] = Signal("component_changed")
        self.component_active: Signal[ComponentActive] = Signal("component_active")
        self.component_inactive: Signal[ComponentInactive] = Signal("component_inactive")
        self.associations_changed: Signal[AssociationsChanged] = Signal("associations_changed")
        self.component_discovered: Signal[ComponentDiscovered] = Signal("component_discovered")
        self.component_removed: Signal[ComponentRemoved] = Signal("component_removed")
        #: Every event of every kind, in order (one subscription for a whole view).
        self.events: Signal[MonitorEvent] = Signal("events")
        for component in expected:
            self.add_expected(component)

    # -- queries

    @property
    def components(self) -> Mapping[int, ComponentState]:
        """Current snapshots by CSP id (a read-only view)."""
        return self._components

    def snapshot(self) -> list[ComponentState]:
        """All components, in the order they became known."""
        return list(self._components.values())

    def get(self, csp_id: int) -> ComponentState | None:
        return self._components.get(csp_id)

    def by_name(self, name: str) -> ComponentState:
        """The component with this scenario (or default) name; KeyError if unknown."""
        csp_id = self._names.get(name)
        if csp_id is None:
            raise KeyError(f"no component named {name!r}")
        return self._components[csp_id]

    def name_of(self, csp_id: int) -> str:
        state = self._components.get(csp_id)
        return state.name if state is not None else default_name(csp_id)

    def links(self) -> list[Link]:
        """Links of all active components."""
        return [link for state in self._components.values() for link in state.links]

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`expire` has something to do, or None."""
        deadlines = [d for d in map(self._deadline_of, self._components.values()) if d is not None]
        return min(deadlines, default=None)

    # -- inputs

    def add_expected(self, component: ExpectedComponent) -> None:
        """Declare a scenario component (before or after it reported)."""
        if component.name in self._names and self._names[component.name] != component.csp_id:
            raise ValueError(f"duplicate component name {component.name!r}")
        multiplier = component.timeout_multiplier or self.timeout_multiplier
        current = self._components.get(component.csp_id)
        if current is None:
            state = ComponentState(
                csp_id=component.csp_id,
                name=component.name,
                discovered=False,
                timeout_multiplier=multiplier,
            )
        else:
            self._names.pop(current.name, None)
            state = dataclasses.replace(
                current, name=component.name, discovered=False, timeout_multiplier=multiplier
            )
        self._components[component.csp_id] = state
        self._names[component.name] = component.csp_id

    def handle_datagram(
        self, data: bytes, source: tuple[str, int], now: float
    ) -> list[MonitorEvent]:
        """Decode and apply one datagram; malformed ones are counted and dropped."""
        try:
            report = decode_csp(data)
        except ProtocolError as exc:
            self.stats.malformed += 1
            self.stats.last_error = f"{source[0]}:{source[1]}: {exc}"
            log.debug("dropped CSP datagram from %s:%d: %s", source[0], source[1], exc)
            return []
        return self.handle_report(report, now, source=source)

    def handle_report(
        self, report: CspReport, now: float, *, source: tuple[str, int] | None = None
    ) -> list[MonitorEvent]:
        """Apply one decoded report; returns (and emits) the resulting events."""
        self.stats.reports += 1
        events: list[MonitorEvent] = []
        csp_id = report.sender_id
        previous = self._components.get(csp_id)
        if previous is None:
            previous = ComponentState(
                csp_id=csp_id,
                name=default_name(csp_id),
                discovered=True,
                timeout_multiplier=self.timeout_multiplier,
            )
            self._components[csp_id] = previous
            self._names.setdefault(previous.name, csp_id)
            events.append(ComponentDiscovered(previous))
        self._last_timestamp[csp_id] = report.timestamp_us

        if report.final:
            # The FINAL report carries empty texts: keep the last real ones.
            state = dataclasses.replace(
                previous,
                reports=previous.reports + 1,
                last_report_at=now,
                uptime=report.timestamp_us / 1e6,
                source=source,
            )
            if previous.active:
                events.extend(self._deactivate(previous, state, InactiveReason.FINAL, now))
            else:
                state = dataclasses.replace(
                    state,
                    inactive_reason=InactiveReason.FINAL,
                    inactive_since=previous.inactive_since or now,
                )
                self._components[csp_id] = state
                events.append(ComponentChanged(state, _changed_fields(previous, state)))
            self._emit(events)
            return events

        interval = report.report_interval_us / 1e6 if report.report_interval_us else None
        links = tuple(
            Link(
                source_id=csp_id,
                receiver_id=assoc.receiver_id,
                ppid=assoc.ppid,
                transport=assoc.protocol_id,
                duration=None if assoc.duration_us is None else assoc.duration_us / 1e6,
                flags=assoc.flags,
            )
            for assoc in report.associations
        )
        state = dataclasses.replace(
            previous,
            active=True,
            status=printable(report.status),
            location=printable(report.location),
            workload=report.workload,
            links=links,
            report_interval=interval,
            uptime=report.timestamp_us / 1e6,
            last_report_at=now,
            active_since=previous.active_since if previous.active else now,
            inactive_since=None,
            reports=previous.reports + 1,
            source=source,
        )
        self._components[csp_id] = state
        changed = _changed_fields(previous, state)
        events.append(ComponentChanged(state, changed))
        if not previous.active:
            events.append(ComponentActive(state))
        added, removed = _link_diff(previous.links, links)
        if added or removed:
            events.append(AssociationsChanged(state, added, removed))
        self._emit(events)
        return events

    def expire(self, now: float) -> list[MonitorEvent]:
        """Time out silent components and purge old discovered ones."""
        events: list[MonitorEvent] = []
        for state in list(self._components.values()):
            deadline = state.deadline
            # call_at may fire up to one clock tick early; do not re-arm for that.
            if deadline is not None and now >= deadline - _CLOCK_SLACK:
                events.extend(self._deactivate(state, state, InactiveReason.TIMEOUT, now))
                continue
            purge_at = self._purge_deadline(state)
            if purge_at is not None and now >= purge_at - _CLOCK_SLACK:
                del self._components[state.csp_id]
                if self._names.get(state.name) == state.csp_id:
                    del self._names[state.name]
                events.append(ComponentRemoved(state))
        self._emit(events)
        return events

    # -- internals

    def _deactivate(
        self,
        previous: ComponentState,
        state: ComponentState,
        reason: InactiveReason,
        now: float,
    ) -> list[MonitorEvent]:
        inactive = dataclasses.replace(
            state,
            active=False,
            inactive_reason=reason,
            links=(),
            active_since=None,
            inactive_since=now,
        )
        self._components[state.csp_id] = inactive
        events: list[MonitorEvent] = [
            ComponentChanged(inactive, _changed_fields(previous, inactive)),
            ComponentInactive(inactive, reason),
        ]
        if previous.links:
            events.append(AssociationsChanged(inactive, (), previous.links))
        return events

    def _purge_deadline(self, state: ComponentState) -> float | None:
        if self.purge_interval is None or not state.discovered or state.active:
            return None
        if state.inactive_since is None:
            return None
        if state.inactive_reason is InactiveReason.FINAL:
            return state.inactive_since
        interval = state.report_interval or FALLBACK_INTERVAL
        assert state.last_report_at is not None
        return state.last_report_at + min(self.purge_interval, PURGE_INTERVALS * interval)

    def _deadline_of(self, state: ComponentState) -> float | None:
        return state.deadline if state.active else self._purge_deadline(state)

    def _emit(self, events: list[MonitorEvent]) -> None:
        for event in events:
            match event:
                case ComponentChanged():
                    self.component_changed.emit(event)
                case ComponentActive():
                    self.component_active.emit(event)
                case ComponentInactive():
                    self.component_inactive.emit(event)
                case AssociationsChanged():
                    self.associations_changed.emit(event)
                case ComponentDiscovered():
                    self.component_discovered.emit(event)
                case ComponentRemoved():
                    self.component_removed.emit(event)
            self.events.emit(event)


_COMPARED_FIELDS = (
    "active",
    "status",
    "location",
    "workload",
    "links",
    "report_interval",
    "inactive_reason",
)


def _changed_fields(before: ComponentState, after: ComponentState) -> frozenset[str]:
    changed = {name for name in _COMPARED_FIELDS if getattr(before, name) != getattr(after, name)}
    if after.reports != before.reports:
        changed.add("reports")
    return frozenset(changed)


def _link_diff(
    before: tuple[Link, ...], after: tuple[Link, ...]
) -> tuple[tuple[Link, ...], tuple[Link, ...]]:
    old = {link.key for link in before}
    new = {link.key for link in after}
    added = tuple(link for link in after if link.key not in old)
    removed = tuple(link for link in before if link.key not in new)
    return added, removed


# ----------------------------------------------------------------------------- asyncio


class _CspProtocol(asyncio.DatagramProtocol):
    def __init__(self, monitor: CspMonitor) -> None:
        self._monitor = monitor

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._monitor._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("CSP socket error: %s", exc)


def listen_error(what: str, host: str, port: int, exc: OSError) -> OSError:
    """An OSError naming what could not listen where, with the reason said once.

    ``str(OSError(errno, text))`` starts with ``[Errno N]``; the original error's
    text has it too, so it is built from ``strerror`` and keeps ``errno`` for callers.
    """
    reason = exc.strerror or str(exc)
    hint = " (is another control center running? --csp-port 0 picks a free port)"
    message = f"cannot listen for {what} on {host}:{port}: {reason}"
    error = OSError(message + (hint if exc.errno == errno.EADDRINUSE else ""))
    error.errno = exc.errno
    return error


class CspMonitor:
    """Receives CSP reports on UDP ``host:port`` and keeps ``model`` current.

    Use as ``async with CspMonitor(model, port=0) as monitor:``; ``port`` 0
    binds an ephemeral port (see :attr:`address`). Datagrams are applied as
    they arrive; a single timer fires at the model's next deadline.
    """

    def __init__(
        self,
        model: StatusModel | None = None,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_CSP_PORT,
    ) -> None:
        self.model = model if model is not None else StatusModel()
        self.host = host
        self.port = port
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self.model.events.connect(self._wake_waiters)

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (valid after :meth:`start`)."""
        if self._transport is None:
            raise RuntimeError("monitor not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def now(self) -> float:
        """The model's clock (the event loop's monotonic time)."""
        if self._loop is None:
            raise RuntimeError("monitor not started")
        return self._loop.time()

    async def start(self) -> None:
        """Bind the UDP port; OSError (with the address in the message) if that fails."""
        self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(self._loop, self._on_timer)
        try:
            transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _CspProtocol(self), local_addr=(self.host, self.port)
            )
        except OSError as exc:
            raise listen_error("CSP reports", self.host, self.port, exc) from exc
        self._transport = transport
        self._rearm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._wake_waiters(None)

    async def __aenter__(self) -> CspMonitor:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.close()

    async def wait_until(
        self, predicate: Callable[[StatusModel], bool], timeout: float | None
    ) -> bool:
        """Wait until ``predicate(model)`` holds; False if ``timeout`` passed first.

        The predicate is checked now and after every model event, so the
        wait ends as soon as the deciding report (or timeout) is processed.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate(self.model):
            if self._transport is None:
                return False
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return predicate(self.model)
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        return True

    # -- internals

    def _on_datagram(self, data: bytes, source: tuple[str, int]) -> None:
        assert self._loop is not None
        self.model.handle_datagram(data, source, self._loop.time())
        self._rearm()

    def _on_timer(self) -> None:
        assert self._loop is not None
        self.model.expire(self._loop.time())
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None and self._transport is not None:
            self._timer.rearm(self.model.next_deadline())

    def _wake_waiters(self, _event: object) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
