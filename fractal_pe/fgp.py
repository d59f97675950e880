"""Fractal Generator Protocol (FGP) codec, byte-compatible with rsplib.

FGP runs over the PU-PE session (SCTP PPID 32). Every message starts with a
4-byte header: Type (u8), Flags (u8), Length (u16, whole message). Two types:

* Parameter (PU -> PE, 60 bytes): rectangle size, iteration limit, algorithm
  and the complex corners, doubles in big-endian IEEE-754.
* Data (PE -> PU, 16 + 4*Points bytes): iteration counts of up to 324 pixels,
  row-major from (StartX, StartY). A Data message with StartX = StartY =
  0xFFFFFFFF and no points is the finalizer; there is no separate "done" type.

The decoder is strict about lengths (the header Length must equal the size of
the message) and raises nothing but ``ProtocolError`` subclasses. Acceptance
rules of the receiving sides (PE: size limits; PU: the block must fit the
rectangle) are separate helpers, because they need context the bytes lack.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from rsplib.wire.constants import PPID
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    LimitExceededError,
    TruncatedError,
    UnknownMessageError,
)

FGP_PPID = PPID.FGP
HEADER_SIZE = 4
PARAMETER_SIZE = 60
DATA_HEADER_SIZE = 16
MAX_POINTS = 324
MAX_DATA_SIZE = DATA_HEADER_SIZE + 4 * MAX_POINTS  # 1312
FINALIZER_COORDINATE = 0xFFFFFFFF

# What rsplib's PE accepts in a Parameter message.
MAX_DIMENSION = 65536
MAX_ITERATIONS = 1_000_000

_HEADER = struct.Struct(">BBH")
_PARAMETER_BODY = struct.Struct(">IIII5d")  # width, height, iterations, algorithm, 5 doubles
_DATA_HEADER = struct.Struct(">BBHIII")


class FgpType(IntEnum):
    """FGP message types."""

    PARAMETER = 0x01
    DATA = 0x02


class Algorithm(IntEnum):
    """Algorithm IDs of the Parameter message; any other value means test pattern."""

    MANDELBROT = 1
    MANDELBROT_N = 2


@dataclass(frozen=True, slots=True)
class FgpParameter:
    """The job of one session: a width x height pixel grid over [c1, c2]."""

    width: int
    height: int
    max_iterations: int
    algorithm: int
    c1_real: float
    c1_imag: float
    c2_real: float
    c2_imag: float
    n: float = 2.0


@dataclass(frozen=True, slots=True)
class FgpData:
    """Iteration counts of consecutive pixels, row-major from (start_x, start_y)."""

    start_x: int
    start_y: int
    points: tuple[int, ...]

    @classmethod
    def finalizer(cls) -> FgpData:
        """The message that tells the PU its rectangle is complete."""
        return cls(FINALIZER_COORDINATE, FINALIZER_COORDINATE, ())

    @property
    def is_finalizer(self) -> bool:
        return (
            self.start_x == FINALIZER_COORDINATE
            and self.start_y == FINALIZER_COORDINATE
            and not self.points
        )


FgpMessage = FgpParameter | FgpData


# -- encoding -------------------------------------------------------------------------------


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} {value} does not fit an unsigned 32-bit field")


def encode_parameter_body(param: FgpParameter) -> bytes:
    """The 56 bytes after the header (shared with the cookie layout)."""
    for name in ("width", "height", "max_iterations", "algorithm"):
        _check_u32(name, getattr(param, name))
    return _PARAMETER_BODY.pack(
        param.width,
        param.height,
        param.max_iterations,
        param.algorithm,
        param.c1_real,
        param.c1_imag,
        param.c2_real,
        param.c2_imag,
        param.n,
    )


def encode_parameter(param: FgpParameter, *, length_field: int = PARAMETER_SIZE) -> bytes:
    """A Parameter message; ``length_field`` exists only for the cookie quirk."""
    return _HEADER.pack(FgpType.PARAMETER, 0, length_field) + encode_parameter_body(param)


def encode_data_points(
    start_x: int, start_y: int, values: Sequence[int] | np.ndarray[Any, Any]
) -> bytes:
    """A Data message straight from a sequence or numpy array of counts (fast path)."""
    _check_u32("start_x", start_x)
    _check_u32("start_y", start_y)
    count = len(values)
    if count > MAX_POINTS:
        raise ValueError(f"{count} points exceed the FGP limit of {MAX_POINTS}")
    if isinstance(values, np.ndarray):
        if count and (int(values.min()) < 0 or int(values.max()) > 0xFFFFFFFF):
            raise ValueError("point values must fit an unsigned 32-bit field")
        body = values.astype(">u4", copy=False).tobytes()
    else:
        try:
            body = struct.pack(f">{count}I", *values)
        except struct.error as exc:
            raise ValueError(f"point values must fit an unsigned 32-bit field: {exc}") from None
    size = DATA_HEADER_SIZE + 4 * count
    return _DATA_HEADER.pack(FgpType.DATA, 0, size, start_x, start_y, count) + body


def encode_data(data: FgpData) -> bytes:
    return encode_data_points(data.start_x, data.start_y, data.points)


def encode_fgp(message: FgpMessage) -> bytes:
    """Encode a Parameter or Data message."""
    if isinstance(message, FgpParameter):
        return encode_parameter(message)
    return encode_data(message)


# -- decoding -------------------------------------------------------------------------------


def decode_parameter_body(body: bytes) -> FgpParameter:
    """Parse the 56 bytes after a Parameter header (no checks on the values)."""
    if len(body) != _PARAMETER_BODY.size:
        raise LengthError(f"FGP parameter body is {len(body)} bytes, expected 56")
    width, height, iterations, algorithm, c1r, c1i, c2r, c2i, n = _PARAMETER_BODY.unpack(body)
    return FgpParameter(width, height, iterations, algorithm, c1r, c1i, c2r, c2i, n)


def decode_fgp(data: bytes) -> FgpMessage:
    """Decode one FGP message; raises only ``ProtocolError`` subclasses."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise TruncatedError(f"FGP message of {len(data)} bytes is shorter than its header")
    msg_type, _flags, length = _HEADER.unpack_from(data)
    if msg_type not in (FgpType.PARAMETER, FgpType.DATA):
        raise UnknownMessageError(f"unknown FGP message type 0x{msg_type:02x}", offending=data)
    if length != len(data):
        raise LengthError(f"FGP length field {length} but message has {len(data)} bytes")
    if msg_type == FgpType.PARAMETER:
        if length != PARAMETER_SIZE:
            raise LengthError(f"FGP parameter message is {length} bytes, expected 60")
        return decode_parameter_body(data[HEADER_SIZE:])
    if length < DATA_HEADER_SIZE:
        raise TruncatedError(f"FGP data message of {length} bytes is shorter than 16")
    _, _, _, start_x, start_y, count = _DATA_HEADER.unpack_from(data)
    if count > MAX_POINTS:
        raise LimitExceededError(f"FGP data message claims {count} points (max {MAX_POINTS})")
    if length != DATA_HEADER_SIZE + 4 * count:
        raise LengthError(f"FGP data message of {length} bytes cannot hold {count} points")
    points = struct.unpack_from(f">{count}I", data, DATA_HEADER_SIZE)
    return FgpData(start_x, start_y, points)


