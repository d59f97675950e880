"""TCP-mapping record codec: golden bytes, framing errors, chunking properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsplib.wire.errors import ProtocolError
from rsplib.wire.tcpmap import (
    HEADER_SIZE,
    MAX_RECORD,
    FramingError,
    Record,
    RecordDecoder,
    RecordType,
    data_record,
    encode_record,
    heartbeat_ack,
    heartbeat_request,
)

# FGP finalizer (docs/protocol-notes.md#trap-fgp-finalizer) inside a DATA record with PPID 32.
FGP_FINALIZER = bytes.fromhex("020000 10 ffffffff ffffffff 00000000".replace(" ", ""))
FGP_RECORD = bytes.fromhex("01 00 0000 0000001c 00000020".replace(" ", "")) + FGP_FINALIZER


def test_golden_data_record_encodes() -> None:
    assert encode_record(data_record(32, FGP_FINALIZER)) == FGP_RECORD


def test_golden_data_record_decodes() -> None:
    assert RecordDecoder().feed(FGP_RECORD) == [Record(RecordType.DATA, 32, FGP_FINALIZER)]


def test_golden_heartbeat_pair() -> None:
    request = heartbeat_request(b"\x00\x01\x02\x03\x04")
    wire = encode_record(request)
    assert wire == bytes.fromhex("02000000 00000011 00000000 0001020304".replace(" ", ""))
    ack_wire = encode_record(heartbeat_ack(request))
    assert ack_wire[0] == 3 and ack_wire[4:] == wire[4:]


def test_empty_payload_record_is_header_only() -> None:
    wire = encode_record(data_record(0, b""))
    assert len(wire) == HEADER_SIZE
    assert RecordDecoder().feed(wire) == [Record(RecordType.DATA, 0, b"")]


def test_partial_input_waits_for_rest() -> None:
    decoder = RecordDecoder()
    assert decoder.feed(FGP_RECORD[:5]) == []
    assert decoder.feed(FGP_RECORD[5:20]) == []
    assert decoder.pending == 20
    assert decoder.feed(FGP_RECORD[20:]) == [Record(RecordType.DATA, 32, FGP_FINALIZER)]
    assert decoder.pending == 0


def test_flags_are_ignored_and_stream_kept() -> None:
    wire = bytearray(encode_record(Record(RecordType.DATA, 99, b"xyz", stream=7)))
    wire[1] = 0xFF
    assert RecordDecoder().feed(bytes(wire)) == [Record(RecordType.DATA, 99, b"xyz", 7)]


def test_largest_record_round_trips() -> None:
    payload = bytes(range(256)) * ((MAX_RECORD - HEADER_SIZE) // 256)
    payload += b"\x01" * (MAX_RECORD - HEADER_SIZE - len(payload))
    wire = encode_record(data_record(4711, payload))
    assert len(wire) == MAX_RECORD
    assert RecordDecoder().feed(wire)[0].payload == payload


def test_encoder_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError):
        encode_record(data_record(1, b"\0" * (MAX_RECORD - HEADER_SIZE + 1)))


def _header(rtype: int, length: int, ppid: int = 0) -> bytes:
    return bytes([rtype, 0, 0, 0]) + length.to_bytes(4, "big") + ppid.to_bytes(4, "big")


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(_header(0, 12), id="type-0"),
        pytest.param(_header(4, 12), id="type-4"),
        pytest.param(_header(1, 11), id="length-below-header"),
        pytest.param(_header(1, MAX_RECORD + 1), id="length-over-limit"),
        pytest.param(_header(1, 14, 11) + b"\x01\x00", id="asap-shorter-than-header"),
        pytest.param(_header(1, 20, 11) + bytes.fromhex("0100000c") + bytes(4), id="asap-long"),
        pytest.param(_header(1, 20, 12) + bytes.fromhex("01000010") + bytes(4), id="enrp-short"),
        pytest.param(_header(1, 20, 32) + bytes.fromhex("01000003") + bytes(4), id="fgp-below-4"),
        pytest.param(_header(1, 20, 11) + bytes.fromhex("01000006") + b"ab\x00x", id="bad-pad"),
    ],
)
def test_framing_errors(wire: bytes) -> None:
    decoder = RecordDecoder()
    with pytest.raises(FramingError):
        decoder.feed(wire)
    assert decoder.failed
    # The stream position is lost: even a valid record is refused afterwards.
    with pytest.raises(FramingError):
        decoder.feed(FGP_RECORD)


def test_oversized_length_rejected_from_header_alone() -> None:
    # No need to buffer a megabyte before refusing a bogus length.
    with pytest.raises(FramingError):
        RecordDecoder().feed(_header(1, 0xFFFFFFFF))


def test_inner_length_with_zero_padding_accepted() -> None:
    message = bytes.fromhex("0b000006") + b"ab" + b"\x00\x00"
    wire = encode_record(data_record(11, message))
    assert RecordDecoder().feed(wire)[0].payload == message


def test_other_ppids_have_no_inner_check() -> None:
    wire = encode_record(data_record(33, b"\x01\x00\xff\xff"))
    assert RecordDecoder().feed(wire)[0].payload == b"\x01\x00\xff\xff"


def _rserpool_message(body: bytes) -> bytes:
    return bytes([1, 0]) + (4 + len(body)).to_bytes(2, "big") + body


records_strategy = st.lists(
    st.one_of(
        st.builds(
            lambda ppid, body: data_record(ppid, _rserpool_message(body)),
            st.sampled_from([11, 12, 32]),
            st.binary(max_size=300),
        ),
        st.builds(
            data_record,
            st.integers(0, 0xFFFFFFFF).filter(lambda p: p not in (11, 12, 32)),
            st.binary(max_size=300),
        ),
        st.builds(heartbeat_request, st.binary(max_size=16)),
        st.builds(
            Record,
            st.just(RecordType.HEARTBEAT_ACK),
            st.just(0),
            st.binary(max_size=16),
            st.integers(0, 0xFFFF),
        ),
    ),
    max_size=12,
)


@given(records=records_strategy, cuts=st.lists(st.integers(0, 10_000), max_size=20))
def test_any_chunking_gives_same_records(records: list[Record], cuts: list[int]) -> None:
    stream = b"".join(encode_record(r) for r in records)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = RecordDecoder()
    out: list[Record] = []
    for start, end in itertools.pairwise(points):
        out += decoder.feed(stream[start:end])
    assert out == records
    assert decoder.pending == 0


@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    decoder = RecordDecoder()
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for start, end in itertools.pairwise(points):
            for record in decoder.feed(data[start:end]):
                assert isinstance(record.type, RecordType)
    except ProtocolError:
        assert decoder.failed
