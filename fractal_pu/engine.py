"""Qt-free session workers of the fractal pool user (shared by headless mode and the viewer).

An image is split into cells (``split_image_covering``); each cell gets its own
enhanced-mode session with the pool (rsplib.session.pu_session), sends the
cell's FGP Parameter message and paints the Data messages it receives until
the finalizer. Everything the viewer or the report needs is published as
plain events through a callback, in the event loop's thread:

* :class:`ImageStarted` -- the image's size and cell rectangles, before any session;
* :class:`PoolElementUsed` -- a cell now uses this PE (identifier and addresses);
* :class:`PixelsArrived` -- cell, cell-local start (x, y), the values, the PE
  that sent them and the cell's failover count at that moment (palette shift);
* :class:`CellConnected` -- the first PE of a cell;
* :class:`FailoverStarted` -- the session lost a PE (detection time);
* :class:`FailoverCompleted` -- the first pixel from the new PE arrived; it
  carries when the old PE's last message arrived, when the session gave up on
  it, and the first resumed pixel's time;
* :class:`CellRestarted` -- a cell starts over from its parameters;
* :class:`CellDone` and :class:`ImageDone` with the statistics.

Cancelling :meth:`FractalEngine.compute_image` cancels every cell and waits for
their sessions to close, so no event of that image comes after the
cancellation has been delivered.

Failover handling follows rsplib's fractal pool user: no data for
``receive_timeout`` -> ``failover()`` without reporting the PE; a failover
whose Cookie Echo the new PE accepted continues without resending parameters;
one without a cookie resends the Parameter message (the cell starts over).

Rejected cookies are the session library's news, not a guess: a pool element
that refuses a Cookie Echo closes the session before sending anything, the
library reports :class:`~rsplib.session.pu_machine.CookieRejected`, drops the
cookie and connects again without it; the cell then restarts from its
parameters. A PE that is merely silent (hung) is no rejection: the library
keeps the cookie and tries another PE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fractal_pe.fgp import (
    FGP_PPID,
    FgpData,
    FgpParameter,
    decode_fgp,
    encode_parameter,
    validate_data_for_pu,
)
from fractal_pu.fsf import FractalJob
from fractal_pu.split import Rect, split_image_covering, sub_parameters
from rsplib import trace
from rsplib.core_driver import Listeners
from rsplib.errors import SessionClosed
from rsplib.session import pu_machine as lib
from rsplib.session.control import DataMessage, PoolElementIdentity
from rsplib.session.pu_machine import SessionEvent
from rsplib.wire.errors import ProtocolError

log = logging.getLogger("fractal_pu")

CountImage = npt.NDArray[np.uint32]

# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ImageStarted:
    """An image begins: its size and the rectangle of every cell (session order)."""

    index: int
    width: int
    height: int
    rects: tuple[Rect, ...]


@dataclass(frozen=True, slots=True)
class PoolElementUsed:
    """``cell`` now gets its data from this PE (first connection or after a failover)."""

    cell: int
    pe_id: int
    addresses: tuple[str, ...]
    port: int


@dataclass(frozen=True, slots=True)
class PixelsArrived:
    """Values of consecutive pixels of ``cell``, row-major from cell-local (x, y)."""

    cell: int
    x: int
    y: int
    values: npt.NDArray[np.uint32]
    pe_id: int
    failovers: int


@dataclass(frozen=True, slots=True)
class CellConnected:
    cell: int
    pe_id: int


@dataclass(frozen=True, slots=True)
class FailoverStarted:
    cell: int
    old_pe: int | None
    detected_time: float
    reason: str


@dataclass(frozen=True, slots=True)
class FailoverCompleted:
    """The new PE's first pixel arrived (times are the engine's monotonic clock).

    ``last_rx_time``: the old PE's last message (None if it sent none), the pool
    user's best knowledge of when it failed; ``detected_time``: when the session gave
    up on it; ``resumed_time``: the first pixel from the new PE.
    """

    cell: int
    old_pe: int | None
    new_pe: int
    had_cookie: bool
    last_rx_time: float | None
    detected_time: float
    resumed_time: float
    reason: str = ""
    cookie_rejected: bool = False

    @property
    def fault_time(self) -> float:
        """The old PE's last sign of life, else the detection."""
        return self.detected_time if self.last_rx_time is None else self.last_rx_time

    @property
    def duration(self) -> float:
        """Fault (last sign of life) to the first resumed pixel, in seconds."""
        return self.resumed_time - self.fault_time


