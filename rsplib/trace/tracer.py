"""The process's tracer: turns messages and events into records and hands out datagrams.

One tracer per process (:data:`TRACER`), off until :func:`rsplib.trace.start_trace` turns
it on; a component (registrar, PE, PU) is one process, so "the process" and "the
component" are the same thing. The transports call :meth:`Tracer.message` for every
message they send or receive, guarded by ``if TRACER.on`` so tracing costs one attribute
test when it is off. When it is on, the rate limit is asked first, so past the rate a
message costs a counter increment and is never decoded.

Records are packed into datagrams by :class:`~rsplib.trace.buffer.TraceBuffer`. A full
datagram goes out at once; the rest leaves ``FLUSH_DELAY`` later from the asyncio loop of
the calling thread (or of the thread that started the tracer), so a quiet component still
delivers its last records promptly. The output callable never blocks (a non-blocking UDP
socket): a refused datagram counts as dropped records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from rsplib.trace.buffer import TraceBuffer
from rsplib.trace.record import (
    MAX_DATAGRAM,
    MAX_RAW_BYTES,
    RX,
    TX,
    EventRecord,
    MessageRecord,
    TraceRecord,
    encode_record,
)
from rsplib.trace.summary import scalar_fields, summarize

log = logging.getLogger("rsplib.trace")

FLUSH_DELAY: Final = 0.02

#: Sends one datagram; False if it was refused (the records count as dropped).
DatagramOutput = Callable[[bytes], bool]
Clock = Callable[[], float]
Address = tuple[str, int]


def format_address(address: Address | tuple[object, ...] | None) -> str:
    """``host:port`` (IPv6 hosts in brackets); ``"?"`` if unknown."""
    if not address or len(address) < 2:
        return "?"
    host, port = str(address[0]), address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


class Tracer:
    """Builds trace records and queues them for one output (see the module docstring)."""

    __slots__ = (
        "_buffer",
        "_clock",
        "_flush_scheduled",
        "_lock",
        "_loop",
        "_output",
        "_refused",
        "_warned",
        "component",
        "on",
        "raw",
    )

    def __init__(self) -> None:
        self.on = False
        self.component = 0
        self.raw = False
        self._buffer = TraceBuffer()
        self._lock = threading.Lock()
        self._output: DatagramOutput | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False
        self._clock: Clock = time.time
        self._warned = False
        self._refused = 0

    @property
    def buffer(self) -> TraceBuffer:
        return self._buffer

    def start(
        self,
        output: DatagramOutput,
        *,
        buffer: TraceBuffer | None = None,
        raw: bool = False,
        clock: Clock = time.time,
    ) -> None:
        """Trace from now on into ``output``; replaces an earlier output."""
        with self._lock:
            self._output = output
            self._buffer = buffer if buffer is not None else TraceBuffer()
            self.raw = raw
            self._clock = clock
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
            self._flush_scheduled = False
            self.on = True

    def stop(self) -> None:
        """Send what is queued and turn tracing off."""
        self.flush()
        with self._lock:
            self.on = False
            self._output = None
            self._loop = None

    def identify(self, component: int) -> None:
        """The CSP component id (64 bits) that the records carry in ``"c"``."""
        self.component = component & 0xFFFF_FFFF_FFFF_FFFF

    # ------------------------------------------------------------------ records

    def message(
        self, direction: str, ppid: int, payload: bytes, local: Address, peer: Address
    ) -> None:
        """Trace one message sent (``"tx"``) or received (``"rx"``) on a connection."""
        now = self._clock()
        if now < self._buffer.closed_until:
            # Past the rate: count it and leave, without the lock (a flood of messages
            # costs this much each). With several tracing threads a count may be lost.
            self._refused += 1
            return
        seq = self._admit(now)
        if seq is None:
            return
        try:
            summary = summarize(ppid, payload)
            record = MessageRecord(
                time=now,
                component=self.component,
                seq=seq,
                direction=TX if direction == TX else RX,
                peer=format_address(peer),
                local=format_address(local),
                proto=summary.proto,
                type=summary.type,
                flags=summary.flags,
                length=len(payload),
                pool_handle=summary.pool_handle,
                pe=summary.pe,
                fields=summary.fields,
                raw=payload[:MAX_RAW_BYTES] if self.raw else None,
            )
            line = encode_record(record)
            if len(line) >= MAX_DATAGRAM and record.raw is not None:
                line = encode_record(dataclasses.replace(record, raw=None))
        except Exception:
            self._warn_once("cannot build a trace record for a message")
            return
        self._queue(line)

    def event(self, event_type: str, fields: Mapping[str, object]) -> None:
        """Trace one component event (see :func:`rsplib.trace.emit_event`)."""
        now = self._clock()
        seq = self._admit(now, event=True)
        if seq is None:
            return
        try:
            record: TraceRecord = EventRecord(
                time=now,
                component=self.component,
                seq=seq,
                type=event_type,
                fields=scalar_fields(dict(fields)),
            )
            line = encode_record(record)
        except Exception:
            self._warn_once(f"cannot build a trace record for event {event_type!r}")
            return
        self._queue(line)

    def _admit(self, now: float, *, event: bool = False) -> int | None:
        with self._lock:
            refused, self._refused = self._refused, 0
            if refused:
                self._buffer.skip(refused)
            return self._buffer.admit_event(now) if event else self._buffer.admit(now)

    # ------------------------------------------------------------------ sending

    def flush(self) -> None:
        """Send every queued record now."""
        with self._lock:
            refused, self._refused = self._refused, 0
            if refused:
                self._buffer.skip(refused)
            self._flush_scheduled = False
            self._send(self._buffer.pop_datagrams())

    def _queue(self, line: bytes) -> None:
        with self._lock:
            if not self.on:
                return
            self._buffer.push(line)
            if self._buffer.full_datagram_ready():
                self._send(self._buffer.pop_datagrams(only_full=True))
            if self._flush_scheduled or not len(self._buffer):
                return
            self._flush_scheduled = True
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        try:
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
            return
        except RuntimeError:
            pass
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.call_later, FLUSH_DELAY, self.flush)
                return
            except RuntimeError:
                pass  # closed meanwhile
        self.flush()  # no loop to wait on: send at once

    def _send(self, datagrams: list[bytes]) -> None:
        output = self._output
        for datagram in datagrams:
            if output is None or not output(datagram):
                self._buffer.lost_in_send(datagram)

    def _warn_once(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.exception("%s (further trace problems are not logged)", text)


#: The process's tracer (off until started).
TRACER: Final = Tracer()
