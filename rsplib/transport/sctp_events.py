"""SCTP socket-API structures (RFC 6458) beyond data: notifications, addresses, tuning.

Pure packing and unpacking of the Linux layouts; :mod:`rsplib.transport.sctp_kernel`
puts them on sockets. Values are those of Linux ``<linux/sctp.h>``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from rsplib.transport.channel import HeartbeatConfig

# Socket options (level SOL_SCTP).
SCTP_RTOINFO = 0
SCTP_ASSOCINFO = 1
SCTP_EVENT = 127
SCTP_SOCKOPT_BINDX_ADD = 100
SCTP_GET_PEER_ADDRS = 108
SCTP_GET_LOCAL_ADDRS = 109

# Notification types (sn_type) this package subscribes to.
SCTP_ASSOC_CHANGE = 0x8001
SCTP_PEER_ADDR_CHANGE = 0x8002
SCTP_SHUTDOWN_EVENT = 0x8005
SUBSCRIBED_EVENTS = (SCTP_ASSOC_CHANGE, SCTP_PEER_ADDR_CHANGE, SCTP_SHUTDOWN_EVENT)

ASSOC_STATES = ("COMM_UP", "COMM_LOST", "RESTART", "SHUTDOWN_COMP", "CANT_STR_ASSOC")
PATH_STATES = (
    "ADDR_AVAILABLE", "ADDR_UNREACHABLE", "ADDR_REMOVED", "ADDR_ADDED",
    "ADDR_MADE_PRIM", "ADDR_CONFIRMED", "ADDR_POTENTIALLY_FAILED",
)  # fmt: skip

EVENT = struct.Struct("=iHB1x")  # struct sctp_event: assoc_id, se_type, se_on
HEADER = struct.Struct("=HHI")  # sn_type, sn_flags, sn_length
ASSOC_CHANGE = struct.Struct("=HHHHi")  # state, error, outbound, inbound streams, assoc_id
PADDR_CHANGE = struct.Struct("=128sii")  # address (sockaddr_storage), state, error
RTOINFO = struct.Struct("=iIII")  # assoc_id, initial, max, min (ms)
ASSOCPARAMS = struct.Struct("=iHHIII")  # assoc_id, asocmaxrxt, peer dests, rwnds, cookie life
SOCKADDR_IN = struct.Struct("=H2s4s8x")  # family, port (network order), address
SOCKADDR_IN6 = struct.Struct("=H2s4s16s4s")  # family, port, flowinfo, address, scope id


@dataclass(frozen=True)
class AssocChange:
    state: str  # one of ASSOC_STATES
    error: int


@dataclass(frozen=True)
class PathChange:
    address: tuple[str, int]
    state: str  # one of PATH_STATES
    error: int


@dataclass(frozen=True)
class PeerShutdown:
    """The peer began a graceful shutdown (SHUTDOWN received)."""


@dataclass(frozen=True)
class OtherNotification:
    kind: int


Notification = AssocChange | PathChange | PeerShutdown | OtherNotification


def _name(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else f"state {value}"


def decode_notification(data: bytes) -> Notification:
    """One notification as read with MSG_NOTIFICATION; raises ValueError if truncated."""
    kind, _flags, length = HEADER.unpack_from(data)
    if length > len(data):
        raise ValueError(f"SCTP notification of {length} bytes truncated to {len(data)}")
    body = HEADER.size
    if kind == SCTP_ASSOC_CHANGE:
        state, error, _out, _in, _assoc = ASSOC_CHANGE.unpack_from(data, body)
        return AssocChange(_name(ASSOC_STATES, state), error)
    if kind == SCTP_PEER_ADDR_CHANGE:
        raw, state, error = PADDR_CHANGE.unpack_from(data, body)
        return PathChange(decode_sockaddr(raw), _name(PATH_STATES, state), error)
    if kind == SCTP_SHUTDOWN_EVENT:
        return PeerShutdown()
    return OtherNotification(kind)


def event_subscription(kind: int, on: bool = True) -> bytes:
    """SCTP_EVENT option value turning notification ``kind`` on (or off)."""
    return EVENT.pack(0, kind, int(on))


def decode_sockaddr(raw: bytes) -> tuple[str, int]:
    """(host, port) of a sockaddr_in or sockaddr_in6 (the rest of ``raw`` is ignored)."""
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET:
        _f, port, address, = SOCKADDR_IN.unpack_from(raw)  # fmt: skip
        return str(ipaddress.IPv4Address(address)), int.from_bytes(port, "big")
    if family == socket.AF_INET6:
        _f, port, _flow, address, _scope = SOCKADDR_IN6.unpack_from(raw)
        return str(ipaddress.IPv6Address(address)), int.from_bytes(port, "big")
    raise ValueError(f"unknown address family {family}")


def encode_sockaddr(host: str, port: int) -> bytes:
    address = ipaddress.ip_address(host)
    if address.version == 4:
        return SOCKADDR_IN.pack(socket.AF_INET, port.to_bytes(2, "big"), address.packed)
    return SOCKADDR_IN6.pack(socket.AF_INET6, port.to_bytes(2, "big"), bytes(4), address.packed,
                             bytes(4))  # fmt: skip


def decode_address_list(data: bytes) -> list[tuple[str, int]]:
    """struct sctp_getaddrs (SCTP_GET_PEER_ADDRS / SCTP_GET_LOCAL_ADDRS): assoc_id,
    count, then that many sockaddrs, each as long as its family needs."""
    _assoc, count = struct.unpack_from("=iI", data)
    offset, found = 8, []
    for _ in range(count):
        (family,) = struct.unpack_from("=H", data, offset)
        size = SOCKADDR_IN.size if family == socket.AF_INET else SOCKADDR_IN6.size
        found.append(decode_sockaddr(data[offset : offset + size]))
        offset += size
    return found


def rto_info(heartbeat: HeartbeatConfig) -> bytes:
    """SCTP_RTOINFO keeping retransmission timeouts within one heartbeat interval.

    The kernel's defaults (initial 3 s, maximum 60 s) would let a lost peer go
    unnoticed for minutes while data is outstanding; bounding the RTO by the
    interval makes ``misses`` retransmissions take about ``misses`` intervals.
    """
    interval_ms = max(10, round(heartbeat.interval * 1000))
    return RTOINFO.pack(0, interval_ms, interval_ms, min(1000, interval_ms))


def assoc_params(heartbeat: HeartbeatConfig, paths: int = 2) -> bytes:
    """SCTP_ASSOCINFO: the association fails after ``misses`` errors on each of ``paths``
    paths in a row (a lower limit would end a multi-homed association while one of its
    paths still works); other fields 0 keep the kernel's values."""
    return ASSOCPARAMS.pack(0, max(1, heartbeat.misses) * paths, 0, 0, 0, 0)
