"""Component Status Protocol (CSP) version 0x0200: status reports to a monitor.

One report per UDP datagram (default port 2960). The layout is fixed-size:
a 288-byte header with two 128-byte text fields, then 24 bytes per
association. rsplib's monitor drops any datagram whose length is not exactly
``288 + 24 * n``, so the encoder always writes exactly that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from rsplib.wire.errors import InvalidValueError, LengthError, TruncatedError, UnknownMessageError

CSP_VERSION = 0x0200
CSP_TYPE_REPORT = 0x01
CSP_FLAG_FINAL = 0x01

#: Text fields are 128 bytes; one byte is kept for the terminating NUL.
TEXT_FIELD_SIZE = 128
TEXT_MAX_BYTES = TEXT_FIELD_SIZE - 1

#: Workload value meaning "unknown"; known workloads are scaled to 0..0xFFFE.
WORKLOAD_UNKNOWN = 0xFFFF
WORKLOAD_SCALE = 0xFFFE
#: Association duration meaning "unknown".
DURATION_UNKNOWN = 0xFFFF_FFFF_FFFF_FFFF

OBJECT_MASK = 0x00FF_FFFF_FFFF_FFFF

# type, flags, length, version, sender id, timestamp, interval
_HEAD = struct.Struct("!BBHIQQI")
# workload, association count (after the two text fields)
_TAIL = struct.Struct("!HH")
# receiver id, duration, flags, protocol id, ppid
_ASSOC = struct.Struct("!QQHHI")

HEADER_SIZE = _HEAD.size + 2 * TEXT_FIELD_SIZE + _TAIL.size
ASSOCIATION_SIZE = _ASSOC.size
assert HEADER_SIZE == 288 and ASSOCIATION_SIZE == 24


class ComponentGroup(IntEnum):
    """Top byte of a component ID: what kind of component reports."""

    REGISTRAR = 1
    POOL_ELEMENT = 2
    POOL_USER = 3


def component_id(group: int, obj: int) -> int:
    """64-bit component ID: group in the top byte, low 56 bits of ``obj``."""
    if not 0 <= group <= 0xFF:
        raise ValueError(f"component group out of range: {group}")
    return (group << 56) | (obj & OBJECT_MASK)


def split_component_id(cid: int) -> tuple[int, int]:
    """Inverse of :func:`component_id`: ``(group, object)``."""
    return (cid >> 56) & 0xFF, cid & OBJECT_MASK


def format_component_id(cid: int) -> str:
    """Lower-case hex without prefix, as rsplib prints IDs (``%llx``)."""
    return f"{cid:x}"


@dataclass(frozen=True, slots=True)
class CspAssociation:
    """One link of the reporting component (24 bytes on the wire).

    ``duration_us`` is the time since the link came up; ``None`` means unknown
    (all-ones on the wire). ``protocol_id`` is an IP protocol number.
    """

    receiver_id: int
    duration_us: int | None
    ppid: int
    protocol_id: int = 132
    flags: int = 0


@dataclass(frozen=True, slots=True)
class CspReport:
    """A status report.

    ``timestamp_us`` counts from the reporter's first report (not wall clock);
    ``report_interval_us`` is the reporting period. ``workload`` is a fraction
    in [0, 1] or ``None`` for unknown. ``final`` marks the last report of a
    component that shuts down.
    """

    sender_id: int
    timestamp_us: int
    report_interval_us: int
    location: str
    status: str
    workload: float | None
    associations: tuple[CspAssociation, ...] = ()
    final: bool = False


def _encode_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > TEXT_MAX_BYTES:
        # Cut at a byte limit, then drop a partial multi-byte sequence at the end.
        raw = raw[:TEXT_MAX_BYTES].decode("utf-8", errors="ignore").encode("utf-8")
    return raw.ljust(TEXT_FIELD_SIZE, b"\0")


def _decode_text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _encode_workload(workload: float | None) -> int:
    if workload is None:
        return WORKLOAD_UNKNOWN
    if not 0.0 <= workload <= 1.0:
        raise ValueError(f"workload must be within [0, 1] or None, not {workload!r}")
    return round(workload * WORKLOAD_SCALE)


def encode_csp(report: CspReport) -> bytes:
    """Encode a report as exactly ``288 + 24 * n`` bytes.

    Raises ``ValueError`` for values that do not fit their fields.
    """
    count = len(report.associations)
    length = HEADER_SIZE + ASSOCIATION_SIZE * count
    if length > 0xFFFF:
        raise ValueError(f"too many associations for one report: {count}")
    try:
        parts = [
            _HEAD.pack(
                CSP_TYPE_REPORT,
                CSP_FLAG_FINAL if report.final else 0,
                length,
                CSP_VERSION,
                report.sender_id,
                report.timestamp_us,
                report.report_interval_us,
            ),
            _encode_text(report.location),
            _encode_text(report.status),
            _TAIL.pack(_encode_workload(report.workload), count),
        ]
        for assoc in report.associations:
            duration = DURATION_UNKNOWN if assoc.duration_us is None else assoc.duration_us
            parts.append(
                _ASSOC.pack(assoc.receiver_id, duration, assoc.flags, assoc.protocol_id, assoc.ppid)
            )
    except struct.error as exc:
        raise ValueError(f"CSP field out of range: {exc}") from exc
    return b"".join(parts)


def decode_csp(data: bytes) -> CspReport:
    """Decode one report; anything but a well-formed v0x0200 report is a ProtocolError."""
    if len(data) < HEADER_SIZE:
        raise TruncatedError(f"CSP report too short: {len(data)} bytes", offending=bytes(data))
    msg_type, flags, length, version, sender, timestamp, interval = _HEAD.unpack_from(data, 0)
    if msg_type != CSP_TYPE_REPORT:
        raise UnknownMessageError(f"unknown CSP message type {msg_type}")
    if version != CSP_VERSION:
        raise InvalidValueError(f"unsupported CSP version 0x{version:08x}")
    text_at = _HEAD.size
    location = _decode_text(data[text_at : text_at + TEXT_FIELD_SIZE])
    status = _decode_text(data[text_at + TEXT_FIELD_SIZE : text_at + 2 * TEXT_FIELD_SIZE])
    workload_raw, count = _TAIL.unpack_from(data, text_at + 2 * TEXT_FIELD_SIZE)
    expected = HEADER_SIZE + ASSOCIATION_SIZE * count
    if length != len(data) or length != expected:
        raise LengthError(
            f"CSP length mismatch: field {length}, datagram {len(data)}, "
            f"{count} associations need {expected}"
        )
    associations = []
    for index in range(count):
        receiver, duration, a_flags, protocol_id, ppid = _ASSOC.unpack_from(
            data, HEADER_SIZE + index * ASSOCIATION_SIZE
        )
        associations.append(
            CspAssociation(
                receiver_id=receiver,
                duration_us=None if duration == DURATION_UNKNOWN else duration,
                ppid=ppid,
                protocol_id=protocol_id,
                flags=a_flags,
            )
        )
    return CspReport(
        sender_id=sender,
        timestamp_us=timestamp,
        report_interval_us=interval,
        location=location,
        status=status,
        workload=None if workload_raw == WORKLOAD_UNKNOWN else workload_raw / WORKLOAD_SCALE,
        associations=tuple(associations),
        final=bool(flags & CSP_FLAG_FINAL),
    )
