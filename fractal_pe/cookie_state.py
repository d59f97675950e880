"""The fractal PE's session state in rsplib's 76-byte cookie layout.

Layout: ``<FG-TD1>`` (8 ASCII bytes, no NUL), a copy of the Parameter message
(60 bytes, but with its Length field set to 4 -- rsplib writes it that way and
interoperating PEs expect it), then CurrentX and CurrentY (u32 big-endian): the
pixel at which a new PE resumes.

This module only lays out the plaintext; signing and encryption wrap it
elsewhere. Decoding mirrors what rsplib's PE checks on a Cookie Echo (size,
magic, parameter sanity) and also that the resume position lies in the
rectangle (up to one past its last column or row).
"""

from __future__ import annotations

import struct

from fractal_pe.fgp import (
    HEADER_SIZE,
    PARAMETER_SIZE,
    FgpParameter,
    FgpType,
    decode_parameter_body,
    encode_parameter,
    validate_parameter_for_pe,
)
from rsplib.wire.errors import InvalidValueError, LengthError

COOKIE_MAGIC = b"<FG-TD1>"
COOKIE_SIZE = 76
EMBEDDED_LENGTH_FIELD = 4  # rsplib's quirk: not 60

_POSITION = struct.Struct(">II")
_PARAM_START = len(COOKIE_MAGIC)
_POSITION_START = _PARAM_START + PARAMETER_SIZE


def _check_position(param: FgpParameter, x: int, y: int) -> None:
    # x == width (end of a row) and y == height (all rows done) are legal resume points:
    # a cookie taken between pixels may sit just past the last one computed.
    if x > param.width or y > param.height:
        raise InvalidValueError(
            f"FGP cookie position ({x}, {y}) is outside the {param.width}x{param.height} rectangle"
        )


def resume_offset(param: FgpParameter, x: int, y: int) -> int:
    """Row-major index of the first pixel still to compute (width*height when done)."""
    return min(y * param.width + x, param.width * param.height)


def encode_fgp_state(param: FgpParameter, x: int, y: int) -> bytes:
    """The 76-byte cookie for resuming ``param`` at pixel (x, y)."""
    if x < 0 or y < 0:
        raise ValueError(f"negative cookie position ({x}, {y})")
    try:
        _check_position(param, x, y)
    except InvalidValueError as exc:
        raise ValueError(str(exc)) from None
    embedded = encode_parameter(param, length_field=EMBEDDED_LENGTH_FIELD)
    return COOKIE_MAGIC + embedded + _POSITION.pack(x, y)


def decode_fgp_state(data: bytes) -> tuple[FgpParameter, int, int]:
    """Parse a cookie into (parameters, CurrentX, CurrentY); raises ``ProtocolError``.

    The embedded Length field is not checked (rsplib ignores it too); the
    embedded Type must be Parameter.
    """
    data = bytes(data)
    if len(data) != COOKIE_SIZE:
        raise LengthError(f"FGP cookie is {len(data)} bytes, expected {COOKIE_SIZE}")
    if data[:_PARAM_START] != COOKIE_MAGIC:
        raise InvalidValueError("FGP cookie does not start with <FG-TD1>")
    if data[_PARAM_START] != FgpType.PARAMETER:
        raise InvalidValueError(
            f"FGP cookie embeds message type 0x{data[_PARAM_START]:02x}, not Parameter"
        )
    param = decode_parameter_body(data[_PARAM_START + HEADER_SIZE : _POSITION_START])
    validate_parameter_for_pe(param)
    x, y = _POSITION.unpack_from(data, _POSITION_START)
    _check_position(param, x, y)
    return param, x, y