@dataclass(frozen=True, slots=True)
class CellRestarted:
    """The cell starts over from its parameters (no cookie, or the cookie was rejected)."""

    cell: int
    pe_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class CellDone:
    cell: int
    stats: CellStats


@dataclass(frozen=True, slots=True)
class ImageDone:
    result: ImageResult


EngineEvent = (
    ImageStarted
    | PoolElementUsed
    | PixelsArrived
    | CellConnected
    | FailoverStarted
    | FailoverCompleted
    | CellRestarted
    | CellDone
    | ImageDone
)
Listener = Callable[[EngineEvent], None]

# --------------------------------------------------------------------------- statistics


@dataclass
class FailoverRecord:
    """One failover of one cell; times are the engine clock's (monotonic seconds)."""

    old_pe: int | None
    reason: str
    detected_time: float
    last_rx_time: float | None = None
    new_pe: int | None = None
    had_cookie: bool = False
    connected_time: float | None = None
    resumed_time: float | None = None
    cookie_rejected: bool = False

    @property
    def fault_time(self) -> float:
        """The old PE's last message, else the detection (the PU's best knowledge)."""
        return self.detected_time if self.last_rx_time is None else self.last_rx_time

    @property
    def duration(self) -> float | None:
        """Fault (old PE's last message) -> first pixel from the new PE (seconds)."""
        if self.resumed_time is None:
            return None
        return self.resumed_time - self.fault_time

    @property
    def recovery(self) -> float | None:
        """Detection -> first pixel from the new PE (seconds)."""
        if self.resumed_time is None:
            return None
        return self.resumed_time - self.detected_time


@dataclass
class CellStats:
    index: int
    rect: Rect
    parameters: FgpParameter
    pes_used: list[int] = field(default_factory=list)
    pixels_per_pe: dict[int, int] = field(default_factory=dict)
    pixels_computed_twice: int = 0
    failovers: list[FailoverRecord] = field(default_factory=list)
    restarts: int = 0
    cookies_rejected: int = 0
    started: float = 0.0
    finished: float | None = None
    complete: bool = False
    missing_pixels: int = 0
    error: str | None = None


@dataclass
class ImageResult:
    """The image and how it was made."""

    index: int
    job: FractalJob
    width: int
    height: int
    values: CountImage
    computed: npt.NDArray[np.bool_]
    #: Failovers completed in the pixel's cell when the pixel arrived (palette shift).
    failovers: npt.NDArray[np.uint16]
    #: Cell index of every pixel.
    cell_of: npt.NDArray[np.uint16]
    cells: list[CellStats]
    started: float
    finished: float = 0.0

    @property
    def complete(self) -> bool:
        return bool(self.computed.all()) and all(c.complete for c in self.cells)

    @property
    def missing_pixels(self) -> int:
        return int(self.computed.size - np.count_nonzero(self.computed))


# --------------------------------------------------------------------------- sessions


class CellSession(Protocol):
    """What a cell needs of a pool-user session (rsplib's PoolUserSession has it)."""

    @property
    def pool_element(self) -> PoolElementIdentity | None: ...

    @property
    def cookie(self) -> bytes | None: ...

    async def read_message(self) -> DataMessage: ...

    async def write(self, data: bytes, ppid: int | None = None) -> None: ...

    async def failover(self, *, report_unreachable: bool = False) -> None: ...

    async def close(self) -> None: ...


