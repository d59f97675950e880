"""The 4-byte header ASAP and ENRP messages share, and its length rules.

Header (RFC 5352, section 2.2; RFC 5353, section 2): Type (8 bits), Flags
(8 bits), Length (16 bits, the whole message including the header). ASAP and
ENRP number their types independently; the SCTP PPID (11 or 12) tells which.

Encoders write a Length that includes the last parameter's padding, so it is
always a multiple of 4, as rsplib writes it. Decoders accept a Length equal to
the data length, and rsplib's tolerance as well: a Length that leaves out the
final padding when the remaining 1-3 bytes are zeros.
"""

from __future__ import annotations

import struct

from rsplib.wire.errors import LengthError, LimitExceededError, TruncatedError
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
from rsplib.wire.reference.tlv import Buffer, DecodeContext, TlvReader

MESSAGE_HEADER = struct.Struct("!BBH")  # type, flags, length
HEADER_SIZE = MESSAGE_HEADER.size
MAX_MESSAGE_LENGTH = 0xFFFF


def encode_message(message_type: int, flags: int, body: bytes) -> bytes:
    """Header plus ``body`` (fixed fields and padded TLVs)."""
    length = HEADER_SIZE + len(body)
    if length > MAX_MESSAGE_LENGTH:
        raise ValueError(f"message of {length} bytes exceeds the 16-bit Length field")
    return MESSAGE_HEADER.pack(message_type, flags, length) + body


class MessageFrame:
    """A message whose header and Length were checked: type, flags, its bytes and end.

    ``reader(offset)`` gives a TLV reader for the parameters starting at
    ``offset`` (after any fixed fields); all readers of one message share one
    :class:`~rsplib.wire.reference.tlv.DecodeContext`, so the limits count the
    whole message.
    """

    __slots__ = ("ctx", "data", "end", "flags", "message_type")

    def __init__(
        self, message_type: int, flags: int, data: bytes, end: int, ctx: DecodeContext
    ) -> None:
        self.message_type = message_type
        self.flags = flags
        self.data = data
        self.end = end
        self.ctx = ctx

    def require(self, size: int, what: str) -> None:
        """The body must hold at least ``size`` bytes of fixed fields after the header."""
        if self.end - HEADER_SIZE < size:
            raise TruncatedError(f"{what} needs {size} bytes of fixed fields")

    def fixed(self, layout: struct.Struct, what: str) -> tuple[int, ...]:
        """The fixed fields right after the header (checked to be there)."""
        self.require(layout.size, what)
        return layout.unpack_from(self.data, HEADER_SIZE)

    def reader(self, offset: int = HEADER_SIZE) -> TlvReader:
        return TlvReader(self.data, offset, self.end, self.ctx, 1)

    @property
    def unrecognized(self) -> tuple[bytes, ...]:
        """TLVs skipped under the "skip and report" action bits, for the answer."""
        return tuple(self.ctx.unrecognized)


def open_message(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> MessageFrame:
    """Check the header and the Length field of one message."""
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if size > limits.max_message_size:
        raise LimitExceededError(f"message of {size} bytes exceeds {limits.max_message_size}")
    if size < HEADER_SIZE:
        raise TruncatedError(f"{size} bytes cannot hold a message header")
    message_type, flags, length = MESSAGE_HEADER.unpack_from(data)
    if length != size:
        if length < HEADER_SIZE:
            raise LengthError(f"message Length {length} is below the header size")
        tail = size - length
        # rsplib's tolerance: Length may leave out the final padding (1-3 zero bytes).
        if not (0 < tail <= 3 and tail == -length & 3 and not any(data[length:])):
            raise LengthError(f"message Length {length} does not match its {size} bytes")
    return MessageFrame(message_type, flags, data, length, DecodeContext(limits))


__all__ = [
    "HEADER_SIZE",
    "MAX_MESSAGE_LENGTH",
    "MESSAGE_HEADER",
    "MessageFrame",
    "encode_message",
    "open_message",
]
