"""TCP-mapping records: message framing for RSerPool over TCP.

TCP is a byte stream, so each message travels in a record that restores what
SCTP gives for free: message boundaries, a protocol identifier (PPID) per
message, liveness probes and a stream number. Layout (big-endian):

    offset 0  u8   record type (1 DATA, 2 HEARTBEAT-REQUEST, 3 HEARTBEAT-ACK)
    offset 1  u8   flags (sent as 0)
    offset 2  u16  stream identifier (0)
    offset 4  u32  record length including this 12-byte header
    offset 8  u32  PPID (heartbeats: 0)
    offset 12      payload

Decoding rules chosen here:

* The flags byte is *ignored* on receipt (sent as 0). Reserved bits that a
  later revision may define must not break old receivers; nothing in a record
  depends on them today.
* A DATA record carrying ASAP, ENRP or FGP (PPID 11/12/32) must hold exactly
  one message: the message's own 16-bit Length (bytes 2-3) must equal the
  payload length, or fall short of it by 1-3 zero padding bytes.
* Records are bounded by what they can carry, checked from the header alone (before the
  payload is buffered): ASAP, ENRP and FGP messages have a 16-bit length, so their records
  are at most 12 + 65,535 + 3 bytes; heartbeats carry a short opaque value (at most 512
  bytes); other PPIDs up to the decoder's ``max_record`` (at most 1 MiB).
* After a ``FramingError`` the stream position is lost, so the decoder stays
  failed and raises again on every further ``feed``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from rsplib.wire.constants import PPID, ErrorCause
from rsplib.wire.errors import ProtocolError

HEADER_SIZE = 12
MAX_RECORD = 1_048_576
MAX_PAYLOAD = MAX_RECORD - HEADER_SIZE
#: Largest record of a self-delimiting message: 16-bit length plus up to 3 padding bytes.
MAX_MESSAGE_RECORD = HEADER_SIZE + 0xFFFF + 3
#: Largest heartbeat record (our opaque value is 8 bytes).
MAX_HEARTBEAT_RECORD = HEADER_SIZE + 512

_HEADER = struct.Struct("!BBHII")

# PPIDs whose payload is a self-delimiting RSerPool-style message
# (Type u8, Flags u8, Length u16 including the 4-byte header).
_SELF_DELIMITING = frozenset({PPID.ASAP, PPID.ENRP, PPID.FGP})


class RecordType(IntEnum):
    """Record types of the TCP mapping."""

    DATA = 1
    HEARTBEAT_REQUEST = 2
    HEARTBEAT_ACK = 3


class FramingError(ProtocolError):
    """The byte stream is not a valid sequence of TCP-mapping records."""

    cause = ErrorCause.INVALID_VALUES


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded record. ``payload`` excludes the 12-byte header."""

    type: RecordType
    ppid: int
    payload: bytes
    stream: int = 0


def encode_header(
    record_type: RecordType, ppid: int, payload_length: int, stream: int = 0
) -> bytes:
    """The 12-byte header for a payload of ``payload_length`` bytes.

    Kept separate from :func:`encode_record` so a sender can hand header and a
    large payload to the kernel without concatenating them first.
    """
    if not 0 <= payload_length <= MAX_PAYLOAD:
        raise ValueError(f"record payload of {payload_length} bytes exceeds {MAX_PAYLOAD}")
    if not 0 <= ppid <= 0xFFFFFFFF:
        raise ValueError(f"PPID {ppid} does not fit in 32 bits")
    if not 0 <= stream <= 0xFFFF:
        raise ValueError(f"stream {stream} does not fit in 16 bits")
    return _HEADER.pack(int(record_type), 0, stream, HEADER_SIZE + payload_length, ppid)


def encode_record(rec: Record) -> bytes:
    """Header plus payload of one record."""
    return encode_header(rec.type, rec.ppid, len(rec.payload), rec.stream) + rec.payload


def data_record(ppid: int, payload: bytes) -> Record:
    """A DATA record carrying one message with protocol identifier ``ppid``."""
    return Record(RecordType.DATA, ppid, payload)


