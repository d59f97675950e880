"""Kernel SCTP on asyncio: one-to-one style sockets, one message per SCTP message.

Uses the plain ``socket`` module (``sendmsg``/``recvmsg`` with the RFC 6458
SCTP_SNDINFO / SCTP_RCVINFO ancillary data) driven by the event loop's
``add_reader``/``add_writer``, so nothing blocks the loop.

PPID byte order: the kernel passes ``snd_ppid``/``rcv_ppid`` through untouched
(it is opaque to SCTP), so the field must hold the PPID in network byte order.
:func:`pack_sndinfo` and :func:`unpack_rcvinfo` do that conversion. (pysctp's
``sctp_send`` byte-swaps the value itself, while the ``ppid`` it reports for
received messages is the raw field; code mixing both would have to know that.)

Heartbeats come from SCTP itself; :func:`peer_addr_params` asks the kernel to
use the channel's heartbeat interval and ``misses`` as path retransmission
limit, and retransmission timeouts stay within one interval (best effort: an
older kernel that refuses an option keeps its defaults). The peer's *kernel*
answers SCTP heartbeats, so they find a lost host or association, never a
stopped (SIGSTOP) process: that is the application's receive timeout's job.

The channel subscribes to association, path and shutdown notifications: a lost
or shut-down association closes it with the kernel's reason, and path changes
of a multi-homed peer are logged and kept in :attr:`SctpChannel.path_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rsplib.trace.tracer import TRACER
from rsplib.transport.acceptor import ACCEPT_PAUSE, RESOURCE_ERRNOS, Admission
from rsplib.transport.channel import (
    DEFAULT_HEARTBEAT,
    DEFAULT_LIMITS,
    SCTP,
    ChannelClosed,
    ChannelHandler,
    CloseKind,
    FlowLimits,
    HeartbeatConfig,
    host_port,
    kind_of_error,
)
from rsplib.transport.sctp_events import (
    SCTP_ASSOCINFO,
    SCTP_EVENT,
    SCTP_GET_PEER_ADDRS,
    SCTP_RTOINFO,
    SCTP_SOCKOPT_BINDX_ADD,
    SUBSCRIBED_EVENTS,
    AssocChange,
    PathChange,
    PeerShutdown,
    assoc_params,
    decode_address_list,
    decode_notification,
    encode_sockaddr,
    event_subscription,
    rto_info,
)
from rsplib.transport.sockopts import set_reset_on_close
from rsplib.transport.supervisor import ChannelSupervisor

logger = logging.getLogger("rsplib.transport")

# Linux <netinet/sctp.h> / <linux/sctp.h> values (the socket module lacks most).
IPPROTO_SCTP = 132
SOL_SCTP = 132
SCTP_NODELAY = 3
SCTP_PEER_ADDR_PARAMS = 9
SCTP_RECVRCVINFO = 32
# cmsg types
SCTP_SNDINFO = 2
SCTP_RCVINFO = 3
MSG_NOTIFICATION = 0x8000
SPP_HB_ENABLE = 1
# <asm-generic/socket.h>: like SO_SNDBUF/SO_RCVBUF, but past net.core.[wr]mem_max
# (needs CAP_NET_ADMIN). The socket module does not name them.
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

SNDINFO = struct.Struct("=HH4sIi")  # sid, flags, ppid (network order), context, assoc_id
RCVINFO = struct.Struct("=HHH2x4sIIIi")  # sid, ssn, flags, ppid, tsn, cumtsn, context, assoc
# struct sctp_paddrparams is packed: assoc_id, sockaddr_storage, hbinterval, pathmaxrxt,
# pathmtu, sackdelay, flags. Kernels accept this length (without the later flow-label
# and DSCP fields) as well as the full one.
PADDRPARAMS = struct.Struct("=i128sIHIII2x")

SOCKET_BUFFER = 4 * 1024 * 1024  # room for the largest messages (1 MB) several times
PATH_EVENTS_KEPT = 64
RECV_CHUNK = 256 * 1024
CLOSE_FLUSH_TIMEOUT = 2.0
#: Messages queued in one event-loop iteration go out together (see ``_flush``), up to
#: this many bytes; more is sent at once.
COALESCE_LIMIT = 64 * 1024
# Plain ints: ``flags & socket.MSG_EOR`` would build an enum member per message.
_MSG_EOR = int(socket.MSG_EOR)
_MSG_MORE = int(getattr(socket, "MSG_MORE", 0x8000))
_RCVINFO_SPACE = socket.CMSG_SPACE(RCVINFO.size)
_buffers = threading.local()


def _receive_buffer() -> tuple[bytearray, memoryview]:
    """This thread's receive buffer: ``recvmsg`` would allocate (and for this size, map
    and unmap) a fresh RECV_CHUNK bytes object per message."""
    found: tuple[bytearray, memoryview] | None = getattr(_buffers, "pair", None)
    if found is None:
        buffer = bytearray(RECV_CHUNK)
        found = (buffer, memoryview(buffer))
        _buffers.pair = found
    return found


#: Where sctp_rcvinfo holds the PPID (after sid, ssn, flags and padding), network order.
_RCVINFO_PPID = struct.Struct("!I")
_RCVINFO_PPID_OFFSET = 8


def ppid_to_field(ppid: int) -> bytes:
    """The 4 bytes the kernel expects in snd_ppid for protocol ``ppid``."""
    if not 0 <= ppid <= 0xFFFFFFFF:
        raise ValueError(f"PPID {ppid} does not fit in 32 bits")
    return ppid.to_bytes(4, "big")


def ppid_from_field(field: bytes) -> int:
    """Protocol number from the 4 raw bytes of rcv_ppid."""
    return int.from_bytes(field, "big")


@functools.cache
def sndinfo_cmsg(ppid: int) -> list[tuple[int, int, bytes]]:
    """The ancillary data of a message with this PPID on stream 0 (built once per PPID)."""
    return [(IPPROTO_SCTP, SCTP_SNDINFO, pack_sndinfo(ppid))]


def pack_sndinfo(ppid: int, stream: int = 0, flags: int = 0, context: int = 0) -> bytes:
    """SCTP_SNDINFO ancillary data (struct sctp_sndinfo, 16 bytes)."""
    return SNDINFO.pack(stream, flags, ppid_to_field(ppid), context, 0)


@dataclass(frozen=True)
class RcvInfo:
    stream: int
    ssn: int
    flags: int
    ppid: int
    assoc_id: int


def unpack_rcvinfo(data: bytes) -> RcvInfo:
    """Decode SCTP_RCVINFO ancillary data (struct sctp_rcvinfo, 28 bytes)."""
    sid, ssn, flags, ppid, _tsn, _cumtsn, _context, assoc = RCVINFO.unpack_from(data)
    return RcvInfo(sid, ssn, flags, ppid_from_field(ppid), assoc)


def peer_addr_params(heartbeat: HeartbeatConfig) -> bytes:
    """SCTP_PEER_ADDR_PARAMS value for all paths of the socket's associations."""
    interval_ms = max(1, round(heartbeat.interval * 1000))
    max_retransmissions = max(1, heartbeat.misses)
    return PADDRPARAMS.pack(0, bytes(128), interval_ms, max_retransmissions, 0, 0, SPP_HB_ENABLE)