# -- acceptance rules of the two sides ----------------------------------------------------------


def validate_parameter_for_pe(param: FgpParameter) -> None:
    """What a PE checks before computing (rsplib's limits, plus finite numbers).

    rsplib accepts NaN/infinite coordinates; we refuse them because they can only
    produce a meaningless picture.
    """
    if param.width > MAX_DIMENSION or param.height > MAX_DIMENSION:
        raise InvalidValueError(
            f"FGP rectangle {param.width}x{param.height} exceeds {MAX_DIMENSION} pixels"
        )
    if param.max_iterations > MAX_ITERATIONS:
        raise InvalidValueError(
            f"FGP MaxIterations {param.max_iterations} exceeds {MAX_ITERATIONS}"
        )
    values = (param.c1_real, param.c1_imag, param.c2_real, param.c2_imag, param.n)
    if not all(math.isfinite(v) for v in values):
        raise InvalidValueError("FGP parameter holds a non-finite coordinate or exponent")


def validate_data_for_pu(data: FgpData, width: int, height: int) -> None:
    """What a PU checks before painting a Data block into its width x height rectangle.

    rsplib checks the start position and the point count; we also refuse a block
    that would run past the last pixel.
    """
    if data.is_finalizer:
        return
    if len(data.points) > MAX_POINTS:
        raise LimitExceededError(f"FGP data block with {len(data.points)} points")
    if data.start_x >= width or data.start_y >= height:
        raise InvalidValueError(
            f"FGP data block starts at ({data.start_x}, {data.start_y}), "
            f"outside the {width}x{height} rectangle"
        )
    end = data.start_y * width + data.start_x + len(data.points)
    if end > width * height:
        raise InvalidValueError(
            f"FGP data block from ({data.start_x}, {data.start_y}) with "
            f"{len(data.points)} points runs past the {width}x{height} rectangle"
        )
