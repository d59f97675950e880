"""FGP codec: golden vectors both ways, error cases, properties, receiver checks."""

from __future__ import annotations

import contextlib
import math
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fractal_pe.fgp import (
    FINALIZER_COORDINATE,
    MAX_DATA_SIZE,
    MAX_POINTS,
    Algorithm,
    FgpData,
    FgpParameter,
    decode_fgp,
    encode_data_points,
    encode_fgp,
    validate_data_for_pu,
    validate_parameter_for_pe,
)
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    LimitExceededError,
    ProtocolError,
    TruncatedError,
    UnknownMessageError,
)
from tests.fractal_pe.vectors import load_vector

GOLDEN: dict[str, FgpParameter | FgpData] = {
    "parameter_mandelbrot.hex": FgpParameter(
        800, 600, 1024, Algorithm.MANDELBROT, -1.0, -1.2, 2.0, 1.2, 2.0
    ),
    "parameter_mandelbrot_n.hex": FgpParameter(
        400, 250, 1000, Algorithm.MANDELBROT_N, -1.5, 1.5, 1.5, -1.5, 3.0
    ),
    "data_three_points.hex": FgpData(5, 7, (0, 1024, 0xDEADBEEF)),
    "data_finalizer.hex": FgpData.finalizer(),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_vector_decodes(name: str) -> None:
    assert decode_fgp(load_vector(name)) == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_vector_encodes(name: str) -> None:
    assert encode_fgp(GOLDEN[name]) == load_vector(name)


def test_finalizer_is_recognised_and_only_it() -> None:
    final = decode_fgp(load_vector("data_finalizer.hex"))
    assert isinstance(final, FgpData) and final.is_finalizer
    assert not FgpData(FINALIZER_COORDINATE, FINALIZER_COORDINATE, (1,)).is_finalizer
    assert not FgpData(0, FINALIZER_COORDINATE, ()).is_finalizer
    assert not FgpData(0, 0, ()).is_finalizer


def test_numpy_fast_path_matches_tuple_encoding() -> None:
    values = np.arange(MAX_POINTS, dtype=np.uint32) * 3
    fast = encode_data_points(10, 20, values)
    assert fast == encode_fgp(FgpData(10, 20, tuple(int(v) for v in values)))
    assert len(fast) == MAX_DATA_SIZE == 1312


def test_encoder_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_data_points(0, 0, [0] * (MAX_POINTS + 1))
    with pytest.raises(ValueError):
        encode_data_points(0, 0, [1 << 32])
    with pytest.raises(ValueError):
        encode_data_points(0, 0, np.array([-1], dtype=np.int64))
    with pytest.raises(ValueError):
        encode_data_points(-1, 0, [])
    with pytest.raises(ValueError):
        encode_fgp(FgpParameter(1 << 32, 1, 1, 1, 0.0, 0.0, 1.0, 1.0))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", TruncatedError),
        (b"\x01\x00\x00", TruncatedError),
        (b"\x03\x00\x00\x04", UnknownMessageError),
        (b"\x00\x00\x00\x04", UnknownMessageError),
        # parameter with the header length disagreeing with the size
        (load_vector("parameter_mandelbrot.hex")[:-1], LengthError),
        (load_vector("parameter_mandelbrot.hex") + b"\x00", LengthError),
        # a consistent header but not 60 bytes
        (b"\x01\x00\x00\x08" + bytes(4), LengthError),
        # data shorter than its 16-byte header
        (b"\x02\x00\x00\x08" + bytes(4), TruncatedError),
        # data whose Points disagree with the length
        (struct.pack(">BBHIII", 2, 0, 20, 0, 0, 2) + bytes(4), LengthError),
        # more points than FGP allows
        (
            struct.pack(">BBHIII", 2, 0, 16 + 4 * 325, 0, 0, 325) + bytes(4 * 325),
            LimitExceededError,
        ),
    ],
)
def test_malformed_messages(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        decode_fgp(data)


def test_flags_are_ignored_like_rsplib() -> None:
    data = bytearray(load_vector("data_three_points.hex"))
    data[1] = 0xA5
    assert decode_fgp(bytes(data)) == GOLDEN["data_three_points.hex"]


u32 = st.integers(0, 0xFFFFFFFF)
doubles = st.floats(allow_nan=False)
parameters = st.builds(
    FgpParameter, u32, u32, u32, u32, doubles, doubles, doubles, doubles, doubles
)
data_messages = st.builds(FgpData, u32, u32, st.lists(u32, max_size=MAX_POINTS).map(tuple))


@given(st.one_of(parameters, data_messages))
def test_round_trip(message: FgpParameter | FgpData) -> None:
    assert decode_fgp(encode_fgp(message)) == message


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_doubles_survive_bit_for_bit(value: float) -> None:
    param = FgpParameter(1, 1, 1, 1, value, -value, value, value, value)
    decoded = decode_fgp(encode_fgp(param))
    assert isinstance(decoded, FgpParameter)
    assert struct.pack(">d", decoded.c1_real) == struct.pack(">d", value)
    assert struct.pack(">d", decoded.n) == struct.pack(">d", value)


@given(st.binary(max_size=1400))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_fgp(data)


@given(st.one_of(parameters, data_messages), st.data())
def test_mutated_messages_raise_only_protocol_errors(
    message: FgpParameter | FgpData, data: st.DataObject
) -> None:
    encoded = bytearray(encode_fgp(message))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    with contextlib.suppress(ProtocolError):
        decode_fgp(bytes(encoded[:cut]))


# -- receiver checks ------------------------------------------------------------------------


def test_pe_accepts_rsplib_limits() -> None:
    validate_parameter_for_pe(FgpParameter(65536, 65536, 1_000_000, 1, -2.0, -1.0, 1.0, 1.0))
    validate_parameter_for_pe(FgpParameter(0, 0, 0, 99, 0.0, 0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    "param",
    [
        FgpParameter(65537, 10, 100, 1, -2.0, -1.0, 1.0, 1.0),
        FgpParameter(10, 65537, 100, 1, -2.0, -1.0, 1.0, 1.0),
        FgpParameter(10, 10, 1_000_001, 1, -2.0, -1.0, 1.0, 1.0),
        FgpParameter(10, 10, 100, 1, math.nan, -1.0, 1.0, 1.0),
        FgpParameter(10, 10, 100, 2, -2.0, -1.0, 1.0, 1.0, math.inf),
    ],
)
def test_pe_rejects(param: FgpParameter) -> None:
    with pytest.raises(InvalidValueError):
        validate_parameter_for_pe(param)


def test_pu_accepts_blocks_inside_the_rectangle() -> None:
    validate_data_for_pu(FgpData(0, 0, (1,) * MAX_POINTS), 400, 250)
    validate_data_for_pu(FgpData(399, 249, (7,)), 400, 250)
    validate_data_for_pu(FgpData(300, 249, (7,) * 100), 400, 250)  # ends on the last pixel
    validate_data_for_pu(FgpData.finalizer(), 400, 250)


@pytest.mark.parametrize(
    "block",
    [
        FgpData(400, 0, (1,)),
        FgpData(0, 250, (1,)),
        FgpData(399, 249, (1, 2)),
        FgpData(301, 249, (7,) * 100),
        FgpData(0, 0, (0,) * (MAX_POINTS + 1)),
        FgpData(FINALIZER_COORDINATE, FINALIZER_COORDINATE, (1,)),
    ],
)
def test_pu_rejects(block: FgpData) -> None:
    with pytest.raises(ProtocolError):
        validate_data_for_pu(block, 400, 250)


def test_wireshark_reads_our_messages(tshark_tools: None, tmp_path: Path) -> None:
    """tshark's FGP dissector (SCTP PPID 32) sees the fields we meant to write."""
    messages = [encode_fgp(GOLDEN[name]) for name in sorted(GOLDEN)]
    dump = tmp_path / "fgp.txt"
    dump.write_text("".join("0000 " + " ".join(f"{b:02x}" for b in msg) + "\n" for msg in messages))
    pcap = tmp_path / "fgp.pcap"
    subprocess.run(["text2pcap", "-q", "-S", "9999,9999,32", str(dump), str(pcap)], check=True)
    fields = [
        "fractalgeneratorprotocol.message_type",
        "fractalgeneratorprotocol.message_length",
        "fractalgeneratorprotocol.parameter_width",
        "fractalgeneratorprotocol.parameter_c1imag",
        "fractalgeneratorprotocol.parameter_n",
        "fractalgeneratorprotocol.data_start_x",
        "fractalgeneratorprotocol.data_points",
        "_ws.malformed",
    ]
    command = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    rows = [line.split("|") for line in result.stdout.splitlines()]
    expected = {
        "data_finalizer.hex": ["2", "16", "", "", "", "4294967295", "0", ""],
        "data_three_points.hex": ["2", "28", "", "", "", "5", "3", ""],
        "parameter_mandelbrot.hex": ["1", "60", "800", "-1.2", "2", "", "", ""],
        "parameter_mandelbrot_n.hex": ["1", "60", "400", "1.5", "3", "", "", ""],
    }
    assert rows == [expected[name] for name in sorted(GOLDEN)]