def heartbeat_request(opaque: bytes) -> Record:
    """A HEARTBEAT-REQUEST whose ``opaque`` bytes the peer echoes back."""
    return Record(RecordType.HEARTBEAT_REQUEST, 0, opaque)


def heartbeat_ack(request: Record) -> Record:
    """The HEARTBEAT-ACK answering ``request`` (same opaque bytes)."""
    return Record(RecordType.HEARTBEAT_ACK, 0, request.payload)


def check_inner_length(ppid: int, payload: bytes) -> None:
    """Raise ``FramingError`` if a self-delimiting message disagrees with its record."""
    if ppid not in _SELF_DELIMITING:
        return
    if len(payload) < 4:
        raise FramingError(f"PPID {ppid} payload of {len(payload)} bytes is shorter than 4")
    inner = int.from_bytes(payload[2:4], "big")
    pad = len(payload) - inner
    if inner < 4 or not 0 <= pad <= 3:
        raise FramingError(
            f"PPID {ppid} message length {inner} disagrees with record payload {len(payload)}"
        )
    if pad and any(payload[inner:]):
        raise FramingError(f"PPID {ppid} message is followed by non-zero padding")


def record_limit(record_type: int, ppid: int, max_record: int = MAX_RECORD) -> int:
    """The largest acceptable length of a record with this type and PPID."""
    if record_type != RecordType.DATA:
        return MAX_HEARTBEAT_RECORD
    if ppid in _SELF_DELIMITING:
        return min(MAX_MESSAGE_RECORD, max_record)
    return max_record


class RecordDecoder:
    """Incremental decoder: bytes in any chunking -> complete records.

    ``max_record`` bounds records of PPIDs without a smaller limit of their own (a receiver
    that only takes ASAP and ENRP sets it to :data:`MAX_MESSAGE_RECORD`).
    """

    def __init__(self, max_record: int = MAX_RECORD) -> None:
        if not HEADER_SIZE <= max_record <= MAX_RECORD:
            raise ValueError(f"max_record must be within {HEADER_SIZE}..{MAX_RECORD}")
        self._max_record = max_record
        # DATA records up to this length are within every limit (no per-PPID check needed).
        self._always_fits = min(MAX_MESSAGE_RECORD, max_record)
        self._buffer = bytearray()
        self._failed: FramingError | None = None

    @property
    def failed(self) -> bool:
        return self._failed is not None

    @property
    def pending(self) -> int:
        """Bytes held back as an incomplete record."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Record]:
        """Append ``data`` and return every record it completes, in order.

        Records completed before a framing error in the same chunk are lost
        with it: the connection is going to be closed anyway.
        """
        if self._failed is not None:
            raise FramingError(f"stream already failed: {self._failed}")
        buf = self._buffer
        buf += data
        records: list[Record] = []
        offset = 0
        try:
            while len(buf) - offset >= HEADER_SIZE:
                rtype, _flags, stream, length, ppid = _HEADER.unpack_from(buf, offset)
                if rtype not in _RECORD_TYPES:
                    raise FramingError(f"unknown record type {rtype}")
                if not HEADER_SIZE <= length <= MAX_RECORD:
                    raise FramingError(
                        f"record length {length} outside {HEADER_SIZE}..{MAX_RECORD}"
                    )
                if length > self._always_fits or rtype != RecordType.DATA:
                    limit = record_limit(rtype, ppid, self._max_record)
                    if length > limit:
                        raise FramingError(
                            f"record of {length} bytes exceeds {limit} for type {rtype}, "
                            f"PPID {ppid}"
                        )
                if len(buf) - offset < length:
                    break  # incomplete: keep the tail for the next feed
                payload = bytes(buf[offset + HEADER_SIZE : offset + length])
                record_type = RecordType(rtype)
                if record_type is RecordType.DATA:
                    check_inner_length(ppid, payload)
                records.append(Record(record_type, ppid, payload, stream))
                offset += length
        except FramingError as exc:
            self._failed = exc
            buf.clear()
            raise
        del buf[:offset]
        return records


_RECORD_TYPES = frozenset(int(t) for t in RecordType)
