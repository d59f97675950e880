"""UDP: multicast announces (ASAP Server Announce, ENRP Presence) and unicast reports.

Multicast always names its interface. Without IP_MULTICAST_IF the kernel
routes 239.x traffic via the default route, i.e. off the machine; so a sender
without an explicit interface address is refused outright. IPv4 only (the
RSerPool groups 239.0.0.50/51 are IPv4).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct

logger = logging.getLogger("rsplib.transport")

DEFAULT_TTL = 30
# Linux: without IP_MULTICAST_ALL=0 a socket bound to a port receives every
# group any socket on the host joined for that port.
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)

Datagram = tuple[bytes, tuple[str, int]]


def _require_interface(interface: str | None) -> str:
    if not interface:
        raise ValueError(
            "multicast needs an explicit interface address (e.g. '127.0.0.1' or the LAN "
            "address); without one the kernel sends the traffic off this machine"
        )
    try:
        address = ipaddress.IPv4Address(interface)
    except ValueError:
        message = f"multicast interface must be an IPv4 address, not {interface!r}"
        raise ValueError(message) from None
    if address.is_unspecified:
        raise ValueError("multicast interface 0.0.0.0 is not an explicit interface address")
    return interface


def _require_group(group: str) -> str:
    try:
        address = ipaddress.IPv4Address(group)
    except ValueError:
        raise ValueError(f"multicast group must be an IPv4 address, not {group!r}") from None
    if not address.is_multicast:
        raise ValueError(f"{group} is not a multicast address (224.0.0.0/4)")
    return group


class MulticastSender:
    """Sends datagrams to ``group:port`` out of the interface with address ``interface``.

    ``bind_port`` fixes the UDP source port: a registrar binds it to its own
    listening port, because receivers take the announce's source address and
    port as the registrar's address (rsplib convention).
    """

    def __init__(
        self,
        group: str,
        port: int,
        interface: str,
        ttl: int = DEFAULT_TTL,
        *,
        bind_port: int | None = None,
        loopback: bool = True,
    ) -> None:
        self.group = _require_group(group)
        self.interface = _require_interface(interface)
        if not 1 <= ttl <= 255:
            raise ValueError(f"multicast TTL must be 1..255, not {ttl}")
        self.port = port
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if loopback else 0)
            if bind_port is not None:
                # The registrar's TCP/SCTP listener may hold the same number; UDP is a
                # separate port space, reuse only matters for restarts.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.interface, bind_port or 0))
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()
        return str(host), int(port)

    def send(self, data: bytes) -> bool:
        """Hand one datagram to the kernel; False (and a log line) if it was dropped."""
        return _send(self._sock, data, (self.group, self.port))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> MulticastSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class UdpSender:
    """Unicast datagrams to one fixed target (component status reports)."""

    def __init__(self, host: str, port: int, *, local_address: tuple[str, int] | None = None):
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _type, _proto, _canon, target = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if local_address is not None:
                sock.bind(local_address)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.target: tuple[str, int] = (str(target[0]), int(target[1]))

    def send(self, data: bytes) -> bool:
        """Hand one datagram to the kernel; False (and a log line) if it was dropped."""
        return _send(self._sock, data, self.target)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> UdpSender:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _send(sock: socket.socket, data: bytes, target: tuple[str, int]) -> bool:
    try:
        sock.sendto(data, target)
    except (BlockingIOError, InterruptedError):
        logger.debug("UDP send buffer full; datagram to %s:%d dropped", *target)
        return False
    except OSError as exc:
        # Datagrams are best effort: a missing route must not kill the caller's loop.
        logger.warning("UDP send to %s:%d failed: %s", target[0], target[1], exc)
        return False
    return True


class _ReceiverProtocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[Datagram | None]) -> None:
        self._queue = queue
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            self._queue.put_nowait((data, (str(addr[0]), int(addr[1]))))
        except asyncio.QueueFull:
            self.dropped += 1  # nobody reads: lose new datagrams, not memory

    def error_received(self, exc: Exception) -> None:
        logger.debug("multicast receive error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # make room for the end marker
            self.dropped += 1
        self._queue.put_nowait(None)


class MulticastReceiver:
    """Datagrams of one group and port, as ``(data, (source address, source port))``.

    Iterate with ``async for`` or call :meth:`receive`; both end after
    :meth:`close`.
    """

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        protocol: _ReceiverProtocol,
        queue: asyncio.Queue[Datagram | None],
        group: str,
        port: int,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._queue = queue
        self._closed = False
        self.group = group
        self.port = port

    @property
    def dropped(self) -> int:
        """Datagrams discarded because the queue was full."""
        return self._protocol.dropped

    async def receive(self) -> Datagram:
        if self._closed and self._queue.empty():
            raise EOFError("multicast receiver closed")
        item = await self._queue.get()
        if item is None:
            self._closed = True
            raise EOFError("multicast receiver closed")
        return item

    def __aiter__(self) -> MulticastReceiver:
        return self

    async def __anext__(self) -> Datagram:
        try:
            return await self.receive()
        except EOFError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._transport.close()


async def open_multicast_receiver(
    group: str, port: int, interface: str, *, queue_size: int = 256
) -> MulticastReceiver:
    """Join ``group`` on ``interface`` and receive on ``port`` (0: ephemeral).

    Several receivers on one host may share the port (SO_REUSEADDR and
    SO_REUSEPORT); each gets every datagram.
    """
    _require_group(group)
    _require_interface(interface)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        # Binding to the group address keeps unicast and other groups out.
        sock.bind((group, port))
        membership = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except BaseException:
        sock.close()
        raise
    bound_port = int(sock.getsockname()[1])
    queue: asyncio.Queue[Datagram | None] = asyncio.Queue(maxsize=queue_size)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _ReceiverProtocol(queue), sock=sock
    )
    return MulticastReceiver(transport, protocol, queue, group, bound_port)
