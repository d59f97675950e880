"""The message-channel interface every transport implements, and its settings.

A channel carries whole messages tagged with a PPID, like an SCTP association:
over kernel SCTP the PPID is SCTP's own, over the TCP mapping it sits in the
record header. Registrar and PE/PU code see only this interface.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from rsplib.errors import ChannelClosed, CloseKind, TransportError, TransportUnavailable

TCP_MAPPING = "tcp-mapping"
SCTP = "sctp"
AUTO = "auto"
TRANSPORT_CHOICES = (AUTO, TCP_MAPPING, SCTP)


def kind_of_error(exc: BaseException | None) -> CloseKind:
    """How an OS-level connection error ended the channel (a timeout or a reset)."""
    if isinstance(exc, TimeoutError) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        return CloseKind.TIMEOUT
    return CloseKind.RESET


def host_port(sockname: object) -> tuple[str, int]:
    """A socket name as the (host, port) a channel exposes; ("", 0) if there is none.

    IPv6 socket names are 4-tuples; channels and servers report (host, port) only.
    """
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return ("", 0)


@dataclass(frozen=True)
class HeartbeatConfig:
    """Application heartbeats of the TCP mapping.

    A HEARTBEAT-REQUEST goes out after ``interval`` seconds without receiving
    anything; ``misses`` intervals of silence close the channel. ``misses=0``
    (or ``interval<=0``) turns heartbeats off. Kernel SCTP uses its own
    heartbeats, tuned from the same numbers where the kernel allows.
    """

    interval: float = 1.0
    misses: int = 3

    @property
    def enabled(self) -> bool:
        return self.misses > 0 and self.interval > 0

    @property
    def timeout(self) -> float:
        return self.interval * self.misses


@dataclass(frozen=True)
class TcpOptions:
    """Socket options put on every TCP-mapping socket.

    Keep-alive probes plus TCP_USER_TIMEOUT make a lost peer visible within a
    few seconds even while we are sending; without the user timeout a sender
    does not notice for many minutes (unacknowledged data keeps retrying).
    """

    keepalive_idle: int = 1
    keepalive_interval: int = 1
    keepalive_count: int = 2
    user_timeout_ms: int = 2000
    nodelay: bool = True
    #: SO_SNDBUF in bytes; None leaves the kernel's auto-tuning. A server answering small
    #: requests sets it small, so a peer that does not read blocks our writes (and with
    #: them further work for it) after a few hundred kilobytes instead of megabytes.
    send_buffer: int | None = None


@dataclass(frozen=True)
class FlowLimits:
    """Buffer bounds of one channel.

    ``send`` waits while more than ``write_high`` bytes are queued for the
    kernel; the receive side stops reading from the socket while more than
    ``receive_messages`` messages or ``receive_bytes`` bytes wait for
    ``receive()``, so a fast peer cannot exhaust memory. While the peer does
    not read what we send (the queue is above ``write_high``), we do not read
    its requests either; a peer that reads nothing for a heartbeat timeout is
    closed.
    """

    write_high: int = 256 * 1024
    write_low: int = 64 * 1024
    receive_messages: int = 256
    receive_bytes: int = 4 * 1024 * 1024
    # send_nowait() cannot wait; beyond this much queued data the peer is
    # treated as lost rather than buffering without bound.
    send_nowait_limit: int = 16 * 1024 * 1024
    #: Longest record accepted for PPIDs without a smaller limit of their own (ASAP, ENRP
    #: and FGP records are at most 64 KiB anyway; see rsplib.wire.tcpmap).
    max_record: int = 1_048_576
    #: A record whose first byte arrived longer ago than this and is still incomplete
    #: closes the connection (a peer trickling bytes to hold buffers and a slot).
    record_deadline: float = 10.0
    #: Heartbeat requests answered per second (and at once); a peer sending more is not
    #: checking liveness but making us work, and is closed.
    max_heartbeat_rate: float = 50.0
    #: Bytes taken from the socket per read: with many busy peers, each one's turn in the
    #: event loop stays short (decoding a read's records happens in one go).
    read_size: int = 64 * 1024
    #: Stop reading a peer while it does not read us (our queue above ``write_high``): right
    #: for request/response clients, wrong between equals that both send much (each would
    #: wait for the other), such as registrars exchanging Handle Updates.
    pause_reading_while_blocked: bool = True


class MessageChannel(Protocol):
    """One connection carrying (ppid, message) pairs in both directions."""

    transport_name: str
    peer_address: tuple[str, int]
    local_address: tuple[str, int]

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> str | None: ...

    @property
    def close_kind(self) -> CloseKind | None: ...

    async def send(self, ppid: int, payload: bytes) -> None:
        """Queue one message; wait while the send buffer is above its high-water mark."""
        ...

    def send_nowait(self, ppid: int, payload: bytes) -> None:
        """Queue one message without waiting; raises ChannelClosed."""
        ...

    async def receive(self) -> tuple[int, bytes]:
        """Next (ppid, message). Messages that arrived before the channel
        closed are still delivered; after them ChannelClosed is raised."""
        ...

    async def wait_writable(self) -> None:
        """Return once the send queue is below its high-water mark (at once if it is);
        raises ChannelClosed. A server that answers with ``send_nowait`` calls this
        before taking more requests, so a peer that does not read stops costing work."""
        ...

    def peer_addresses(self) -> list[tuple[str, int]]:
        """Every address the peer is reachable on: a multi-homed SCTP peer's paths,
        else just ``peer_address``; empty once closed."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (reset), discarding queued data."""
        ...

    async def close(self) -> None:
        """Flush queued data, then close; aborts if flushing takes too long."""
        ...


ChannelHandler = Callable[[MessageChannel], Awaitable[None]]


class ChannelServer(Protocol):
    """A listening endpoint that runs a handler per accepted channel."""

    transport_name: str

    @property
    def addresses(self) -> list[tuple[str, int]]: ...

    def close(self) -> None:
        """Stop accepting and abort every open channel."""
        ...

    async def wait_closed(self) -> None: ...


# Shared defaults (frozen, so one instance serves every call).
DEFAULT_HEARTBEAT = HeartbeatConfig()
DEFAULT_TCP_OPTIONS = TcpOptions()
DEFAULT_LIMITS = FlowLimits()

__all__ = [
    "AUTO",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LIMITS",
    "DEFAULT_TCP_OPTIONS",
    "SCTP",
    "TCP_MAPPING",
    "TRANSPORT_CHOICES",
    "ChannelClosed",
    "ChannelHandler",
    "ChannelServer",
    "CloseKind",
    "FlowLimits",
    "HeartbeatConfig",
    "MessageChannel",
    "TcpOptions",
    "TransportError",
    "TransportUnavailable",
    "host_port",
    "kind_of_error",
]
