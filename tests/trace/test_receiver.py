"""The receiving side: gaps, bad input logged once, bounded state, a real UDP endpoint."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rsplib import trace
from rsplib.trace.receiver import TraceParser, open_trace_receiver, read_trace_lines
from rsplib.trace.record import EventRecord, TraceRecord, encode_record


def _line(component: int, seq: int, drop: int = 0) -> bytes:
    return encode_record(EventRecord(time=1.0, component=component, seq=seq, type="x", drop=drop))


def test_gaps_count_as_lost_per_sender() -> None:
    parser = TraceParser()
    parser.feed(_line(1, 0) + b"\n" + _line(1, 1))
    parser.feed(_line(2, 10))
    parser.feed(_line(1, 5, drop=3))
    parser.feed(_line(1, 4))  # late: not counted twice
    assert parser.senders[1].lost == 3 and parser.senders[1].dropped == 3
    assert parser.senders[2].lost == 0
    assert parser.lost == 3 and parser.records == 5


def test_bad_datagrams_are_dropped_and_logged_once_per_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    parser = TraceParser()
    with caplog.at_level(logging.WARNING, "rsplib.trace"):
        for _ in range(5):
            assert parser.feed(b"\xff\xfe junk", "10.0.0.1:5") == []
        assert parser.feed(_line(1, 0) + b"\n{bad", "10.0.0.2:5") == []
    assert parser.bad_datagrams == 6
    assert len(caplog.records) == 2
    # Good senders are unaffected.
    assert len(parser.feed(_line(3, 0), "10.0.0.3:5")) == 1


def test_sender_state_is_bounded() -> None:
    parser = TraceParser(max_senders=10)
    for component in range(100):
        parser.feed(_line(component + 1, 0))
    assert len(parser.senders) == 10


def test_saved_lines_replay() -> None:
    parser = TraceParser()
    lines: list[bytes | str] = [
        _line(1, 0) + b"\n",
        b"\n",
        b"garbage\n",
        _line(1, 1).decode() + "\r\n",
    ]
    records = list(read_trace_lines(lines, parser))
    assert [r.seq for r in records] == [0, 1] and parser.bad_datagrams == 1


def test_component_to_receiver_over_udp() -> None:
    async def scenario() -> list[TraceRecord]:
        got: list[TraceRecord] = []
        receiver = await open_trace_receiver("127.0.0.1", 0, lambda rs, _d: got.extend(rs))
        try:
            trace.start_trace(receiver.address)
            trace.identify(0x0300_0000_0000_0009)
            trace.emit_event("failover", session=3, reason="eof", cells=[1, 2])
            for _ in range(100):
                await asyncio.sleep(0.01)
                if got:
                    break
        finally:
            trace.stop_trace()
            receiver.close()
        return got

    (record,) = asyncio.run(scenario())
    assert isinstance(record, EventRecord) and record.component == 0x0300_0000_0000_0009
    assert record.fields == {"session": 3, "reason": "eof", "cells": (1, 2)}
    assert not trace.TRACER.on
