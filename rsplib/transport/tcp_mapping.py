"""The TCP mapping on asyncio: one DATA record per message, application heartbeats.

``TcpMappingChannel`` is an ``asyncio.Protocol``; all framing lives in
:mod:`rsplib.wire.tcpmap`, this module only moves bytes, keeps the heartbeat
timer and applies back-pressure in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Callable, Sequence

from rsplib.trace.tracer import TRACER
from rsplib.transport.channel import (
    DEFAULT_HEARTBEAT,
    DEFAULT_LIMITS,
    DEFAULT_TCP_OPTIONS,
    TCP_MAPPING,
    ChannelClosed,
    ChannelHandler,
    CloseKind,
    FlowLimits,
    HeartbeatConfig,
    TcpOptions,
    host_port,
    kind_of_error,
)
from rsplib.transport.sockopts import apply_tcp_options, set_reset_on_close
from rsplib.transport.supervisor import ChannelSupervisor
from rsplib.wire.tcpmap import (
    HEADER_SIZE,
    FramingError,
    RecordDecoder,
    RecordType,
    encode_header,
    heartbeat_ack,
    heartbeat_request,
)

logger = logging.getLogger("rsplib.transport")

CLOSE_FLUSH_TIMEOUT = 2.0
# Records written during one event-loop iteration go to the kernel in one write (see
# _write); beyond this many pending bytes they are handed over at once.
COALESCE_LIMIT = 64 * 1024

_HEARTBEAT_OPAQUE = struct.Struct("!Q")


class TcpMappingChannel(asyncio.Protocol):
    """A :class:`~rsplib.transport.channel.MessageChannel` over one TCP connection."""

    transport_name = TCP_MAPPING

    def __init__(
        self,
        *,
        heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
        tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
        limits: FlowLimits = DEFAULT_LIMITS,
        on_open: Callable[[TcpMappingChannel], object] | None = None,
        on_lost: Callable[[TcpMappingChannel], object] | None = None,
    ) -> None:
        self._heartbeat = heartbeat
        self._tcp_options = tcp_options
        self._limits = limits
        self._on_open = on_open
        self._on_lost = on_lost
        self.peer_address: tuple[str, int] = ("", 0)
        self.local_address: tuple[str, int] = ("", 0)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = RecordDecoder()
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._rx_ready = asyncio.Event()
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reason: str | None = None
        self._kind: CloseKind | None = None
        self._lost = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0
        self._last_hb_tx = 0.0
        self._hb_counter = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    # -- MessageChannel ---------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._reason is not None

    @property
    def close_reason(self) -> str | None:
        return self._reason

    @property
    def close_kind(self) -> CloseKind | None:
        return self._kind

    def _closed_error(self, fallback: str = "not connected") -> ChannelClosed:
        return ChannelClosed(self._reason or fallback, self._kind or CloseKind.LOCAL)

    async def send(self, ppid: int, payload: bytes) -> None:
        if self._write_paused:
            await self._drain()
        self.send_nowait(ppid, payload)
        if self._write_paused:
            await self._drain()

    def send_nowait(self, ppid: int, payload: bytes) -> None:
        self._write(RecordType.DATA, ppid, payload)
        if TRACER.on:
            TRACER.message("tx", ppid, payload, self.local_address, self.peer_address)

    async def receive(self) -> tuple[int, bytes]:
        while not self._queue:
            if self._reason is not None:
                raise self._closed_error()
            self._rx_ready.clear()
            await self._rx_ready.wait()
        ppid, payload = self._queue.popleft()
        self._queued_bytes -= len(payload)
        if self._reading_paused and not self._receive_full(half=True):
            self._reading_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
        return ppid, payload

    def peer_addresses(self) -> list[tuple[str, int]]:
        return [] if self.closed else [self.peer_address]

    def abort(self) -> None:
        self._set_closed("aborted locally", CloseKind.LOCAL)
        self._pending.clear()
        self._pending_bytes = 0
        transport = self._transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                set_reset_on_close(sock)
        transport.abort()

    async def close(self) -> None:
        self._flush()  # what was sent before close() still goes out
        self._set_closed("closed locally", CloseKind.LOCAL)
        if self._transport is None:
            return
        self._transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), CLOSE_FLUSH_TIMEOUT)
        except TimeoutError:
            self.abort()

    def get_extra_info(self, name: str, default: object = None) -> object:
        """Pass-through to the asyncio transport ("socket", "peername", ...)."""
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    async def wait_lost(self) -> None:
        """Wait until the underlying connection is gone."""
        await asyncio.shield(self._lost)

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.peer_address = host_port(transport.get_extra_info("peername"))
        self.local_address = host_port(transport.get_extra_info("sockname"))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            apply_tcp_options(sock, self._tcp_options)
        transport.set_write_buffer_limits(self._limits.write_high, self._limits.write_low)
        self._last_rx = self._last_hb_tx = self._loop.time()
        if self._on_open is not None:
            self._on_open(self)
        if self._reason is None:
            self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self._reason is not None:
            return
        # Any byte counts as a sign of life: a large record may take longer
        # than one heartbeat interval to arrive completely.
        self._last_rx = self._loop.time()
        try:
            records = self._decoder.feed(data)
        except FramingError as exc:
            logger.warning(
                "TCP-mapping framing error from %s:%d, closing connection: %s",
                *self.peer_address,
                exc,
            )
            self._set_closed(f"framing error: {exc}", CloseKind.PROTOCOL)
            self.abort()
            return
        for record in records:
            if record.type is RecordType.DATA:
                self._queue.append((record.ppid, record.payload))
                self._queued_bytes += len(record.payload)
                if TRACER.on:
                    TRACER.message(
                        "rx", record.ppid, record.payload, self.local_address, self.peer_address
                    )
            elif record.type is RecordType.HEARTBEAT_REQUEST:
                ack = heartbeat_ack(record)
                self._write(ack.type, ack.ppid, ack.payload)
        if self._queue:
            self._rx_ready.set()
            if not self._reading_paused and self._receive_full(half=False):
                self._reading_paused = True
                assert self._transport is not None
                self._transport.pause_reading()

    def eof_received(self) -> bool:
        self._set_closed("connection closed by peer (EOF)", CloseKind.EOF)
        return False  # let the transport close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._set_closed("connection closed by peer (EOF)", CloseKind.EOF)
        else:
            self._set_closed(f"connection lost: {exc}", kind_of_error(exc))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_drain_waiters()
        self._rx_ready.set()
        if not self._lost.done():
            self._lost.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain_waiters()

    # -- internals -----------------------------------------------------------

    def _receive_full(self, *, half: bool) -> bool:
        divisor = 2 if half else 1
        return (
            len(self._queue) >= self._limits.receive_messages // divisor
            or self._queued_bytes >= self._limits.receive_bytes // divisor
        )

    def _set_closed(self, reason: str, kind: CloseKind) -> None:
        # The first reason wins; later ones are consequences of it.
        if self._reason is None:
            self._reason = reason
            self._kind = kind
            self._rx_ready.set()
            self._wake_drain_waiters()

    def _write(self, record_type: RecordType, ppid: int, payload: bytes) -> None:
        transport = self._transport
        if self._reason is not None or transport is None or transport.is_closing():
            raise self._closed_error()
        # Coalesce: a registrar answering a pipelined burst writes many small records in one
        # loop iteration; one write (one send syscall) for all of them instead of one each
        # roughly halves its cost per message on loopback. Flushed at the end of the
        # iteration, or at once past COALESCE_LIMIT so back-pressure still works.
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(encode_header(record_type, ppid, len(payload)))
        self._pending.append(payload)
        self._pending_bytes += HEADER_SIZE + len(payload)
        if self._pending_bytes >= COALESCE_LIMIT:
            self._flush()
        if transport.get_write_buffer_size() > self._limits.send_nowait_limit:
            logger.warning(
                "peer %s:%d does not read; %d bytes queued, closing connection",
                *self.peer_address,
                transport.get_write_buffer_size(),
            )
            self._set_closed("send buffer overflow (peer does not read)", CloseKind.OVERFLOW)
            self.abort()
            raise self._closed_error("send buffer overflow")

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def _drain(self) -> None:
        while self._write_paused:
            if self._reason is not None:
                raise self._closed_error()
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._drain_waiters.remove(waiter)
        if self._reason is not None:
            raise self._closed_error()

    def _wake_drain_waiters(self) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _arm_timer(self) -> None:
        hb = self._heartbeat
        if not hb.enabled:
            return
        deadline = min(
            self._last_rx + hb.timeout,
            max(self._last_rx, self._last_hb_tx) + hb.interval,
        )
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._reason is not None:
            return
        hb = self._heartbeat
        now = self._loop.time()
        if self._reading_paused:
            # The peer is sending faster than we consume; it is alive.
            self._last_rx = now
        silent = now - self._last_rx
        if silent >= hb.timeout:
            logger.info(
                "no record from %s:%d for %.1f s, closing connection", *self.peer_address, silent
            )
            self._set_closed("heartbeat timeout", CloseKind.TIMEOUT)
            self.abort()
            return
        if silent >= hb.interval and now - self._last_hb_tx >= hb.interval:
            self._hb_counter += 1
            request = heartbeat_request(_HEARTBEAT_OPAQUE.pack(self._hb_counter))
            self._last_hb_tx = now
            with contextlib.suppress(ChannelClosed):
                self._write(request.type, request.ppid, request.payload)
            if self._reason is not None:
                return
        self._arm_timer()


class TcpMappingServer:
    """Listening TCP socket; runs ``handler`` once per accepted channel."""

    transport_name = TCP_MAPPING

    def __init__(
        self,
        handler: ChannelHandler,
        *,
        heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
        tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
        limits: FlowLimits = DEFAULT_LIMITS,
        max_connections: int | None = None,
    ) -> None:
        self._heartbeat = heartbeat
        self._tcp_options = tcp_options
        self._limits = limits
        self._supervisor = ChannelSupervisor(handler, max_connections)
        self._server: asyncio.Server | None = None

    async def start(self, host: str | Sequence[str] | None, port: int) -> None:
        if not (host is None or isinstance(host, str)) and len(host) > 1 and port == 0:
            raise ValueError("the TCP mapping listens on several addresses only with a fixed port")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_channel, host, port)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [host_port(s.getsockname()) for s in self._server.sockets]

    @property
    def connection_count(self) -> int:
        return len(self._supervisor.channels)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._supervisor.abort_all()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()
        await self._supervisor.wait_idle()

    def _make_channel(self) -> TcpMappingChannel:
        return TcpMappingChannel(
            heartbeat=self._heartbeat,
            tcp_options=self._tcp_options,
            limits=self._limits,
            on_open=self._supervisor.admit,
            on_lost=self._supervisor.forget,
        )


async def connect_tcp_mapping(
    host: str,
    port: int,
    *,
    heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
    tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
    limits: FlowLimits = DEFAULT_LIMITS,
    timeout: float = 5.0,
    local_address: tuple[str, int] | None = None,
) -> TcpMappingChannel:
    """Open a TCP-mapping channel; raises OSError (TimeoutError included)."""
    loop = asyncio.get_running_loop()

    def factory() -> TcpMappingChannel:
        return TcpMappingChannel(heartbeat=heartbeat, tcp_options=tcp_options, limits=limits)

    _transport, channel = await asyncio.wait_for(
        loop.create_connection(factory, host, port, local_addr=local_address), timeout
    )
    return channel