#: Opens a session to the pool, delivering the library's session events to the callback.
SessionFactory = Callable[[Callable[[SessionEvent], None]], Awaitable[CellSession]]


@dataclass(frozen=True)
class EngineConfig:
    """Timeouts in seconds (rsplib's PU: 5 s receive timeout)."""

    receive_timeout: float = 5.0
    send_timeout: float = 5.0
    #: Give up the image after this long (None: never).
    image_timeout: float | None = None


class _CellWorker:
    def __init__(
        self,
        engine: FractalEngine,
        image: ImageResult,
        stats: CellStats,
        factory: SessionFactory,
    ) -> None:
        self.engine = engine
        self.image = image
        self.stats = stats
        self.factory = factory
        self.session: CellSession | None = None
        self.loop = asyncio.get_running_loop()
        self.param_bytes = encode_parameter(stats.parameters)
        self.failovers_completed = 0
        self.current_pe = 0
        self.pending: FailoverRecord | None = None
        self.writing_parameters = False
        self.tasks: set[asyncio.Task[None]] = set()
        rect = stats.rect
        # Cell-local, row-major; copied into the image's (non-contiguous) cell area per block.
        self.received = np.zeros(rect.h * rect.w, dtype=bool)

    # ------------------------------------------------------------------ library events

    def on_session_event(self, event: SessionEvent) -> None:
        """The session library's news about this cell's session (see module doc)."""
        index = self.stats.index
        if isinstance(event, lib.FailoverStarted):
            old = event.old_pe.identifier if event.old_pe is not None else None
            record = FailoverRecord(old, event.reason.value, event.at, event.last_rx)
            self.stats.failovers.append(record)
            self.pending = record
            self.engine.emit(FailoverStarted(index, old, event.at, event.reason.value))
        elif isinstance(event, lib.CookieEchoed):
            describe = self.engine.describe_cookie
            session = self.session
            if describe is not None and session is not None and session.cookie is not None:
                log.info(
                    "cell %d: Cookie Echo to $%08x: %s",
                    index,
                    event.pe.identifier,
                    describe(session.cookie),
                )
        elif isinstance(event, lib.CookieRejected):
            self.stats.cookies_rejected += 1
            if self.pending is not None:
                self.pending.cookie_rejected = True
            log.warning(
                "cell %d: PE $%08x rejected our cookie; the cell restarts from its parameters",
                index,
                event.pe.identifier,
            )
        elif isinstance(event, lib.CookieAbandoned):
            log.warning(
                "cell %d: our cookie went unanswered %d times; the cell restarts",
                index,
                event.attempts,
            )
        elif isinstance(event, lib.FailoverCompleted):
            record = self.pending or FailoverRecord(None, event.reason.value, event.started_at)
            record.new_pe = event.new_pe.identifier
            record.had_cookie = event.had_cookie
            record.connected_time = event.completed_at
            self._use_pe(event.new_pe.identifier, event.new_pe)
            self.failovers_completed += 1
            if not event.had_cookie and not self.writing_parameters:
                # No cookie: the new PE knows nothing, so the cell starts over.
                self.stats.restarts += 1
                reason = "cookie rejected" if record.cookie_rejected else "no cookie"
                self.engine.emit(CellRestarted(index, event.new_pe.identifier, reason))
                self._spawn(self._send_parameters())

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        stats = self.stats
        stats.started = self.loop.time()
        try:
            self.session = await self.factory(self.on_session_event)
            pe = self.session.pool_element
            if pe is not None:
                self._use_pe(pe.identifier, pe)
                self.engine.emit(CellConnected(stats.index, pe.identifier))
            await self._send_parameters()
            await self._receive_until_done()
        except SessionClosed as exc:
            stats.error = f"session closed: {exc}"
        except Exception as exc:
            stats.error = f"{type(exc).__name__}: {exc}"
            log.error("cell %d failed: %s", stats.index, stats.error)
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.session is not None:
                with contextlib.suppress(Exception):
                    await self.session.close()
            stats.finished = self.loop.time()
            stats.missing_pixels = int(self.received.size - np.count_nonzero(self.received))
            stats.complete = stats.error is None and stats.missing_pixels == 0
            self.engine.emit(CellDone(stats.index, stats))

    async def _send_parameters(self) -> None:
        session = self.session
        assert session is not None
        self.writing_parameters = True
        try:
            await asyncio.wait_for(
                session.write(self.param_bytes, ppid=FGP_PPID), self.engine.config.send_timeout
            )
        except TimeoutError:
            # rsplib: a failed Parameter send fails over *and* reports the PE.
            log.warning("cell %d: sending parameters timed out; failing over", self.stats.index)
            self._spawn(self._force_failover(report=True))
        finally:
            self.writing_parameters = False

    async def _force_failover(self, *, report: bool) -> None:
        session = self.session
        assert session is not None
        await session.failover(report_unreachable=report)

    async def _receive_until_done(self) -> None:
        session = self.session
        assert session is not None
        timeout = self.engine.config.receive_timeout
        while True:
            try:
                message = await asyncio.wait_for(session.read_message(), timeout)
            except TimeoutError:
                log.info(
                    "cell %d: nothing received for %.1f s; failing over",
                    self.stats.index,
                    timeout,
                )
                await session.failover()
                continue
            if self._handle(message):
                return

    def _handle(self, message: DataMessage) -> bool:
        """Paint one message; True at the finalizer."""
        rect = self.stats.rect
        try:
            decoded = decode_fgp(message.data)
            if not isinstance(decoded, FgpData):
                raise ProtocolError("a pool element sent a Parameter message")
            validate_data_for_pu(decoded, rect.w, rect.h)
        except ProtocolError as exc:
            log.warning("cell %d: invalid block ignored: %s", self.stats.index, exc)
            return False
        if decoded.is_finalizer:
            return True
        now = self.loop.time()
        pe_id = self.current_pe
        values = np.asarray(decoded.points, dtype=np.uint32)
        start = decoded.start_y * rect.w + decoded.start_x
        flat = slice(start, start + len(values))
        self.stats.pixels_computed_twice += int(np.count_nonzero(self.received[flat]))
        self.received[flat] = True
        index = np.arange(start, start + len(values))
        ys = rect.y + index // rect.w
        xs = rect.x + index % rect.w
        image = self.image
        image.values[ys, xs] = values
        image.computed[ys, xs] = True
        image.failovers[ys, xs] = min(self.failovers_completed, 0xFFFF)
        self.stats.pixels_per_pe[pe_id] = self.stats.pixels_per_pe.get(pe_id, 0) + len(values)
        record = self.pending
        if record is not None and record.connected_time is not None:
            self.pending = None
            record.resumed_time = now
            self._trace_failover(record, pe_id)
            self.engine.emit(
                FailoverCompleted(
                    self.stats.index,
                    record.old_pe,
                    record.new_pe if record.new_pe is not None else pe_id,
                    record.had_cookie,
                    record.last_rx_time,
                    record.detected_time,
                    now,
                    record.reason,
                    record.cookie_rejected,
                )
            )
        self.engine.emit(
            PixelsArrived(
                self.stats.index,
                decoded.start_x,
                decoded.start_y,
                values,
                pe_id,
                self.failovers_completed,
            )
        )
        return False

    def _trace_failover(self, record: FailoverRecord, pe_id: int) -> None:
        """Tell the trace receiver (the control center) about this failover, from here:
        the pool user is the one component that knows it happened (docs/trace.md)."""
        if not trace.TRACER.on:
            return
        offset = time.time() - self.loop.time()  # engine clock -> wall clock

        def wall(t: float | None) -> float | None:
            return None if t is None else round(t + offset, 6)

        trace.emit_event(
            "failover",
            session=self.stats.index,
            reason=record.reason,
            old_pe=record.old_pe,
            new_pe=record.new_pe if record.new_pe is not None else pe_id,
            cookie=record.had_cookie,
            cookie_rejected=record.cookie_rejected,
            last_rx=wall(record.last_rx_time),
            detected=wall(record.detected_time),
            resumed=wall(record.resumed_time),
            cells=[self.stats.index],
            image=self.image.index,
        )

    def _use_pe(self, pe_id: int, identity: PoolElementIdentity | None = None) -> None:
        # Messages are credited to the PE of the newest connection. Data of the old PE
        # still queued when a failover completes would be credited to the new one; the
        # queue is read continuously and a failover takes a resolution and a connect,
        # so in practice it is empty by then.
        self.current_pe = pe_id
        if not self.stats.pes_used or self.stats.pes_used[-1] != pe_id:
            self.stats.pes_used.append(pe_id)
        if identity is not None:
            self.engine.emit(
                PoolElementUsed(self.stats.index, pe_id, identity.addresses, identity.port)
            )

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except (SessionClosed, asyncio.CancelledError):
                pass
            except Exception as exc:
                log.warning("cell %d: %s", self.stats.index, exc)

        task = self.loop.create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class FractalEngine:
    """Computes images through a pool; ``listener`` gets every :data:`EngineEvent`."""

    def __init__(
        self,
        factory: SessionFactory,
        *,
        config: EngineConfig | None = None,
        listener: Listener | None = None,
        describe_cookie: Callable[[bytes], str] | None = None,
    ) -> None:
        self.factory = factory
        #: Optional: turns a cookie into text for the log (needs the pool's key).
        self.describe_cookie = describe_cookie
        self.config = config or EngineConfig()
        self._listeners: Listeners[EngineEvent] = Listeners("engine")
        if listener is not None:
            self._listeners.add(listener)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Subscribe to every engine event; returns the function that unsubscribes."""
        return self._listeners.add(listener)

    def emit(self, event: EngineEvent) -> None:
        self._listeners.emit(event)

    async def compute_image(
        self, job: FractalJob, width: int, height: int, sessions: int, *, index: int = 0
    ) -> ImageResult:
        """Compute one image with ``sessions`` cells; returns when every cell ended.

        With ``config.image_timeout`` the cells still running then are cancelled
        (their pixels stay missing and the result is incomplete).
        """
        loop = asyncio.get_running_loop()
        rects = split_image_covering(width, height, sessions)
        cell_of = np.zeros((height, width), dtype=np.uint16)
        for i, rect in enumerate(rects):
            cell_of[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = i
        result = ImageResult(
            index=index,
            job=job,
            width=width,
            height=height,
            values=np.zeros((height, width), dtype=np.uint32),
            computed=np.zeros((height, width), dtype=bool),
            failovers=np.zeros((height, width), dtype=np.uint16),
            cell_of=cell_of,
            cells=[
                CellStats(i, rect, sub_parameters(job, rect, width, height))
                for i, rect in enumerate(rects)
            ],
            started=loop.time(),
        )
        self.emit(ImageStarted(index, width, height, tuple(rects)))
        workers = [_CellWorker(self, result, stats, self.factory) for stats in result.cells]
        # The cells run as one group: cancelling the image (the viewer was resized, say)
        # or its timeout stops every cell, and each closes its session before we go on.
        try:
            async with asyncio.timeout(self.config.image_timeout), asyncio.TaskGroup() as group:
                for worker in workers:
                    group.create_task(worker.run(), name=f"fractal-cell-{worker.stats.index}")
        except TimeoutError:
            for worker in workers:
                if worker.stats.finished is None or not worker.stats.complete:
                    worker.stats.error = worker.stats.error or "image timeout"
        result.finished = loop.time()
        self.emit(ImageDone(result))
        return result
