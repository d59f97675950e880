"""The only exceptions the wire decoders raise.

Every error carries the RSerPool cause code a receiver should put into an
Operation Error when it answers, and optionally the offending bytes (for
"Unrecognized Parameter" / "Invalid Values" the RFC echoes the TLV back).
"""

from __future__ import annotations

from rsplib.errors import RemoteProtocolError
from rsplib.wire.constants import ErrorCause


class ProtocolError(RemoteProtocolError):
    """Malformed or unacceptable input. ``cause`` is the code to answer with."""

    cause: int = ErrorCause.INVALID_VALUES

    def __init__(self, message: str, *, cause: int | None = None, offending: bytes = b"") -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause
        self.offending = offending


class TruncatedError(ProtocolError):
    """The input ended inside a header, a field or a parameter."""

    cause = ErrorCause.INVALID_VALUES


class LengthError(ProtocolError):
    """A length field is impossible (too small, past the end, over a limit)."""

    cause = ErrorCause.INVALID_VALUES


class UnknownMessageError(ProtocolError):
    """A message type this protocol does not define."""

    cause = ErrorCause.UNRECOGNIZED_MESSAGE


class UnrecognizedParameterError(ProtocolError):
    """An unknown parameter type whose action bits say: stop processing.

    ``report`` tells whether the sender asked to be told (action bits 01).
    """

    cause = ErrorCause.UNRECOGNIZED_PARAMETER

    def __init__(self, message: str, *, report: bool, offending: bytes = b"") -> None:
        super().__init__(message, offending=offending)
        self.report = report


class MissingParameterError(ProtocolError):
    """A mandatory parameter is absent or not where the message needs it."""

    cause = ErrorCause.INVALID_VALUES


class InvalidValueError(ProtocolError):
    """A field holds a value the protocol forbids (e.g. PE identifier 0)."""

    cause = ErrorCause.INVALID_VALUES


class LimitExceededError(ProtocolError):
    """Input exceeds a configured safety limit (size, count, nesting depth)."""

    cause = ErrorCause.LACK_OF_RESOURCES
