"""The engine thread: orchestrator, status monitor and storyboards in one asyncio loop.

The window never runs engine code itself. :class:`EngineBridge` owns a worker
thread with its own asyncio event loop in which the :class:`Orchestrator`
(launchers, processes, the virtual-host lab) and the :class:`CspMonitor` live.
Everything the engine reports reaches the GUI thread as a Qt signal; signals
are connected as queued connections, so the slots run in the GUI thread.
Commands go the other way with :meth:`EngineBridge.submit`, which returns at
once; the outcome arrives later as :attr:`EngineBridge.command_finished`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from control_center.commands import CommandLine
from control_center.launchers.base import Action
from control_center.launchers.local import LocalLauncher
from control_center.monitor import CspMonitor, StatusModel, expected_from
from control_center.orchestrator import Orchestrator
from control_center.scenario import Component, ComponentKind, PictureDisplay, Scenario
from control_center.trace_collector import TRACE_FILE, TraceCollector
from control_center.trace_events import TraceFormatError, failover_of
from control_center.trace_store import TraceStore
from rsplib.trace.record import EventRecord

log = logging.getLogger("control_center.gui")

#: How often a followed log file is checked for new output.
LOG_POLL_S = 0.3
#: Bytes of an existing log shown when following starts.
LOG_BACKLOG_BYTES = 64 * 1024
#: How often the pool users' live images are checked for changes.
PICTURE_POLL_S = 0.2
#: A live image larger than this is not read (a 1000 x 1000 picture is a few MB at most).
MAX_PICTURE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the window learns once the engine is up."""

    csp_address: tuple[str, int]
    run_dir: Path
    #: Actions each host's launcher can do (unplug only on virtual hosts, ...).
    supported: dict[str, frozenset[Action]] = field(default_factory=dict)
    host_errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandResult:
    label: str
    component: str | None
    ok: bool
    message: str
    seconds: float


def viewer_command(command: CommandLine, caption: str) -> CommandLine:
    """A headless pool user's command line turned into one that opens its viewer window.

    ``--headless`` and the headless-only outputs go; everything else (registrars,
    identifier, status reporting, sessions, size) stays, so the viewer shows up on
    the map exactly like the headless pool user would.
    """
    argv: list[str] = []
    skip_value = False
    for arg in command.argv:
        if skip_value:
            skip_value = False
            continue
        if arg == "--headless":
            continue
        if arg in ("--output", "--report", "--values-output", "--images"):
            # Headless outputs: the viewer keeps its images on screen (and still
            # writes --live-image, so the control center's pane shows it too).
            skip_value = True
            continue
        argv.append(arg)
    argv += ["--caption", caption]
    return CommandLine(
        argv=tuple(argv),
        env=command.env,
        cwd=command.cwd,
        log_file=command.log_file,
        files={k: v for k, v in command.files.items() if k == "live"},
    )


def shows_window(comp: Component, host_kind: str, *, all_windows: bool, display: bool) -> bool:
    """Whether pool user ``comp`` runs as a viewer window (else headless, shown in a pane).

    A window needs a display, and this machine's display reaches only components on
    this machine or its virtual hosts.
    """
    wanted = all_windows or comp.display is PictureDisplay.WINDOW
    return (
        comp.kind is ComponentKind.FRACTAL_PU
        and wanted
        and display
        and host_kind in ("local", "netns")
    )


class WindowOrchestrator(Orchestrator):
    """Starts the pool users that :func:`shows_window` picks as viewer windows."""

    def __init__(
        self, scenario: Scenario, *, all_windows: bool, display: bool, **kwargs: Any
    ) -> None:
        super().__init__(scenario, **kwargs)
        self.all_windows = all_windows
        self.display = display

    def command(self, name: str) -> CommandLine:
        cmd = super().command(name)
        comp = self.scenario.component(name)
        host = self.scenario.host_of(comp)
        if shows_window(comp, host.kind, all_windows=self.all_windows, display=self.display):
            return viewer_command(cmd, comp.display_name)
        return cmd


class _Forwarder(QObject):
    """Signals emitted from the engine thread (queued into the GUI thread)."""

    monitor_event = Signal(object)
    launcher_event = Signal(object)
    command_finished = Signal(object)
    ready = Signal(object)
    failed = Signal(str)
    stopped = Signal()
    log_text = Signal(str, str, bool)  # component, text, replace the pane's content
    picture = Signal(str, bytes)  # pool user, PNG of its image in progress
    failover = Signal(object)  # PuFailover: a pool user's own failover report
    story_note = Signal(str, str)  # kind, text
    story_done = Signal(object)  # StoryResult


