"""What every launcher does: the process actions, their states and events.

A launcher runs components on one kind of host (this machine, virtual hosts,
an SSH host). The actions are the same everywhere -- start, stop (SIGINT,
then SIGKILL after a grace time), kill, hang/resume (SIGSTOP/SIGCONT),
restart, log file and tail -- and every state change is announced as a plain
event to subscribers (the monitor, the storyboard runner, a future GUI).
Host-level faults (unplug, replug, impair) exist only where the host kind
can do them; elsewhere they raise :class:`UnsupportedAction`.

Subclasses implement four primitives: spawn a process, send it a signal,
read a log tail, and report an exit through :meth:`Launcher._exited`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from control_center.commands import CommandLine
from rsplib.core_driver import Listeners

log = logging.getLogger(__name__)

#: Time allowed for a process to disappear after SIGKILL.
KILL_WAIT_S = 5.0


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    KILL = "kill"
    HANG = "hang"
    RESUME = "resume"
    RESTART = "restart"
    LOG = "log"
    UNPLUG = "unplug"
    REPLUG = "replug"
    IMPAIR = "impair"


PROCESS_ACTIONS = frozenset(
    {Action.START, Action.STOP, Action.KILL, Action.HANG, Action.RESUME, Action.RESTART, Action.LOG}
)
HOST_ACTIONS = frozenset({Action.UNPLUG, Action.REPLUG, Action.IMPAIR})


class ProcessState(StrEnum):
    RUNNING = "running"
    HUNG = "hung"
    STOPPING = "stopping"
    EXITED = "exited"


class LauncherError(RuntimeError):
    """An action failed; the message says what and where."""


class UnsupportedAction(LauncherError):
    """The launcher's host kind cannot do this (e.g. unplug a local host)."""


