"""Trace records: round trip, and the decoder's refusal of everything off-format."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsplib.trace.record import (
    MAX_DATAGRAM,
    EventRecord,
    MessageRecord,
    TraceFormatError,
    decode_datagram,
    decode_line,
    encode_record,
    escape_bytes,
    record_json,
    safe_text,
)

MESSAGE = MessageRecord(
    time=1700000000.25,
    component=0x0100_0000_0000_0042,
    seq=7,
    direction="tx",
    peer="127.0.0.1:3863",
    local="127.0.0.1:40000",
    proto="asap",
    type="REGISTRATION",
    flags=0,
    length=88,
    pool_handle="FractalGeneratorPool",
    pe=0x42,
    fields={"policy": "ROUND_ROBIN", "home": 0, "pes": (1, 2, 3)},
    raw=b"\x01\x00\x00\x08abcd",
)
FAILOVER = EventRecord(
    time=1700000001.5,
    component=0x0300_0000_0000_0001,
    seq=8,
    type="failover",
    fields={
        "session": 1,
        "reason": "heartbeat-timeout",
        "old_pe": 5,
        "new_pe": 6,
        "cookie": True,
        "last_rx": None,
        "detected": 1700000001.0,
        "resumed": 1700000001.4,
        "cells": (0, 3),
        "image": 1,
    },
    drop=2,
)


@pytest.mark.parametrize("record", [MESSAGE, FAILOVER])
def test_round_trip(record: MessageRecord | EventRecord) -> None:
    line = encode_record(record)
    assert b"\n" not in line
    assert decode_line(line) == record


def test_common_fields_are_as_agreed() -> None:
    obj = json.loads(encode_record(FAILOVER))
    assert obj["v"] == 1 and obj["k"] == "ev" and obj["c"] == "0300000000000001"
    assert obj["seq"] == 8 and obj["drop"] == 2 and obj["type"] == "failover"
    assert obj["cells"] == [0, 3] and obj["last_rx"] is None
    msg = json.loads(encode_record(MESSAGE))
    assert (msg["k"], msg["dir"], msg["proto"], msg["ph"], msg["pe"]) == (
        "msg",
        "tx",
        "asap",
        "FractalGeneratorPool",
        0x42,
    )
    assert msg["raw"] == "0100000861626364"


def _with(**changes: object) -> bytes:
    obj = record_json(MESSAGE)
    obj.update(changes)
    obj = {k: v for k, v in obj.items() if v is not ...}
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1,2]",
        _with(v=2),
        _with(v=True),
        _with(k="other"),
        _with(t="now"),
        _with(t=...),
        b'{"v":1,"k":"ev","t":NaN,"c":"0000000000000001","seq":0,"type":"x"}',
        b'{"v":1,"k":"ev","t":1e999,"c":"0000000000000001","seq":0,"type":"x"}',
        _with(c="12"),
        _with(c="zzzzzzzzzzzzzzzz"),
        _with(seq=-1),
        _with(seq=1.5),
        _with(seq=True),
        _with(dir="up"),
        _with(proto="http"),
        _with(type="has space"),
        _with(type=""),
        _with(flags=256),
        _with(pe=2**32),
        _with(ph=5),
        _with(raw="XYZ"),
        _with(raw="0"),
        _with(peer="a b"),
        _with(nested={"a": 1}),
        _with(BadKey=1),
        _with(many=list(range(300))),
        _with(**{f"f{i}": i for i in range(40)}),
        b"{" + b" " * MAX_DATAGRAM + b"}",
    ],
)
def test_bad_lines_are_refused(line: bytes) -> None:
    with pytest.raises(TraceFormatError):
        decode_line(line)


def test_hostile_text_is_defused() -> None:
    line = _with(ph="pool\x1b[2J\u202eevil", note="x" * 1000)
    record = decode_line(line)
    assert isinstance(record, MessageRecord)
    assert record.pool_handle == "pool\\u001b[2J\\u202eevil"
    note = record.fields["note"]
    assert isinstance(note, str) and len(note) <= 256


def test_escape_bytes_keeps_printable_ascii_only() -> None:
    assert escape_bytes(b"Pool\\\x00\xff") == "Pool\\x5c\\x00\\xff"
    assert safe_text("a\tb") == "a\\u0009b"


def test_datagram_of_several_lines() -> None:
    data = encode_record(MESSAGE) + b"\n" + encode_record(FAILOVER) + b"\n"
    assert decode_datagram(data) == [MESSAGE, FAILOVER]
    with pytest.raises(TraceFormatError):
        decode_datagram(data + b"garbage\n")  # all or nothing
    with pytest.raises(TraceFormatError):
        decode_datagram(b"\n\n")


@given(st.binary(max_size=1500))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(TraceFormatError):
        decode_datagram(data)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20)),
        max_size=8,
    )
)
def test_event_fields_round_trip(fields: dict[str, object]) -> None:
    fields = {k: v for k, v in fields.items() if k not in ("v", "k", "t", "c", "seq", "drop")}
    fields.pop("type", None)
    record = EventRecord(time=1.0, component=1, seq=0, type="x", fields=fields)  # type: ignore[arg-type]
    decoded = decode_line(encode_record(record))
    assert decoded.fields == {
        k: safe_text(v) if isinstance(v, str) else v for k, v in fields.items()
    }