@functools.cache
def sctp_available() -> bool:
    """True when this kernel can open an SCTP socket (checked once per process)."""
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    except OSError:
        return False
    probe.close()
    return True


def open_sctp_socket(family: int, heartbeat: HeartbeatConfig) -> socket.socket:
    """A non-blocking one-to-one SCTP socket with our options set."""
    sock = socket.socket(family, socket.SOCK_STREAM, IPPROTO_SCTP)
    try:
        sock.setblocking(False)
        configure_sctp_socket(sock, heartbeat)
    except BaseException:
        sock.close()
        raise
    return sock


def share_port(sock: socket.socket) -> None:
    """Let a listener and outbound associations use the same local port.

    An RSerPool endpoint talks from one port: rsplib's registrar sends and receives all
    ENRP on one one-to-many socket, and it accepts a peer's Presence only when the ENRP
    port in it is the port the association comes from. One-to-one sockets get there with
    SO_REUSEPORT on the listener and on each outbound socket bound to its port (the kernel
    still refuses a second association between the same two endpoints).
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def ensure_port_free(family: int, address: tuple[Any, ...] | str) -> None:
    """Raise OSError(EADDRINUSE) when someone listens there already.

    A listener with SO_REUSEPORT would otherwise share the port with a second process
    of the same user silently; this probe keeps "address in use" a start-up error.
    """
    probe = socket.socket(family, socket.SOCK_STREAM, IPPROTO_SCTP)
    try:
        probe.bind(address)
    finally:
        probe.close()


def configure_sctp_socket(sock: socket.socket, heartbeat: HeartbeatConfig) -> None:
    sock.setsockopt(SOL_SCTP, SCTP_RECVRCVINFO, 1)
    sock.setsockopt(SOL_SCTP, SCTP_NODELAY, 1)
    set_buffer_sizes(sock)
    options = [(SCTP_EVENT, event_subscription(kind)) for kind in SUBSCRIBED_EVENTS]
    if heartbeat.enabled:
        options += [
            (SCTP_PEER_ADDR_PARAMS, peer_addr_params(heartbeat)),
            (SCTP_RTOINFO, rto_info(heartbeat)),
            (SCTP_ASSOCINFO, assoc_params(heartbeat)),
        ]
    for option, value in options:
        try:
            sock.setsockopt(SOL_SCTP, option, value)
        except OSError as exc:
            logger.debug("kernel refused SCTP option %d: %s", option, exc)


def bind_addresses(sock: socket.socket, hosts: list[str], port: int) -> None:
    """Bind to every address of ``hosts`` (sctp_bindx): the first with bind(), the
    others added to the same endpoint, so peers get them all as paths."""
    sock.bind((hosts[0], port))
    port = sock.getsockname()[1]  # an ephemeral port is the same for every address
    if hosts[1:]:
        packed = b"".join(encode_sockaddr(host, port) for host in hosts[1:])
        sock.setsockopt(SOL_SCTP, SCTP_SOCKOPT_BINDX_ADD, packed)


def peer_addresses(sock: socket.socket) -> list[tuple[str, int]]:
    """Every address of the peer (its paths), as the kernel knows them."""
    return decode_address_list(sock.getsockopt(SOL_SCTP, SCTP_GET_PEER_ADDRS, 8 + 28 * 16))


def set_buffer_sizes(sock: socket.socket, size: int = SOCKET_BUFFER) -> None:
    """Ask for ``size``-byte socket buffers, past the sysctl caps when privileged.

    Linux SCTP refuses (EMSGSIZE) a message larger than the socket's send buffer,
    and plain SO_SNDBUF is capped by net.core.wmem_max (208 KiB by default, so
    416 KiB of buffer): without the FORCE variants a 1 MB message cannot be sent.
    """
    for forced, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, size)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, size)


class SctpChannel:
    """A MessageChannel over one connected one-to-one SCTP socket."""

    transport_name = SCTP

    def __init__(
        self,
        sock: socket.socket,
        *,
        limits: FlowLimits = DEFAULT_LIMITS,
        on_lost: Callable[[SctpChannel], object] | None = None,
    ) -> None:
        self._sock = sock
        self._limits = limits
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self.peer_address = host_port(sock.getpeername())
        self.local_address = host_port(sock.getsockname())
        self._reason: str | None = None
        self._kind: CloseKind | None = None
        self._open = True
        #: Path changes the kernel reported (multi-homed peers), newest last.
        self.path_events: deque[PathChange] = deque(maxlen=PATH_EVENTS_KEPT)
        self._rx: deque[tuple[int, bytes]] = deque()
        self._rx_bytes = 0
        self._rx_ready = asyncio.Event()
        self._partial = bytearray()
        self._tx: deque[tuple[int, bytes]] = deque()
        self._tx_bytes = 0
        self._tx_space = asyncio.Event()
        self._tx_space.set()
        self._tx_empty = asyncio.Event()
        self._tx_empty.set()
        self._reading = True
        self._writing = False
        self._flush_scheduled = False
        #: MSG_MORE for all but the last message of a burst (0 where the kernel refuses it).
        self._more = _MSG_MORE
        # The kernel reports twice the requested size and refuses larger messages.
        self._largest_message = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self._loop.add_reader(sock.fileno(), self._on_readable)

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
        await self._wait_space()
        self.send_nowait(ppid, payload)
        await self._wait_space()

    async def wait_writable(self) -> None:
        await self._wait_space()

    def send_nowait(self, ppid: int, payload: bytes) -> None:
        if self._reason is not None:
            raise self._closed_error()
        ppid_to_field(ppid)  # validate before queueing
        if not payload:
            raise ValueError("SCTP cannot carry an empty message")
        if len(payload) > self._largest_message:
            raise ValueError(
                f"a {len(payload)}-byte message exceeds this SCTP socket's send buffer "
                f"({self._largest_message} bytes; net.core.wmem_max caps it for "
                "unprivileged processes)"
            )
        self._tx.append((ppid, payload))
        self._tx_bytes += len(payload)
        if TRACER.on:
            TRACER.message("tx", ppid, payload, self.local_address, self.peer_address)
        self._tx_empty.clear()
        if self._tx_bytes > self._limits.send_nowait_limit:
            self._fail("send buffer overflow (peer does not read)", CloseKind.OVERFLOW)
            raise self._closed_error("send buffer overflow")
        if self._tx_bytes > self._limits.write_high:
            self._tx_space.clear()
        if self._writing:
            return  # the writer callback sends it when the socket has room
        if self._tx_bytes >= COALESCE_LIMIT:
            self._flush()
        elif not self._flush_scheduled:
            # Whatever else is sent in this loop iteration goes out with it (one
            # packet for a burst of small answers instead of one each).
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    async def receive(self) -> tuple[int, bytes]:
        while not self._rx:
            if self._reason is not None:
                raise self._closed_error()
            self._rx_ready.clear()
            await self._rx_ready.wait()
        ppid, payload = self._rx.popleft()
        self._rx_bytes -= len(payload)
        if not self._reading and self._open and not self._receive_full(2):
            self._reading = True
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
        return ppid, payload

    def abort(self) -> None:
        self._set_reason("aborted locally", CloseKind.LOCAL)
        if self._open:
            with contextlib.suppress(OSError):
                set_reset_on_close(self._sock)  # SO_LINGER 0: SCTP sends ABORT
            self._teardown()

    async def close(self) -> None:
        self._set_reason("closed locally", CloseKind.LOCAL)
        if not self._open:
            return
        try:
            await asyncio.wait_for(self._tx_empty.wait(), CLOSE_FLUSH_TIMEOUT)
        except TimeoutError:
            self.abort()
            return
        self._teardown()  # graceful SHUTDOWN

    # -- internals ----------------------------------------------------------

    async def _wait_space(self) -> None:
        while not self._tx_space.is_set():
            if self._reason is not None:
                raise self._closed_error()
            await self._tx_space.wait()
        if self._reason is not None:
            raise self._closed_error()

    def _receive_full(self, divisor: int = 1) -> bool:
        return (
            len(self._rx) >= self._limits.receive_messages // divisor
            or self._rx_bytes >= self._limits.receive_bytes // divisor
        )

    def _on_readable(self) -> None:
        ancillary = _RCVINFO_SPACE
        buffer, view = _receive_buffer()
        received = False
        while self._open and not self._receive_full():
            try:
                size, ancdata, flags, _addr = self._sock.recvmsg_into([buffer], ancillary)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._fail(f"connection lost: {exc}", kind_of_error(exc))
                return
            data = bytes(view[:size])
            if flags & MSG_NOTIFICATION:
                self._on_notification(data)
                continue
            if not data:
                self._fail("connection closed by peer (EOF)", CloseKind.EOF)
                return
            if not flags & _MSG_EOR:
                self._partial += data
                continue  # partial delivery of a large message
            ppid = 0
            for level, kind, value in ancdata:
                if level == IPPROTO_SCTP and kind == SCTP_RCVINFO:
                    ppid = _RCVINFO_PPID.unpack_from(value, _RCVINFO_PPID_OFFSET)[0]
            if self._partial:
                self._partial += data
                message = bytes(self._partial)
                self._partial.clear()
            else:
                message = data
            self._rx.append((ppid, message))
            self._rx_bytes += len(message)
            received = True
            if TRACER.on:
                TRACER.message("rx", ppid, message, self.local_address, self.peer_address)
        if received:
            self._rx_ready.set()
        if self._open and self._reading and self._receive_full():
            self._reading = False
            self._loop.remove_reader(self._sock.fileno())

    def peer_addresses(self) -> list[tuple[str, int]]:
        """Every address (path) of the peer; empty once the channel is closed."""
        if not self._open:
            return []
        try:
            return peer_addresses(self._sock)
        except OSError:
            return []

    def _on_notification(self, data: bytes) -> None:
        try:
            event = decode_notification(data)
        except (ValueError, struct.error) as exc:
            logger.warning("undecodable SCTP notification from %s:%d: %s", *self.peer_address, exc)
            return
        if isinstance(event, PathChange):
            self.path_events.append(event)
            logger.info(
                "SCTP path %s:%d of %s:%d: %s",
                *event.address,
                *self.peer_address,
                event.state.lower().replace("_", " "),
            )
        elif isinstance(event, AssocChange) and event.state != "COMM_UP":
            # COMM_LOST, SHUTDOWN_COMP, CANT_STR_ASSOC and RESTART (a new incarnation
            # of the peer: whatever this channel knew of it is gone) all end the channel.
            kind = CloseKind.EOF if event.state == "SHUTDOWN_COMP" else CloseKind.RESET
            self._fail(f"SCTP association ended ({event.state}, error {event.error})", kind)
        elif isinstance(event, PeerShutdown):
            # A graceful close, like EOF on TCP (the session layer tells them apart
            # from resets: a close right after a Cookie Echo refuses the cookie).
            self._set_reason("connection closed by peer (SCTP SHUTDOWN)", CloseKind.EOF)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        tx = self._tx
        while tx and self._open:
            ppid, payload = tx[0]
            # MSG_MORE lets the kernel bundle a burst into few packets; the last
            # message of the burst goes without it, which sends everything held.
            more = self._more if len(tx) > 1 else 0
            try:
                sent = self._sock.sendmsg([payload], sndinfo_cmsg(ppid), more)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if more and exc.errno == errno.EINVAL:
                    self._more = 0  # a kernel without MSG_MORE for SCTP
                    continue
                self._fail(f"connection lost: {exc}", kind_of_error(exc))
                return
            if sent != len(payload):
                # SCTP sends a message whole or not at all; anything else is a kernel surprise.
                self._fail(f"partial SCTP send ({sent} of {len(payload)} bytes)", CloseKind.RESET)
                return
            tx.popleft()
            self._tx_bytes -= len(payload)
        if self._tx_bytes <= self._limits.write_low:
            self._tx_space.set()
        if not self._tx:
            self._tx_empty.set()
        want_writer = bool(self._tx) and self._open
        if want_writer != self._writing:
            self._writing = want_writer
            if want_writer:
                self._loop.add_writer(self._sock.fileno(), self._flush)
            else:
                self._loop.remove_writer(self._sock.fileno())

    def _set_reason(self, reason: str, kind: CloseKind) -> None:
        if self._reason is None:
            self._reason = reason
            self._kind = kind
            self._rx_ready.set()
            self._tx_space.set()

    def _fail(self, reason: str, kind: CloseKind) -> None:
        self._set_reason(reason, kind)
        self._teardown()

    def _teardown(self) -> None:
        if not self._open:
            return
        self._open = False
        fd = self._sock.fileno()
        if self._reading:
            self._loop.remove_reader(fd)
        if self._writing:
            self._loop.remove_writer(fd)
        self._reading = self._writing = False
        self._sock.close()
        self._tx.clear()
        self._tx_bytes = 0
        self._tx_empty.set()
        self._tx_space.set()
        self._rx_ready.set()
        if self._on_lost is not None:
            self._on_lost(self)


async def connect_sctp(
    host: str,
    port: int,
    *,
    heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
    limits: FlowLimits = DEFAULT_LIMITS,
    timeout: float = 5.0,
    local_address: tuple[str, int] | None = None,
    shared_port: bool = False,
) -> SctpChannel:
    """Open an SCTP association; raises OSError (TimeoutError included).

    ``shared_port``: ``local_address`` is the port of our own listener (see
    :func:`share_port`).
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=IPPROTO_SCTP)
    family, _type, _proto, _canon, address = infos[0]
    sock = open_sctp_socket(family, heartbeat)
    try:
        if local_address is not None:
            if shared_port:
                share_port(sock)
            sock.bind(local_address)
        await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
    except BaseException:
        sock.close()
        raise
    return SctpChannel(sock, limits=limits)


