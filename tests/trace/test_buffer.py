"""The sender's buffer: rate limit, bounded queue, counted drops, datagram packing."""

from __future__ import annotations

import json

import pytest

from rsplib.trace.buffer import TraceBuffer
from rsplib.trace.record import MAX_DATAGRAM, EventRecord, decode_datagram, encode_record


def _line(seq: int, pad: int = 0) -> bytes:
    return encode_record(
        EventRecord(time=1.0, component=1, seq=seq, type="x", fields={"pad": "p" * pad})
    )


def test_rate_limit_refuses_past_the_burst_and_refills() -> None:
    buffer = TraceBuffer(rate=100.0, burst=10, max_queue=1000)
    admitted = [buffer.admit(0.0) for _ in range(15)]
    assert admitted[:10] == list(range(10))
    assert admitted[10:] == [None] * 5
    assert buffer.dropped == 5
    # 0.05 s later five more tokens are there, and the refused ones used up sequence numbers.
    assert [buffer.admit(0.05) for _ in range(6)] == [15, 16, 17, 18, 19, None]


def test_queue_bound_drops_instead_of_growing() -> None:
    buffer = TraceBuffer(rate=1e9, burst=1000, max_queue=3)
    for _ in range(5):
        seq = buffer.admit(0.0)
        if seq is not None:
            buffer.push(_line(seq))
    assert len(buffer) == 3 and buffer.dropped == 2


def test_datagrams_are_bounded_and_carry_the_drop_count() -> None:
    buffer = TraceBuffer(rate=1e9, burst=10_000, max_queue=10_000)
    buffer.admit(0.0)
    buffer.lost_in_send(b"x\ny\n")  # two records lost before
    buffer.sent_records = 2
    for seq in range(1, 200):
        buffer.push(_line(seq, pad=seq % 50))
    datagrams = buffer.pop_datagrams()
    assert len(datagrams) > 1
    records = []
    for datagram in datagrams:
        assert len(datagram) <= MAX_DATAGRAM
        records.extend(decode_datagram(datagram))
    assert [r.seq for r in records] == list(range(1, 200))
    assert records[0].drop == 2 and all(r.drop == 0 for r in records[1:])
    assert len(buffer) == 0


def test_only_full_datagrams_leave_early() -> None:
    buffer = TraceBuffer(rate=1e9, burst=10_000)
    buffer.push(_line(0))
    assert buffer.pop_datagrams(only_full=True) == []
    while not buffer.full_datagram_ready():
        buffer.push(_line(1, pad=40))
    full = buffer.pop_datagrams(only_full=True)
    assert len(full) == 1 and len(buffer) > 0


def test_oversized_line_is_dropped_not_sent() -> None:
    buffer = TraceBuffer()
    assert not buffer.push(b'{"x":"' + b"a" * MAX_DATAGRAM + b'"}')
    assert buffer.dropped == 1 and buffer.pop_datagrams() == []


def test_drop_field_is_valid_json() -> None:
    buffer = TraceBuffer(rate=1.0, burst=1)
    seq = buffer.admit(0.0)
    assert seq == 0 and buffer.admit(0.0) is None
    buffer.push(_line(0))
    (datagram,) = buffer.pop_datagrams()
    assert json.loads(datagram)["drop"] == 1


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        TraceBuffer(rate=0)


def test_closed_until_lets_callers_refuse_cheaply() -> None:
    buffer = TraceBuffer(rate=10.0, burst=1)
    assert buffer.admit(0.0) == 0
    assert buffer.admit(0.0) is None
    # No token before 0.1 s: a caller may refuse without asking, and report it later.
    assert buffer.closed_until == pytest.approx(0.1)
    buffer.skip(5)
    assert buffer.next_seq == 7 and buffer.dropped == 6
    assert buffer.admit(0.1) == 7


def test_events_have_their_own_budget_so_messages_cannot_crowd_them_out() -> None:
    buffer = TraceBuffer(rate=10, burst=5, max_queue=5)
    for _ in range(5):
        seq = buffer.admit(0.0)
        assert seq is not None
        buffer.push(b'{"m":%d}' % seq)
    assert buffer.admit(0.0) is None  # messages: rate and queue exhausted
    seq = buffer.admit_event(0.0)
    assert seq is not None  # a failover event still gets through
    buffer.push(b'{"e":%d}' % seq)
    assert len(buffer) == 6
    # The event budget is bounded as well.
    admitted = sum(buffer.admit_event(0.0) is not None for _ in range(500))
    assert admitted < 150 and buffer.dropped > 300