class EngineBridge(QObject):
    """Runs the scenario's engine on a worker thread; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        run_dir: str | Path | None = None,
        csp_port: int | None = None,
        viewers: bool = False,
        display: bool = False,
    ) -> None:
        super().__init__()
        self.scenario = scenario
        self.run_dir = run_dir
        self.csp_port = csp_port if csp_port is not None else scenario.csp_port
        #: Every pool user as a viewer window (``--viewers``), not only ``display = "window"``.
        self.viewers = viewers
        #: A display exists for viewer windows (without one every pool user runs headless).
        self.display = display
        self.signals = _Forwarder()
        self.orchestrator: Orchestrator | None = None
        self.monitor: CspMonitor | None = None
        self.model: StatusModel | None = None
        #: The live trace of the components (read by the GUI with ``drain()``).
        self.trace_store = TraceStore()
        self.trace: TraceCollector | None = None
        self.running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._log_task: asyncio.Task[None] | None = None
        self._pending: set[concurrent.futures.Future[Any]] = set()
        #: Trace events dropped as malformed.
        self.malformed_events = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the engine thread; :attr:`signals.ready` (or ``failed``) follows."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="control-center engine")
        self._thread.daemon = True
        self._thread.start()

    def shutdown(self) -> None:
        """Stop everything the engine started (non-blocking); ``signals.stopped`` follows."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None or loop.is_closed():
            self.signals.stopped.emit()
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # never let the thread die silently
            log.exception("engine failed")
            self.signals.failed.emit(str(exc))
        finally:
            self.running = False
            self.signals.stopped.emit()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sc = self.scenario
        self.model = StatusModel(
            expected_from(sc.components, timeout_multiplier=sc.timeout_multiplier),
            timeout_multiplier=sc.timeout_multiplier,
        )
        self.model.events.connect(self.signals.monitor_event.emit)
        orch = WindowOrchestrator(
            sc, all_windows=self.viewers, display=self.display, run_dir=self.run_dir
        )
        self.orchestrator = orch
        orch.subscribe(self.signals.launcher_event.emit)
        try:
            await orch.open(require_all_hosts=False)
            self.monitor = CspMonitor(self.model, host=orch.csp_listen_address, port=self.csp_port)
            await self.monitor.start()
            self.trace = TraceCollector(
                self.trace_store,
                host=orch.csp_listen_address,
                save_to=orch.run_dir / TRACE_FILE,
                on_event=self._on_trace_event,
            )
            await self.trace.start()
            orch.trace_port = self.trace.address[1]
        except BaseException as exc:
            if self.monitor is not None:
                self.monitor.close()
            await orch.close()
            if isinstance(exc, Exception):
                self.signals.failed.emit(f"cannot run the scenario: {exc}")
                return
            raise
        try:
            orch.csp_port = self.monitor.address[1]
            supported = {
                host: frozenset(launcher.supported) for host, launcher in orch.launchers.items()
            }
            self.running = True
            self.signals.ready.emit(
                EngineInfo(
                    csp_address=self.monitor.address,
                    run_dir=orch.run_dir,
                    supported=supported,
                    host_errors=dict(orch.host_errors),
                )
            )
            pictures = asyncio.ensure_future(self._watch_pictures(orch))
            try:
                await self._stop.wait()
            finally:
                pictures.cancel()
        finally:
            self.running = False
            if self._log_task is not None:
                self._log_task.cancel()
            for future in list(self._pending):
                future.cancel()
            # Stops every component (pool users first) and removes the lab.
            await orch.close()
            # Let the final reports of the stopped components reach the map.
            await asyncio.sleep(0.1)
            self.monitor.close()
            if self.trace is not None:
                self.trace.close()

    # ------------------------------------------------------------------ commands
    def submit(
        self,
        label: str,
        make: Callable[[Orchestrator], Awaitable[object]],
        component: str | None = None,
    ) -> concurrent.futures.Future[Any] | None:
        """Run ``make(orchestrator)`` in the engine; the result arrives as a signal."""
        loop, orch = self._loop, self.orchestrator
        if loop is None or orch is None or not self.running:
            self.signals.command_finished.emit(
                CommandResult(label, component, False, "the engine is not running", 0.0)
            )
            return None

        async def run() -> None:
            started = time.monotonic()
            try:
                result = await make(orch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = str(exc) or type(exc).__name__
                outcome = CommandResult(
                    label, component, False, message, time.monotonic() - started
                )
            else:
                text = "" if result is None else str(result)
                outcome = CommandResult(label, component, True, text, time.monotonic() - started)
            self.signals.command_finished.emit(outcome)

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def call(
        self, function: Callable[[], Coroutine[Any, Any, Any]]
    ) -> concurrent.futures.Future[Any]:
        """Run a coroutine function in the engine loop; for tests and the storyboard."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(function(), self._loop)

    # ------------------------------------------------------------------ trace events
    def _on_trace_event(self, record: EventRecord) -> None:
        self.trace_event(record.type, record.component, record.seq, record.time, record.fields)

    def trace_event(
        self, event_type: str, sender: int, seq: int, sent_at: float, fields: Mapping[str, Any]
    ) -> None:
        """An event record of the trace channel (engine thread): a pool user's failover
        goes to the window; a malformed one is dropped, counted and logged once."""
        try:
            failover = failover_of(event_type, sender, seq, sent_at, fields)
        except TraceFormatError as exc:
            self.malformed_events += 1
            if self.malformed_events == 1:
                log.warning("dropping a malformed trace event of %016x: %s", sender, exc)
            return
        if failover is not None:
            self.signals.failover.emit(failover)

    # ------------------------------------------------------------------ pictures
    async def _watch_pictures(self, orch: Orchestrator) -> None:
        """Send each pool user's live image to the window whenever its file changes."""
        files: dict[str, Path] = {}
        for comp in self.scenario.components:
            host = self.scenario.host_of(comp)
            live = (
                orch.files(comp.name).get("live") if comp.kind is ComponentKind.FRACTAL_PU else None
            )
            # Files of SSH hosts are not on this machine.
            if live is not None and host.kind in ("local", "netns"):
                files[comp.name] = Path(live)
        seen: dict[str, tuple[int, int]] = {}
        while files:
            for name, path in files.items():
                data, stamp = await asyncio.to_thread(_read_if_changed, path, seen.get(name))
                if stamp is not None:
                    seen[name] = stamp
                if data is not None:
                    self.signals.picture.emit(name, data)
            await asyncio.sleep(PICTURE_POLL_S)

    # ------------------------------------------------------------------ logs
    def follow_log(self, component: str | None) -> None:
        """Stream ``component``'s log to :attr:`signals.log_text` (None: stop following)."""
        loop = self._loop
        if loop is None:
            return

        def switch() -> None:
            if self._log_task is not None:
                self._log_task.cancel()
                self._log_task = None
            if component is not None:
                self._log_task = asyncio.ensure_future(self._follow(component))

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(switch)

    async def _follow(self, name: str) -> None:
        orch = self.orchestrator
        assert orch is not None
        comp = self.scenario.component(name)
        launcher = orch.launchers.get(comp.host)
        path = Path(orch.log_file(name))
        if launcher is None or isinstance(launcher, LocalLauncher):
            await self._follow_file(name, path)
        else:
            await self._follow_tail(name)

    async def _follow_file(self, name: str, path: Path) -> None:
        """A log on this machine (local and virtual hosts): read what was appended."""
        offset = 0
        first = True
        while True:
            chunk, offset, reset = await asyncio.to_thread(_read_new, path, offset, first)
            if chunk or first:
                if first and not chunk:
                    chunk = f"(no output yet: {path})\n"
                self.signals.log_text.emit(name, chunk, reset)
            first = False
            await asyncio.sleep(LOG_POLL_S)

    async def _follow_tail(self, name: str) -> None:
        """A log on an SSH host: its last lines, refreshed."""
        orch = self.orchestrator
        assert orch is not None
        last: list[str] | None = None
        while True:
            try:
                lines = await orch.log_tail(name, 200)
            except Exception as exc:
                lines = [f"(log not available: {exc})"]
            if lines != last:
                self.signals.log_text.emit(name, "\n".join(lines) + "\n", True)
                last = lines
            await asyncio.sleep(1.0)


def _read_if_changed(
    path: Path, seen: tuple[int, int] | None
) -> tuple[bytes | None, tuple[int, int] | None]:
    """(the file's bytes if it changed since ``seen``, its (mtime, size) stamp)."""
    try:
        info = path.stat()
    except OSError:
        return None, None
    stamp = (info.st_mtime_ns, info.st_size)
    if stamp == seen or not 0 < info.st_size <= MAX_PICTURE_BYTES:
        return None, stamp
    try:
        return path.read_bytes(), stamp
    except OSError:
        return None, None


def _read_new(path: Path, offset: int, first: bool) -> tuple[str, int, bool]:
    """New text of ``path`` after ``offset``; (text, new offset, replace-everything)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "", 0, first
    reset = first
    if size < offset:  # truncated or replaced: start over
        offset, reset = 0, True
    if first and size > LOG_BACKLOG_BYTES:
        offset = size - LOG_BACKLOG_BYTES
    if size == offset:
        return "", offset, reset
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(size - offset)
    text = data.decode("utf-8", errors="replace")
    if first and offset > 0:
        text = text.split("\n", 1)[-1]  # drop the cut first line
    return text, offset + len(data), reset