class SctpServer:
    """Listening one-to-one SCTP socket; runs ``handler`` per association."""

    transport_name = SCTP

    def __init__(
        self,
        handler: ChannelHandler,
        *,
        heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
        limits: FlowLimits = DEFAULT_LIMITS,
        max_connections: int | None = None,
        max_per_host: int | None = None,
        max_rate_per_host: float | None = None,
        shared_port: bool = False,
    ) -> None:
        self._heartbeat = heartbeat
        self._shared_port = shared_port
        self._limits = limits
        self._supervisor = ChannelSupervisor(handler)
        self.admission = Admission(max_connections, max_per_host, max_rate_per_host)
        self._listeners: list[socket.socket] = []
        self._accept_tasks: list[asyncio.Task[None]] = []

    async def start(self, host: str | Sequence[str] | None, port: int) -> None:
        """Listen on ``host`` (None: every address), or on every address of a list
        (one SCTP endpoint: associations get each of them as a path)."""
        loop = asyncio.get_running_loop()
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        infos = await loop.getaddrinfo(
            hosts[0], port, type=socket.SOCK_STREAM, proto=IPPROTO_SCTP, flags=socket.AI_PASSIVE
        )
        family, _type, _proto, _canon, address = infos[0]
        if self._shared_port and port != 0:
            ensure_port_free(family, address)
        sock = open_sctp_socket(family, self._heartbeat)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self._shared_port:
                share_port(sock)
            if len(hosts) > 1:
                bind_addresses(sock, [str(h) for h in hosts], port)
            else:
                sock.bind(address)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self._listeners.append(sock)
        self._accept_tasks.append(loop.create_task(self._accept_loop(sock)))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [host_port(s.getsockname()) for s in self._listeners if s.fileno() >= 0]

    def close(self) -> None:
        for task in self._accept_tasks:
            task.cancel()
        for sock in self._listeners:
            sock.close()
        self._supervisor.abort_all()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._accept_tasks, return_exceptions=True)
        await self._supervisor.wait_idle()

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        out_of_resources = False
        while True:
            try:
                conn, peer = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRNOS:
                    logger.debug("SCTP accept failed: %s", exc)
                    continue
                if not out_of_resources:
                    out_of_resources = True
                    logger.warning(
                        "cannot accept SCTP associations: %s; accepting pauses and retries "
                        "every %.0f s",
                        exc.strerror or exc,
                        ACCEPT_PAUSE,
                    )
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            out_of_resources = False
            host = str(peer[0])
            if not self.admission.admit(host, "SCTP", loop.time()):
                with contextlib.suppress(OSError):
                    set_reset_on_close(conn)
                conn.close()
                continue
            try:
                conn.setblocking(False)
                configure_sctp_socket(conn, self._heartbeat)
                channel = SctpChannel(
                    conn,
                    limits=self._limits,
                    on_lost=functools.partial(self._lost, host=host),
                )
            except OSError as exc:
                logger.warning("cannot set up accepted SCTP association: %s", exc)
                self.admission.release(host)
                conn.close()
                continue
            self._supervisor.admit(channel)

    def _lost(self, channel: SctpChannel, host: str) -> None:
        self._supervisor.forget(channel)
        self.admission.release(host)
