"""The 4-byte header shared by ASAP and ENRP messages, and its length rules.

Header: Type (8), Flags (8), Length (16, whole message including the header).
Encoders write the Length including the last parameter's padding, so it is
always a multiple of 4 (as rsplib does). Decoders accept a Length equal to the
data length, and also rsplib's tolerance: a Length that excludes the final
padding when the remaining 1-3 bytes are zeros.
"""

from __future__ import annotations

import struct

from rsplib.wire.errors import LengthError, LimitExceededError, TruncatedError
from rsplib.wire.tlv import DEFAULT_LIMITS, Buffer, DecodeContext, DecodeLimits, TlvReader

MESSAGE_HEADER = struct.Struct("!BBH")
HEADER_SIZE = MESSAGE_HEADER.size
MAX_MESSAGE_LENGTH = 0xFFFF

__all__ = [
    "DEFAULT_LIMITS",
    "HEADER_SIZE",
    "MAX_MESSAGE_LENGTH",
    "MESSAGE_HEADER",
    "DecodeLimits",
    "MessageFrame",
    "encode_message",
    "open_message",
]


def encode_message(message_type: int, flags: int, body: bytes) -> bytes:
    """Header plus ``body`` (fixed fields and padded TLVs)."""
    length = HEADER_SIZE + len(body)
    if length > MAX_MESSAGE_LENGTH:
        raise ValueError(f"message of {length} bytes exceeds the 16-bit Length field")
    return MESSAGE_HEADER.pack(message_type, flags, length) + body


class MessageFrame:
    """A checked message: type, flags, the buffer and where its body ends.

    ``reader(offset)`` gives a TLV reader for the parameters starting at
    ``offset`` (after any fixed fields), sharing one :class:`DecodeContext`.
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

    def reader(self, offset: int = HEADER_SIZE) -> TlvReader:
        return TlvReader(self.data, offset, self.end, self.ctx, 1)

    @property
    def unrecognized(self) -> tuple[bytes, ...]:
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
        # rsplib's tolerance: Length may exclude the final padding (1-3 zero bytes).
        if not (0 < tail <= 3 and tail == -length & 3 and not any(data[length:])):
            raise LengthError(f"message Length {length} does not match its {size} bytes")
    return MessageFrame(message_type, flags, data, length, DecodeContext(limits))