class HostConnectionError(LauncherError):
    """A host could not be reached or prepared; ``host`` names it."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(f"host {host}: {message}")


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: an exit code, a signal, or unknown (both ``None``)."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        """subprocess convention: a negative return code is the killing signal."""
        return cls(signal=-returncode) if returncode < 0 else cls(code=returncode)

    @property
    def success(self) -> bool:
        return self.code == 0

    def __str__(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        if self.code is not None:
            return f"exited with status {self.code}"
        return "exited (status unknown)"


@dataclass(frozen=True, slots=True)
class Impairment:
    """A network impairment of a virtual host's link (both directions).

    ``rate`` uses tc's syntax (``"1mbit"``, ``"8bit"``); ``delay_ms`` and
    ``loss_percent`` need the netem qdisc, which some kernels lack.
    """

    rate: str | None = None
    burst: str = "32kbit"
    latency_ms: float = 50.0
    delay_ms: float | None = None
    loss_percent: float | None = None


# ------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class ProcessStarted:
    component: str
    host: str
    pid: int
    at: float


@dataclass(frozen=True, slots=True)
class ProcessExited:
    component: str
    host: str
    status: ExitStatus
    #: True when the exit followed a stop or kill of ours; False is a crash.
    expected: bool
    at: float


@dataclass(frozen=True, slots=True)
class SignalSent:
    """A stop (SIGINT) or kill (SIGKILL) is being sent: the moment a fault is injected."""

    component: str
    host: str
    signal: str
    at: float


@dataclass(frozen=True, slots=True)
class ProcessHung:
    component: str
    host: str
    at: float


@dataclass(frozen=True, slots=True)
class ProcessResumed:
    component: str
    host: str
    at: float


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    component: str
    host: str
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class HostChanged:
    """A host-level fault was applied or removed (``what``: unplugged, replugged, impaired...)."""

    host: str
    what: str
    at: float


@dataclass(frozen=True, slots=True)
class HostFailed:
    """A host could not be reached or set up."""

    host: str
    message: str
    at: float


LauncherEvent = (
    (ProcessStarted | ProcessExited | ProcessHung | ProcessResumed | LaunchFailed | HostChanged)
    | HostFailed
    | SignalSent
)
Listener = Callable[[LauncherEvent], None]


@dataclass(slots=True)
class ProcessInfo:
    """Book-keeping of one component process."""

    component: str
    host: str
    command: CommandLine
    pid: int = 0
    state: ProcessState = ProcessState.RUNNING
    started_at: float = 0.0
    exit_status: ExitStatus | None = None
    #: Set by stop/kill so the exit is reported as expected, not as a crash.
    stop_requested: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> bool:
        return self.state is not ProcessState.EXITED


class Launcher(ABC):
    """Starts and controls component processes on one kind of host."""

    #: Actions this launcher can do; the control center greys out the others.
    supported: ClassVar[frozenset[Action]] = PROCESS_ACTIONS

    def __init__(self) -> None:
        self.processes: dict[str, ProcessInfo] = {}
        # A faulty subscriber must not break process control: Listeners logs and goes on.
        self._listeners: Listeners[LauncherEvent] = Listeners("launcher event")

    # -- events ------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every event; returns a function that unsubscribes."""
        return self._listeners.add(listener)

    def _emit(self, event: LauncherEvent) -> None:
        self._listeners.emit(event)

    # -- lifecycle -----------------------------------------------------------
    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare hosts (connect, create the lab). Default: nothing to do."""

    async def close(self) -> None:
        """Stop whatever still runs (short grace), then release host resources."""
        await asyncio.gather(
            *(self.stop(name, grace=1.0) for name, p in self.processes.items() if p.running),
            return_exceptions=True,
        )

    # -- queries -------------------------------------------------------------
    def info(self, name: str) -> ProcessInfo:
        try:
            return self.processes[name]
        except KeyError:
            raise LauncherError(f"{name} was never started") from None

    def is_running(self, name: str) -> bool:
        info = self.processes.get(name)
        return info is not None and info.running

    def state(self, name: str) -> ProcessState | None:
        info = self.processes.get(name)
        return info.state if info is not None else None

    def log_file(self, name: str) -> str:
        return self.info(name).command.log_file

    async def log_tail(self, name: str, lines: int = 50) -> list[str]:
        """The last ``lines`` lines of the component's log."""
        return await self._read_tail(self.info(name), lines)

    # -- process actions -----------------------------------------------------
    async def start(self, component: str, host: str, command: CommandLine) -> ProcessInfo:
        current = self.processes.get(component)
        if current is not None and current.running:
            raise LauncherError(f"{component} is already running (pid {current.pid})")
        info = ProcessInfo(component=component, host=host, command=command)
        try:
            info.pid = await self._spawn(info)
        except Exception as exc:
            message = f"cannot start {component} on {host}: {exc}"
            self._emit(LaunchFailed(component, host, message, time.monotonic()))
            raise LauncherError(message) from exc
        info.started_at = time.monotonic()
        self.processes[component] = info
        log.info("%s started on %s, pid %d", component, host, info.pid)
        self._emit(ProcessStarted(component, host, info.pid, info.started_at))
        return info

    async def stop(self, name: str, grace: float = 5.0) -> ExitStatus | None:
        """SIGINT, wait up to ``grace`` seconds, then SIGKILL. ``None``: was not running."""
        info = self.processes.get(name)
        if info is None or not info.running:
            return None
        was_hung = info.state is ProcessState.HUNG
        info.stop_requested = True
        info.state = ProcessState.STOPPING
        self._emit(SignalSent(name, info.host, "SIGINT", time.monotonic()))
        await self._signal(info, signal.SIGINT)
        if was_hung:
            # A stopped process only sees the SIGINT once it runs again.
            await self._signal(info, signal.SIGCONT)
        if await self._wait(info, grace):
            return info.exit_status
        log.warning("%s did not stop within %.1f s; killing it", name, grace)
        return await self.kill(name)

    async def kill(self, name: str) -> ExitStatus | None:
        """SIGKILL and wait for the exit."""
        info = self.processes.get(name)
        if info is None or not info.running:
            return None
        info.stop_requested = True
        info.state = ProcessState.STOPPING
        self._emit(SignalSent(name, info.host, "SIGKILL", time.monotonic()))
        await self._signal(info, signal.SIGKILL)
        if not await self._wait(info, KILL_WAIT_S):
            raise LauncherError(f"{name} (pid {info.pid}) still there after SIGKILL")
        return info.exit_status

    async def hang(self, name: str) -> None:
        """SIGSTOP: the process stays but answers nothing (a hung component)."""
        info = self._running(name)
        await self._signal(info, signal.SIGSTOP)
        info.state = ProcessState.HUNG
        self._emit(ProcessHung(name, info.host, time.monotonic()))

    async def resume(self, name: str) -> None:
        info = self._running(name)
        await self._signal(info, signal.SIGCONT)
        if info.state is ProcessState.HUNG:
            info.state = ProcessState.RUNNING
        self._emit(ProcessResumed(name, info.host, time.monotonic()))

    async def restart(
        self, name: str, grace: float = 5.0, command: CommandLine | None = None
    ) -> ProcessInfo:
        """Stop (gracefully) and start again, with the same or a new command line."""
        info = self.info(name)
        await self.stop(name, grace)
        return await self.start(name, info.host, command or info.command)

    # -- host faults -----------------------------------------------------------
    async def unplug(self, host: str) -> None:
        raise UnsupportedAction(f"{type(self).__name__} cannot unplug host {host}")

    async def replug(self, host: str) -> None:
        raise UnsupportedAction(f"{type(self).__name__} cannot replug host {host}")

    async def impair(self, host: str, impairment: Impairment | None) -> None:
        raise UnsupportedAction(f"{type(self).__name__} cannot impair host {host}")

    # -- for subclasses --------------------------------------------------------
    def _running(self, name: str) -> ProcessInfo:
        info = self.info(name)
        if not info.running:
            raise LauncherError(f"{name} is not running ({info.exit_status})")
        return info

    def _exited(self, info: ProcessInfo, status: ExitStatus) -> None:
        """Record an exit noticed by the subclass and announce it (once)."""
        if info.state is ProcessState.EXITED:
            return
        info.state = ProcessState.EXITED
        info.exit_status = status
        info.exited.set()
        level = logging.INFO if info.stop_requested else logging.WARNING
        log.log(level, "%s on %s %s", info.component, info.host, status)
        self._emit(
            ProcessExited(info.component, info.host, status, info.stop_requested, time.monotonic())
        )

    async def _wait(self, info: ProcessInfo, timeout: float) -> bool:
        try:
            await asyncio.wait_for(info.exited.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @abstractmethod
    async def _spawn(self, info: ProcessInfo) -> int:
        """Start the process without waiting for it; return its pid."""

    @abstractmethod
    async def _signal(self, info: ProcessInfo, sig: signal.Signals) -> None:
        """Send ``sig``; a process that is already gone is not an error."""

    @abstractmethod
    async def _read_tail(self, info: ProcessInfo, lines: int) -> list[str]:
        """Last lines of the log file."""
