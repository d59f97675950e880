"""The fractal PE's 76-byte cookie: rsplib's layout, both directions, and its checks."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fractal_pe.cookie_state import (
    COOKIE_MAGIC,
    COOKIE_SIZE,
    decode_fgp_state,
    encode_fgp_state,
    resume_offset,
)
from fractal_pe.fgp import Algorithm, FgpParameter, encode_fgp
from rsplib.wire.errors import InvalidValueError, LengthError, ProtocolError
from tests.fractal_pe.vectors import load_vector

PARAM = FgpParameter(400, 250, 1000, Algorithm.MANDELBROT_N, -1.5, 1.5, 1.5, -1.5, 3.0)


def test_golden_cookie_decodes() -> None:
    assert decode_fgp_state(load_vector("cookie_state.hex")) == (PARAM, 17, 42)


def test_golden_cookie_encodes() -> None:
    assert encode_fgp_state(PARAM, 17, 42) == load_vector("cookie_state.hex")


def test_layout_is_magic_parameter_copy_with_length_4_and_position() -> None:
    cookie = encode_fgp_state(PARAM, 3, 4)
    assert len(cookie) == COOKIE_SIZE == 76
    assert cookie[:8] == COOKIE_MAGIC == b"<FG-TD1>"
    message = encode_fgp(PARAM)
    assert cookie[8:10] == message[:2]
    assert cookie[10:12] == b"\x00\x04"  # not 60: rsplib's quirk
    assert cookie[12:68] == message[4:]
    assert struct.unpack(">II", cookie[68:]) == (3, 4)


def test_embedded_length_is_not_checked() -> None:
    cookie = bytearray(encode_fgp_state(PARAM, 0, 0))
    cookie[10:12] = b"\x00\x3c"
    assert decode_fgp_state(bytes(cookie)) == (PARAM, 0, 0)


@given(
    st.integers(1, 65536),
    st.integers(1, 65536),
    st.integers(0, 1_000_000),
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=5, max_size=5),
    st.data(),
)
def test_round_trip(
    width: int,
    height: int,
    iterations: int,
    algorithm: int,
    numbers: list[float],
    data: st.DataObject,
) -> None:
    param = FgpParameter(width, height, iterations, algorithm, *numbers)
    x = data.draw(st.integers(0, width))
    y = data.draw(st.integers(0, height))
    assert decode_fgp_state(encode_fgp_state(param, x, y)) == (param, x, y)


@pytest.mark.parametrize("size", [0, 8, 75, 77, 84])
def test_wrong_size(size: int) -> None:
    cookie = (load_vector("cookie_state.hex") + bytes(10))[:size]
    with pytest.raises(LengthError):
        decode_fgp_state(cookie)


def test_wrong_magic() -> None:
    cookie = b"<FG-TD2>" + load_vector("cookie_state.hex")[8:]
    with pytest.raises(InvalidValueError):
        decode_fgp_state(cookie)


def test_embedded_message_must_be_a_parameter() -> None:
    cookie = bytearray(load_vector("cookie_state.hex"))
    cookie[8] = 2
    with pytest.raises(InvalidValueError):
        decode_fgp_state(bytes(cookie))


@pytest.mark.parametrize(
    "param",
    [
        FgpParameter(70000, 10, 100, 1, -2.0, -1.0, 1.0, 1.0),
        FgpParameter(10, 10, 2_000_000, 1, -2.0, -1.0, 1.0, 1.0),
        FgpParameter(10, 10, 100, 1, float("nan"), -1.0, 1.0, 1.0),
    ],
)
def test_insane_parameters_are_refused(param: FgpParameter) -> None:
    forged = COOKIE_MAGIC + encode_fgp(param) + struct.pack(">II", 0, 0)
    with pytest.raises(InvalidValueError):
        decode_fgp_state(forged)


@pytest.mark.parametrize(("x", "y"), [(401, 0), (0, 251), (0xFFFFFFFF, 0xFFFFFFFF)])
def test_position_outside_the_rectangle_is_refused(x: int, y: int) -> None:
    forged = load_vector("cookie_state.hex")[:68] + struct.pack(">II", x, y)
    with pytest.raises(InvalidValueError):
        decode_fgp_state(forged)
    with pytest.raises(ValueError):
        encode_fgp_state(PARAM, x, y)


@given(st.binary(min_size=76, max_size=76))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_fgp_state(COOKIE_MAGIC + data[8:])


def test_resume_offset() -> None:
    assert resume_offset(PARAM, 0, 0) == 0
    assert resume_offset(PARAM, 17, 42) == 42 * 400 + 17
    assert resume_offset(PARAM, 400, 3) == 4 * 400  # end of row 3 = start of row 4
    assert resume_offset(PARAM, 0, 250) == 400 * 250
    assert resume_offset(PARAM, 400, 250) == 400 * 250
