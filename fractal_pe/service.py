"""The fractal pool element's session logic: FGP jobs, paced data, cookies, clean stops.

Two layers:

* :class:`Calculation` is sans-IO and clock-free. It knows one rectangle's
  progress (pixels computed, pixels sent), cuts computed values into Data
  messages of at most 324 points, and decides when to send a cookie (every
  ``cookie_max_packets`` data messages or after ``cookie_max_time``), when to
  flush a partial message (``data_max_time``), when to fail on purpose
  (``failure_after``) and what a clean stop sends. Its rule that rsplib lacks:
  **buffered data is always flushed before a cookie**, so a cookie never
  points past data the pool user has not been sent; after a clean stop or a
  deliberate failure the next PE therefore recomputes nothing.
* :class:`FractalService` runs calculations for the sessions a
  :class:`~rsplib.session.pe_server.PoolElementServer` hands it. The kernel
  runs in a worker thread in blocks of about ``block_time`` (30 ms), so the
  event loop keeps answering keep-alives and heartbeats while computing.

Cookies. The state is rsplib's 76-byte layout (``cookie_state``). The
library's cookie policy (:func:`fractal_cookie_policy`, built on
:class:`~rsplib.session.cookies.CookiePolicy`) seals it into the signed
envelope and judges every Cookie Echo: signature, pool, replay into a live
session, freshness, unsigned cookies only with ``--accept-unsigned-cookies``,
and -- the one fractal-specific check -- that the state is a fractal state.
A refused echo never reaches this service: the library closes the session
before anything is sent, the pool user's signal to drop the cookie and send
its Parameter message again. A PE that accepts an echo always answers with a
cookie first, so the pool user knows the echo worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fractal_pe.cookie_state import decode_fgp_state, encode_fgp_state, resume_offset
from fractal_pe.fgp import (
    FGP_PPID,
    MAX_POINTS,
    FgpData,
    FgpParameter,
    decode_fgp,
    encode_data,
    encode_data_points,
    validate_parameter_for_pe,
)
from fractal_pe.kernel import compute_span
from rsplib.errors import SessionClosed
from rsplib.session.control import DataMessage
from rsplib.session.cookies import CookiePolicy, CookieSealer
from rsplib.wire.errors import ProtocolError

log = logging.getLogger("fractal_pe")

#: Algorithm id that no kernel knows: the kernel then draws the test pattern.
TEST_PATTERN_ALGORITHM = 0
_MIN_BLOCK = 16
_MAX_BLOCK = 1 << 17
_INITIAL_BLOCK = MAX_POINTS


@dataclass(frozen=True)
class FractalServiceConfig:
    """Knobs of the fractal service; defaults equal rsplib's ``rspserver -fractal``."""

    max_threads: int = 4
    #: 0 = off; N = after N data messages of one run, flush, send a cookie, end the session.
    failure_after: int = 0
    cookie_max_packets: int = 10
    cookie_max_time: float = 1.0
    data_max_time: float = 1.0
    transmit_timeout: float = 2.5
    test_mode: bool = False
    #: "auto", "numpy", "numba" or None ($FRACTAL_KERNEL, else auto).
    kernel: str | None = None
    #: Target compute time of one block in the worker thread.
    block_time: float = 0.03
    #: Pause after every block, and blocks of at most one Data message (0 = off). For
    #: demos and tests: makes a small image take long enough to watch or to interrupt.
    block_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        if self.failure_after < 0:
            raise ValueError("failure_after must be 0 (off) or positive")
        if self.cookie_max_packets < 1:
            raise ValueError("cookie_max_packets must be at least 1")
        if self.block_delay < 0:
            raise ValueError("block_delay must not be negative")
        for name in ("cookie_max_time", "data_max_time", "transmit_timeout", "block_time"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")


# --------------------------------------------------------------------------- sans-IO core


@dataclass(frozen=True, slots=True)
class SendData:
    """Send this FGP Data message (``points`` pixels, or the finalizer with 0)."""

    payload: bytes
    points: int


@dataclass(frozen=True, slots=True)
class SendCookie:
    """Send the 76-byte state (sealing is the caller's job); resumes at ``position``."""

    state: bytes
    position: int


@dataclass(frozen=True, slots=True)
class EndSession:
    """Close the session gracefully; the pool user fails over with the last cookie."""

    reason: str


@dataclass(frozen=True, slots=True)
class CalculationDone:
    """The finalizer went out; the rectangle is complete."""


Output = SendData | SendCookie | EndSession | CalculationDone


class Calculation:
    """One rectangle's progress from ``start`` (a row-major pixel index) to its end.

    The caller asks :meth:`next_span` what to compute, computes it (anywhere),
    feeds the values to :meth:`add_values` and performs the returned outputs
    in order. Times are the caller's monotonic clock in seconds.
    """

    def __init__(
        self, param: FgpParameter, start: int, config: FractalServiceConfig, now: float
    ) -> None:
        self.param = param
        self.config = config
        self.total = param.width * param.height
        if not 0 <= start <= self.total:
            raise ValueError(f"start {start} outside a rectangle of {self.total} pixels")
        self.start_position = start
        self.computed = start  # next pixel to compute
        self.sent = start  # next pixel not yet sent; buffer = [sent, computed)
        self.block = _INITIAL_BLOCK
        self.packets_this_run = 0
        self.packets_since_cookie = 0
        self.packets_total = 0
        self.cookies_sent = 0
        self.last_cookie = now
        self.last_send = now
        self.ended = False
        self._buffer: list[npt.NDArray[np.uint32]] = []
        self._buffered = 0

    @property
    def compute_parameters(self) -> FgpParameter:
        """What the kernel computes (the test pattern in test mode)."""
        if self.config.test_mode:
            return replace(self.param, algorithm=TEST_PATTERN_ALGORITHM)
        return self.param

    @property
    def finished(self) -> bool:
        return self.sent >= self.total

    @property
    def progress(self) -> float:
        return 1.0 if self.total == 0 else self.sent / self.total

    def start(self, now: float) -> list[Output]:
        """What to send first: a cookie (rsplib does the same, also after a Cookie Echo).

        It also tells the pool user that a Cookie Echo was accepted.
        """
        if self.total == 0 or self.computed >= self.total:
            return [self._cookie(now), *self._finish()]
        return [self._cookie(now)]

    def next_span(self) -> tuple[int, int] | None:
        """(first pixel, count) of the next block to compute; None when nothing is left."""
        if self.ended or self.computed >= self.total:
            return None
        return self.computed, min(self.block, self.total - self.computed)

    def add_values(
        self, values: npt.NDArray[np.uint32], elapsed: float, now: float
    ) -> list[Output]:
        """Take the values of the span :meth:`next_span` gave; return what to send."""
        if self.ended:
            raise RuntimeError("the calculation has ended")
        count = len(values)
        if count == 0 or self.computed + count > self.total:
            raise ValueError(f"{count} values do not fit at pixel {self.computed}")
        self._buffer.append(values)
        self._buffered += count
        self.computed += count
        self._resize_block(count, elapsed)

        out: list[Output] = []
        failing = self._emit_full_messages(out, now)
        if failing:
            # Exactly failure_after messages went out; what is computed beyond them is
            # dropped, and the cookie says where the next PE starts.
            self._discard_buffer()
            out.append(self._cookie(now))
            out.append(self._end(f"failure mode: {self.config.failure_after} data messages sent"))
            return out
        if self.computed >= self.total:
            self._flush(out, now)
            out.extend(self._finish())
            return out
        if self._buffered and now - self.last_send >= self.config.data_max_time:
            self._flush(out, now)
        if (
            self.packets_since_cookie >= self.config.cookie_max_packets
            or now - self.last_cookie >= self.config.cookie_max_time
        ):
            self._flush(out, now)
            out.append(self._cookie(now))
        return out

    def shutdown(self, now: float) -> list[Output]:
        """Clean stop: flush everything computed, a final cookie, end the session."""
        if self.ended:
            return []
        out: list[Output] = []
        self._flush(out, now)
        if self.finished:
            out.extend(self._finish())
            return out
        out.append(self._cookie(now))
        out.append(self._end("pool element shutting down"))
        return out

    # ------------------------------------------------------------------ internals

    def _resize_block(self, count: int, elapsed: float) -> None:
        # Aim at block_time per block: short enough that a clean stop or a cookie timer
        # never waits long, long enough to amortise the thread hand-off.
        wanted = count * 2 if elapsed <= 0 else int(count * self.config.block_time / elapsed)
        biggest = MAX_POINTS if self.config.block_delay > 0 else _MAX_BLOCK
        wanted = max(_MIN_BLOCK, min(biggest, wanted, count * 4))
        if wanted >= MAX_POINTS:
            wanted -= wanted % MAX_POINTS  # whole Data messages
        self.block = wanted

    def _take(self, count: int) -> npt.NDArray[np.uint32]:
        joined = self._buffer[0] if len(self._buffer) == 1 else np.concatenate(self._buffer)
        head, rest = joined[:count], joined[count:]
        self._buffer = [rest] if len(rest) else []
        self._buffered = len(rest)
        return head

    def _data_message(self, values: npt.NDArray[np.uint32], now: float) -> SendData:
        width = self.param.width
        payload = encode_data_points(self.sent % width, self.sent // width, values)
        self.sent += len(values)
        self.packets_this_run += 1
        self.packets_since_cookie += 1
        self.packets_total += 1
        self.last_send = now
        return SendData(payload, len(values))

    def _emit_full_messages(self, out: list[Output], now: float) -> bool:
        """Send every full 324-point message; True when failure mode strikes."""
        limit = self.config.failure_after
        while self._buffered >= MAX_POINTS:
            out.append(self._data_message(self._take(MAX_POINTS), now))
            if limit and self.packets_this_run >= limit:
                return True
        return False

    def _flush(self, out: list[Output], now: float) -> None:
        if self._buffered:
            while self._buffered:
                out.append(self._data_message(self._take(min(MAX_POINTS, self._buffered)), now))

    def _discard_buffer(self) -> None:
        self._buffer = []
        self._buffered = 0
        self.computed = self.sent

    def _cookie(self, now: float) -> SendCookie:
        width = self.param.width
        position = self.sent
        if width:
            x, y = position % width, position // width
        else:
            x, y = 0, 0
        self.last_cookie = now
        self.packets_since_cookie = 0
        self.cookies_sent += 1
        return SendCookie(encode_fgp_state(self.param, x, y), position)

    def _finish(self) -> list[Output]:
        self.ended = True
        return [SendData(encode_data(FgpData.finalizer()), 0), CalculationDone()]

    def _end(self, reason: str) -> EndSession:
        self.ended = True
        return EndSession(reason)


# --------------------------------------------------------------------------- cookies


def fractal_cookie_policy(sealer: CookieSealer | None, accept_unsigned: bool) -> CookiePolicy:
    """The library's cookie rules with the fractal PE's own state check.

    ``accept_unsigned`` also takes rsplib's plain 76-byte cookies (a pool shared with
    rsplib's ``rspserver -fractal``); without a key only those are possible.
    """
    return CookiePolicy(sealer, accept_unsigned, check_state=decode_fgp_state)


# --------------------------------------------------------------------------- asyncio side


class FractalSession(Protocol):
    """What the service needs of a session (rsplib.session.pe_server.PeSession has it)."""

    started_with_cookie_echo: bool
    #: The echoed cookie's state, verified by the server's cookie policy.
    cookie: bytes | None
    status_text: str
    peer_address: tuple[str, int]

    async def read_message(self) -> DataMessage: ...

    async def write(self, data: bytes, ppid: int | None = None) -> None: ...

    async def send_cookie(self, state: bytes) -> None: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


class _SessionEnded(Exception):
    pass


@dataclass
class ServiceCounters:
    """Totals for logs, status and tests."""

    sessions: int = 0
    calculations: int = 0
    completed: int = 0
    data_messages: int = 0
    cookies: int = 0
    deliberate_failures: int = 0
    handed_over: int = 0


@dataclass
class _Runner:
    session: FractalSession
    calculation: Calculation | None = None
    queue: asyncio.Queue[FgpParameter | None] = field(default_factory=asyncio.Queue)


class FractalService:
    """Runs fractal calculations for sessions; ``handle`` is the PoolElementServer handler."""

    def __init__(
        self,
        config: FractalServiceConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or FractalServiceConfig()
        self.counters = ServiceCounters()
        self._clock = clock
        self._runners: dict[int, _Runner] = {}
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    # ------------------------------------------------------------------ public

    @property
    def active_sessions(self) -> int:
        return len(self._runners)

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def handle(self, session: FractalSession) -> None:
        """Serve one session until the pool user leaves, a failure or a clean stop."""
        self.counters.sessions += 1
        if self._stopping:
            # A reset, not a graceful close: right after a Cookie Echo that would read as
            # a refused cookie, and the pool user would throw its work away.
            session.abort()
            return
        key = id(session)
        runner = self._open(session)
        self._runners[key] = runner
        self._events()[1].clear()
        reader = asyncio.create_task(self._read_loop(runner), name="fractal-reader")
        try:
            await self._serve(runner)
        except _SessionEnded:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            del self._runners[key]
            if not self._runners:
                self._events()[1].set()

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Clean stop: every session flushes, sends a final cookie and ends (no lost work)."""
        self._stopping = True
        stop, idle = self._events()
        stop.set()
        if self._runners:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), timeout)

    def status_text(self) -> str:
        count = len(self._runners)
        return f"{count} Session" + ("" if count == 1 else "s")

    # ------------------------------------------------------------------ internals

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._stop_event is None or self._idle is None:
            self._stop_event = asyncio.Event()
            self._idle = asyncio.Event()
            self._idle.set()
            if self._stopping:
                self._stop_event.set()
        return self._stop_event, self._idle

    def _open(self, session: FractalSession) -> _Runner:
        runner = _Runner(session)
        if not session.started_with_cookie_echo or session.cookie is None:
            return runner
        # The library verified the cookie and that it decodes (fractal_cookie_policy).
        param, x, y = decode_fgp_state(session.cookie)
        offset = resume_offset(param, x, y)
        log.info(
            "session from %s:%d resumes a %dx%d rectangle at pixel %d from its cookie",
            *session.peer_address,
            param.width,
            param.height,
            offset,
        )
        runner.calculation = Calculation(param, offset, self.config, self._clock())
        return runner

    async def _read_loop(self, runner: _Runner) -> None:
        """Every further message must be a Parameter message (it restarts the job)."""
        try:
            while True:
                message = await runner.session.read_message()
                try:
                    decoded = decode_fgp(message.data)
                    if not isinstance(decoded, FgpParameter):
                        raise ValueError("a pool element accepts only Parameter messages")
                    validate_parameter_for_pe(decoded)
                except (ProtocolError, ValueError) as exc:
                    log.warning(
                        "bad FGP message from %s:%d: %s; aborting the session",
                        *runner.session.peer_address,
                        exc,
                    )
                    runner.session.abort()
                    break
                await runner.queue.put(decoded)
        except SessionClosed:
            pass
        await runner.queue.put(None)

    async def _next_job(self, runner: _Runner) -> FgpParameter | None:
        """The next Parameter message, or None at the end of the session or on stop."""
        stop, _ = self._events()
        if stop.is_set():
            return None
        getter = asyncio.ensure_future(runner.queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def _serve(self, runner: _Runner) -> None:
        if runner.calculation is None:
            param = await self._next_job(runner)
            if param is None:
                return
            runner.calculation = Calculation(param, 0, self.config, self._clock())
        while True:
            calc = runner.calculation
            assert calc is not None
            self.counters.calculations += 1
            log.info(
                "session from %s:%d: %dx%d rectangle, algorithm %d, %d iterations, from pixel %d",
                *runner.session.peer_address,
                calc.param.width,
                calc.param.height,
                calc.param.algorithm,
                calc.param.max_iterations,
                calc.start_position,
            )
            restart = await self._calculate(runner, calc)
            if restart is None:
                param = await self._next_job(runner)
                if param is None:
                    if self._stopping:
                        await runner.session.close()
                    return
            else:
                param = restart
            runner.calculation = Calculation(param, 0, self.config, self._clock())

    async def _calculate(self, runner: _Runner, calc: Calculation) -> FgpParameter | None:
        """Run ``calc`` to its end; returns a new Parameter message if one interrupted it."""
        session = runner.session
        await self._perform(runner, calc.start(self._clock()))
        compute_param = calc.compute_parameters
        while (span := calc.next_span()) is not None:
            if not runner.queue.empty():
                new = runner.queue.get_nowait()
                if new is None:
                    raise _SessionEnded
                log.info("new Parameter message from %s:%d: restarting", *session.peer_address)
                return new
            if self._stopping:
                self.counters.handed_over += 1
                await self._perform(runner, calc.shutdown(self._clock()))
                return None
            started = time.perf_counter()
            values = await asyncio.to_thread(
                compute_span, compute_param, span[0], span[1], kernel=self.config.kernel
            )
            elapsed = time.perf_counter() - started
            await self._perform(runner, calc.add_values(values, elapsed, self._clock()))
            session.status_text = (
                f"{calc.param.width}x{calc.param.height}: {round(100 * calc.progress)}%"
            )
            if self.config.block_delay > 0:
                await self._pause(self.config.block_delay)
        if self._stopping and not calc.ended:
            await self._perform(runner, calc.shutdown(self._clock()))
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once for a clean stop."""
        stop, _ = self._events()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _perform(self, runner: _Runner, outputs: list[Output]) -> None:
        session = runner.session
        timeout = self.config.transmit_timeout
        try:
            for out in outputs:
                if isinstance(out, SendData):
                    await asyncio.wait_for(session.write(out.payload, ppid=FGP_PPID), timeout)
                    if out.points:
                        self.counters.data_messages += 1
                elif isinstance(out, SendCookie):
                    await asyncio.wait_for(session.send_cookie(out.state), timeout)
                    self.counters.cookies += 1
                elif isinstance(out, EndSession):
                    if out.reason.startswith("failure mode"):
                        self.counters.deliberate_failures += 1
                    log.info("ending session from %s:%d: %s", *session.peer_address, out.reason)
                    await session.close()
                    raise _SessionEnded
                else:
                    self.counters.completed += 1
                    log.info("session from %s:%d: rectangle complete", *session.peer_address)
        except TimeoutError:
            log.warning(
                "session from %s:%d: transmit timeout (%.1f s); aborting",
                *session.peer_address,
                timeout,
            )
            session.abort()
            raise _SessionEnded from None
        except SessionClosed:
            raise _SessionEnded from None
