"""The viewer's network side: one worker thread running an asyncio loop (no Qt here).

Why a thread and not a Qt-driven asyncio loop: PySide6.QtAsyncio is not part
of the PySide6-Essentials wheel this project depends on (``import
PySide6.QtAsyncio`` fails there), and qasync is not a dependency. The engine
needs a complete asyncio loop (streams, ``asyncio.to_thread``, UDP datagram
endpoints for status reports and announces), so the session engine runs in
the standard loop of ONE worker thread. The GUI talks to it only through the
thread-safe methods below; the worker hands everything back through
``deliver``, which the Qt side turns into a queued signal (fractal_pu.gui.bridge).

What the worker delivers (plain objects, in order):

* :class:`JobChosen` then the engine's events wrapped in :class:`Tagged`, all
  carrying the *generation* of the image request they belong to, so the GUI
  can drop whatever an abandoned image still reports;
* :class:`ImageFailed` when an image could not even start (no registrar ...);
* :class:`RegistrarState` whenever the home registrar changes or is lost.

Session logic is the engine's (fractal_pu.engine), shared with --headless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fractal_pu.engine import EngineEvent, FractalEngine
from fractal_pu.fsf import FractalJob
from fractal_pu.jobs import JobSource
from fractal_pu.options import PoolUserOptions
from fractal_pu.wiring import (
    PuStatus,
    asap_service,
    attach_live_image,
    fractal_engine,
    start_status_reporter,
)
from rsplib.asap.actions import NoRegistrar
from rsplib.asap.service import AsapService
from rsplib.errors import RserPoolError
from rsplib.session.reporting import ComponentReporter

log = logging.getLogger("fractal_pu.gui")

LOOKING_FOR_REGISTRAR = "Looking for Registrar ..."
#: How often the worker looks at the home registrar (seconds).
REGISTRAR_POLL = 0.25


@dataclass(frozen=True, slots=True)
class JobChosen:
    generation: int
    run: int
    config_name: str | None
    job: FractalJob


@dataclass(frozen=True, slots=True)
class Tagged:
    """An engine event of the image requested as ``generation``."""

    generation: int
    event: EngineEvent


@dataclass(frozen=True, slots=True)
class ImageFailed:
    generation: int
    error: str


@dataclass(frozen=True, slots=True)
class RegistrarState:
    """The home registrar (address text, server id), or None with the last hunt's problem."""

    address: str | None
    server_id: int
    problem: str | None = None


RunnerMessage = JobChosen | Tagged | ImageFailed | RegistrarState
Deliver = Callable[[RunnerMessage], None]


@dataclass(frozen=True, slots=True)
class _ImageRequest:
    generation: int
    width: int
    height: int
    sessions: int


class EngineRunner:
    """Owns the worker thread; every public method may be called from any thread."""

    def __init__(self, options: PoolUserOptions, deliver: Deliver) -> None:
        self.options = options
        self.deliver = deliver
        self.jobs = JobSource.from_paths(
            options.configs, playlist=options.playlist, seed=options.seed
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands: asyncio.Queue[_ImageRequest | None] | None = None
        self._started = threading.Event()
        self._generation = -1
        self._run = 0
        #: Sessions of the current image, for the CSP status text.
        self._status = PuStatus(options.sessions, lambda: 0.0)

    # ------------------------------------------------------------------ GUI side

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="fractal-pu-engine")
        self._thread.start()
        self._started.wait(10.0)

    def request_image(self, generation: int, width: int, height: int, sessions: int) -> None:
        """Abandon the current image (if any) and compute a new one."""
        self._post(_ImageRequest(generation, width, height, sessions))

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel everything, close the sessions, send the FINAL status report, join."""
        if self._thread is None:
            return
        self._post(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the engine thread did not stop within %.1f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _post(self, item: _ImageRequest | None) -> None:
        loop, queue = self._loop, self._commands
        if loop is None or queue is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, item)

    # ------------------------------------------------------------------ worker side

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("the engine thread failed")
        finally:
            self._started.set()

    async def _main(self) -> None:
        options = self.options
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._commands = asyncio.Queue()
        self._status = PuStatus(options.sessions, loop.time)
        asap = asap_service(options)
        problem: list[str] = []

        def on_asap_event(event: object) -> None:
            if isinstance(event, NoRegistrar):
                problem[:] = [event.reason]

        asap.add_listener(on_asap_event)

        engine = fractal_engine(options, asap, listener=self._status.on_event)
        engine.add_listener(lambda event: self.deliver(Tagged(self._generation, event)))
        live_task = attach_live_image(options, engine)
        reporter: ComponentReporter | None = None
        image_task: asyncio.Task[None] | None = None
        watcher: asyncio.Task[None] | None = None
        self._started.set()
        try:
            status = self._status

            def status_text() -> str:
                if asap.registrar_link() is None:
                    return LOOKING_FOR_REGISTRAR
                return status.status_text()

            # The reporter first: it fixes the PU's component id, which the trace carries too.
            reporter = start_status_reporter(
                options, asap, status, random_bits=random.getrandbits, status_text=status_text
            )
            await asap.start()
            watcher = loop.create_task(self._watch_registrar(asap, problem))
            while True:
                request = await self._commands.get()
                if image_task is not None:
                    # Wait until the old image's cells closed their sessions: after this,
                    # nothing of it is delivered any more (the generation changes below).
                    image_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await image_task
                    image_task = None
                if request is None:
                    break
                self._generation = request.generation
                image_task = loop.create_task(self._compute(engine, request))
        finally:
            if live_task is not None:
                live_task.cancel()
            if image_task is not None:
                image_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await image_task
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if reporter is not None:
                with contextlib.suppress(Exception):
                    await reporter.stop(final=True)
            with contextlib.suppress(Exception):
                await asap.close()

    async def _compute(self, engine: FractalEngine, request: _ImageRequest) -> None:
        self._run += 1
        config_name, job = self.jobs.next()
        self._status.sessions = request.sessions
        self._status.packets = 0
        self._status.connected.clear()
        self.deliver(JobChosen(request.generation, self._run, config_name, job))
        log.info(
            "image %d: %s, %dx%d, %d sessions",
            self._run,
            config_name or "default parameters",
            request.width,
            request.height,
            request.sessions,
        )
        try:
            await engine.compute_image(
                job, request.width, request.height, request.sessions, index=self._run
            )
        except (RserPoolError, OSError, ValueError) as exc:
            self.deliver(ImageFailed(request.generation, f"{type(exc).__name__}: {exc}"))

    async def _watch_registrar(self, asap: AsapService, problem: list[str]) -> None:
        last: RegistrarState | None = None
        while True:
            home = asap.client.home_registrar
            if home is None:
                state = RegistrarState(None, 0, problem[0] if problem else None)
            else:
                problem.clear()
                state = RegistrarState(str(home[0]), home[1])
            if state != last:
                self.deliver(state)
                last = state
            await asyncio.sleep(REGISTRAR_POLL)
