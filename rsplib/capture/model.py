"""What capture reading yields: messages found in packets, and problems.

Kept apart from the parsers so every layer (files, links, IP, TCP, SCTP) can
produce these values without importing one another.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Transport labels used in decoded output.
TRANSPORT_SCTP = "sctp"
TRANSPORT_SCTP_UDP = "sctp-udp"
TRANSPORT_TCP_MAPPING = "tcp-mapping"
TRANSPORT_UDP = "udp"

SEVERITY_ERROR = "error"
SEVERITY_NOTE = "note"


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One application-level message found in a capture.

    ``frame`` is the 1-based frame number of the packet that completed the
    message (the last TCP segment or SCTP fragment). ``time`` is epoch seconds,
    or ``None`` where the capture stores no timestamp (pcapng simple packets).
    ``protocol`` is set when the transport itself fixes the protocol (a UDP
    port, a TCP-mapping heartbeat); otherwise the PPID decides.
    ``record_type`` is the TCP-mapping record type for ``tcp-mapping``.
    """

    frame: int
    time: float | None
    src: str
    dst: str
    transport: str
    ppid: int | None
    payload: bytes
    protocol: str | None = None
    record_type: int | None = None
    stream: int | None = None


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    """Something in a packet or stream that could not be read (``error``),
    or that was deliberately left out (``note``, e.g. IP fragments)."""

    frame: int
    time: float | None
    severity: str
    message: str
    src: str | None = None
    dst: str | None = None
    cause: int | None = None


Packet = CapturedMessage | CaptureProblem


class CaptureFormatError(Exception):
    """The capture file itself is unreadable (bad magic, truncated block)."""


class FrameError(Exception):
    """A single frame is malformed; reported as an ``error`` and skipped."""


class FrameSkipped(Exception):
    """A single frame is deliberately not decoded; reported as a ``note``."""


def endpoint(address: IPAddress, port: int) -> str:
    """``addr:port``; IPv6 addresses in brackets so the port stays unambiguous."""
    if address.version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"
