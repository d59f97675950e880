"""The TCP mapping on asyncio: one DATA record per message, application heartbeats.

``TcpMappingChannel`` is an ``asyncio.BufferedProtocol``; all framing lives in
:mod:`rsplib.wire.tcpmap`, this module only moves bytes, keeps the heartbeat
timer and applies back-pressure in both directions. What a peer can make us
hold is bounded: records by size and by the time they take to arrive, the
send queue per channel, and (with a :class:`~rsplib.transport.budget.BufferBudget`)
all channels' buffers together. Optionally every connection runs over TLS
with mutual certificates (:mod:`rsplib.transport.tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence

from rsplib.trace.tracer import TRACER
from rsplib.transport.acceptor import Admission, TcpAcceptor, open_listeners
from rsplib.transport.budget import BufferBudget
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
from rsplib.transport.peerlog import peer_problem
from rsplib.transport.sockopts import apply_tcp_options, set_reset_on_close
from rsplib.transport.supervisor import ChannelSupervisor
from rsplib.transport.tls import HANDSHAKE_TIMEOUT, TlsConfig
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


class TcpMappingChannel(asyncio.BufferedProtocol):
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
        budget: BufferBudget | None = None,
    ) -> None:
        self._heartbeat = heartbeat
        self._tcp_options = tcp_options
        self._limits = limits
        self._on_open = on_open
        self._on_lost = on_lost
        self._budget = budget
        self.peer_address: tuple[str, int] = ("", 0)
        self.local_address: tuple[str, int] = ("", 0)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._decoder = RecordDecoder(limits.max_record)
        # The transport reads into this buffer, at most read_size bytes at a time.
        self._read_buffer = bytearray(limits.read_size)
        self._read_view = memoryview(self._read_buffer)
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._rx_ready = asyncio.Event()
        #: Reading stops while received messages pile up, or while the peer does not read.
        self._reading_paused = False
        self._rx_full = False
        self._write_paused = False
        #: When the unfinished record at the head of the stream began (None: no partial).
        self._partial_since: float | None = None
        #: Send-queue size when writing last made progress, and when that was.
        self._stall_size = 0
        self._stall_since = 0.0
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reason: str | None = None
        self._kind: CloseKind | None = None
        self._lost = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0
        self._last_hb_tx = 0.0
        self._hb_counter = 0
        #: Heartbeat requests we may still answer now (refilled at max_heartbeat_rate).
        self._hb_allowance = limits.max_heartbeat_rate
        self._hb_seen = self._loop.time()
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

    async def wait_writable(self) -> None:
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
        if self._rx_full and not self._receive_full(half=True):
            self._rx_full = False
            self._update_reading()
            self._account()
        return ppid, payload

    def peer_addresses(self) -> list[tuple[str, int]]:
        return [] if self.closed else [self.peer_address]

    def abort(self) -> None:
        self._set_closed("aborted locally", CloseKind.LOCAL)
        self._pending.clear()
        self._pending_bytes = 0
        if self._budget is not None:
            self._budget.release(self)
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

    # -- asyncio.BufferedProtocol -------------------------------------------

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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._reason is not None:
            return
        # Any byte counts as a sign of life: a large record may take longer
        # than one heartbeat interval to arrive completely.
        now = self._last_rx = self._loop.time()
        try:
            records = self._decoder.feed(data)
        except FramingError as exc:
            self._fail(f"framing error: {exc}", "TCP-mapping framing error", CloseKind.PROTOCOL)
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
                if not self._heartbeat_allowed(now):
                    self._fail(
                        f"more than {self._limits.max_heartbeat_rate:g} heartbeat requests/s",
                        "heartbeat request flood",
                        CloseKind.PROTOCOL,
                    )
                    return
                ack = heartbeat_ack(record)
                try:
                    self._write(ack.type, ack.ppid, ack.payload)
                except ChannelClosed:
                    return  # closed for not reading; already logged
        if self._decoder.pending:
            if self._partial_since is None or records:
                self._partial_since = now
            elif now - self._partial_since > self._limits.record_deadline:
                self._fail(
                    f"record not completed within {self._limits.record_deadline:g} s",
                    "peer trickles an incomplete record",
                    CloseKind.TIMEOUT,
                )
                return
        else:
            self._partial_since = None
        if self._queue:
            self._rx_ready.set()
            if not self._rx_full and self._receive_full(half=False):
                self._rx_full = True
                self._update_reading()
        self._account()

    def eof_received(self) -> bool:
        self._set_closed("connection closed by peer (EOF)", CloseKind.EOF)
        return False  # let the transport close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._set_closed("connection closed by peer (EOF)", CloseKind.EOF)
        else:
            self._set_closed(f"connection lost: {exc}", kind_of_error(exc))
        if self._budget is not None:
            self._budget.release(self)
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
        self._stall_size = self._send_queue_size()
        self._stall_since = self._loop.time()
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()
        self._wake_drain_waiters()

    # -- internals -----------------------------------------------------------

    def _fail(self, reason: str, what: str, kind: CloseKind) -> None:
        """Close at once because of the peer's behaviour (one WARNING, no traceback)."""
        peer_problem(
            logging.WARNING,
            self.peer_address[0],
            what,
            "%s from %s:%d, closing connection: %s",
            what,
            *self.peer_address,
            reason,
        )
        self._set_closed(reason, kind)
        self.abort()

    def _heartbeat_allowed(self, now: float) -> bool:
        rate = self._limits.max_heartbeat_rate
        self._hb_allowance = min(rate, self._hb_allowance + (now - self._hb_seen) * rate)
        self._hb_seen = now
        if self._hb_allowance < 1.0:
            return False
        self._hb_allowance -= 1.0
        return True

    def _update_reading(self) -> None:
        """Read while neither our receive queue is full nor the peer leaves our data unread.

        Not reading a peer that does not read stops it from making us queue answers
        (heartbeat acks, responses) faster than it takes them.
        """
        paused = self._rx_full or (self._write_paused and self._limits.pause_reading_while_blocked)
        transport = self._transport
        if paused == self._reading_paused or transport is None or transport.is_closing():
            return
        self._reading_paused = paused
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _send_queue_size(self) -> int:
        transport = self._transport
        size = self._pending_bytes
        if transport is not None:
            size += transport.get_write_buffer_size()
        return size

    def _account(self) -> None:
        """Tell the budget what this channel holds (partial record, queues)."""
        if self._budget is not None and self._reason is None:
            self._budget.update(
                self,
                self._decoder.pending + self._queued_bytes + self._send_queue_size(),
            )

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
            self._fail(
                f"send queue of {transport.get_write_buffer_size()} bytes exceeds "
                f"{self._limits.send_nowait_limit}",
                "peer does not read",
                CloseKind.OVERFLOW,
            )
            raise self._closed_error("send queue overflow")

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            self._account()

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
        if self._write_paused:
            size = self._send_queue_size()
            if size < self._stall_size:
                # It reads (slowly): alive, although we do not read it meanwhile.
                self._stall_size, self._stall_since = size, now
                self._last_rx = now
            elif now - self._stall_since >= hb.timeout:
                self._fail(
                    f"nothing of {size} queued bytes read for {now - self._stall_since:.1f} s",
                    "peer does not read",
                    CloseKind.OVERFLOW,
                )
                return
        if self._rx_full:
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
    """Listening TCP socket(s); runs ``handler`` once per accepted channel.

    Connections beyond ``max_connections`` in total or ``max_per_host`` from one source
    host, or beyond ``max_rate_per_host`` new ones per second, are reset right after
    accept. With ``tls`` every connection must complete a TLS handshake with a
    certificate from the configured CA first.
    """

    transport_name = TCP_MAPPING

    def __init__(
        self,
        handler: ChannelHandler,
        *,
        heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
        tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
        limits: FlowLimits = DEFAULT_LIMITS,
        max_connections: int | None = None,
        max_per_host: int | None = None,
        max_rate_per_host: float | None = None,
        tls: TlsConfig | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        self._heartbeat = heartbeat
        self._tcp_options = tcp_options
        self._limits = limits
        self._tls = tls
        self._budget = budget
        self._supervisor = ChannelSupervisor(handler)
        self.admission = Admission(max_connections, max_per_host, max_rate_per_host)
        self._listeners: list[socket.socket] = []
        self._acceptors: list[TcpAcceptor] = []
        self._attaching: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self, host: str | Sequence[str] | None, port: int) -> None:
        if not (host is None or isinstance(host, str)) and len(host) > 1 and port == 0:
            raise ValueError("the TCP mapping listens on several addresses only with a fixed port")
        self._listeners = await open_listeners(host, port)
        # Names first: a closed acceptor closes its socket.
        self._addresses = [host_port(s.getsockname()) for s in self._listeners]
        kind = "TLS" if self._tls is not None else "TCP-mapping"
        self._acceptors = [
            TcpAcceptor(sock, self.admission, self._accepted, kind) for sock in self._listeners
        ]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return list(getattr(self, "_addresses", []))

    @property
    def connection_count(self) -> int:
        return len(self._supervisor.channels)

    def close(self) -> None:
        self._closed = True
        for acceptor in self._acceptors:
            acceptor.close()
        for task in list(self._attaching):
            task.cancel()
        self._supervisor.abort_all()

    async def wait_closed(self) -> None:
        if self._attaching:
            await asyncio.gather(*list(self._attaching), return_exceptions=True)
        await self._supervisor.wait_idle()

    def _accepted(self, sock: socket.socket, host: str) -> None:
        task = asyncio.get_running_loop().create_task(self._attach(sock, host))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, sock: socket.socket, host: str) -> None:
        """Wrap an accepted socket in a channel (after the TLS handshake, with TLS)."""
        loop = asyncio.get_running_loop()

        def factory() -> TcpMappingChannel:
            return TcpMappingChannel(
                heartbeat=self._heartbeat,
                tcp_options=self._tcp_options,
                limits=self._limits,
                on_open=self._supervisor.admit,
                on_lost=lambda channel: self._lost(channel, host),
                budget=self._budget,
            )

        try:
            if self._tls is None:
                await loop.connect_accepted_socket(factory, sock)
            else:
                await loop.connect_accepted_socket(
                    factory,
                    sock,
                    ssl=self._tls.server_context(),
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
        except asyncio.CancelledError:
            self.admission.release(host)
            sock.close()
            raise
        except (OSError, ConnectionError, TimeoutError) as exc:
            # A TLS peer without an acceptable certificate, or one that gave up.
            self.admission.release(host)
            sock.close()
            _log_refused_handshake(host, exc)

    def _lost(self, channel: TcpMappingChannel, host: str) -> None:
        self._supervisor.forget(channel)
        self.admission.release(host)


def _log_refused_handshake(host: str, exc: BaseException) -> None:
    """A peer that cannot prove pool membership is refused (logged once in a while)."""
    peer_problem(
        logging.WARNING,
        host,
        "tls",
        "connection from %s refused: TLS handshake failed (%s)",
        host,
        exc,
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
    tls: TlsConfig | None = None,
) -> TcpMappingChannel:
    """Open a TCP-mapping channel; raises OSError (TimeoutError included; with TLS an
    ``ssl.SSLError``, also an OSError, when the server's certificate is not acceptable)."""
    loop = asyncio.get_running_loop()

    def factory() -> TcpMappingChannel:
        return TcpMappingChannel(heartbeat=heartbeat, tcp_options=tcp_options, limits=limits)

    if tls is None:
        connecting = loop.create_connection(factory, host, port, local_addr=local_address)
    else:
        connecting = loop.create_connection(
            factory,
            host,
            port,
            local_addr=local_address,
            ssl=tls.client_context(),
            server_hostname=host,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )
    _transport, channel = await asyncio.wait_for(connecting, timeout)
    return channel
