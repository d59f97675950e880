"""Connection admission, the shared buffer budget and the per-host problem log (no sockets
needed for most; the process-level behaviour is tested in tests/hostile)."""

from __future__ import annotations

import logging

import pytest

from rsplib.transport.acceptor import Admission, default_per_host, split_connection_limit
from rsplib.transport.budget import BufferBudget
from rsplib.transport.peerlog import peer_problem
from rsplib.wire.tcpmap import (
    MAX_MESSAGE_RECORD,
    FramingError,
    RecordDecoder,
    RecordType,
    encode_header,
)


def test_descriptors_are_shared_between_asap_and_enrp() -> None:
    assert split_connection_limit(960, 256) == (840, 120)  # ulimit -n 1024
    assert split_connection_limit(19_936, 256) == (19_680, 256)
    assert split_connection_limit(8, 256) == (7, 1)
    assert default_per_host(840) == 210
    assert default_per_host(40) == 16
    assert default_per_host(10) == 10


def test_admission_limits_total_per_host_and_rate(caplog: pytest.LogCaptureFixture) -> None:
    admission = Admission(max_connections=3, max_per_host=2, max_rate_per_host=1.0)
    with caplog.at_level(logging.WARNING, logger="rsplib.transport"):
        assert admission.admit("10.0.0.1", "test", 0.0)
        assert admission.admit("10.0.0.1", "test", 0.0)  # a burst of two
        assert not admission.admit("10.0.0.1", "test", 0.0)  # per host
        assert admission.admit("10.0.0.2", "test", 0.0)
        assert not admission.admit("10.0.0.3", "test", 0.0)  # total
        admission.release("10.0.0.1")
        admission.release("10.0.0.2")
        assert not admission.admit("10.0.0.1", "test", 0.1)  # too fast again
        assert admission.admit("10.0.0.1", "test", 1.5)
    assert admission.refused == 3
    refusals = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert len(refusals) == 2  # once per host (and minute)


def test_budget_closes_the_largest_holder() -> None:
    closed: list[str] = []

    class Holder:
        def __init__(self, name: str) -> None:
            self.peer_address = (name, 1)

        def abort(self) -> None:
            closed.append(self.peer_address[0])

    budget = BufferBudget(1000)
    small, large, third = Holder("small"), Holder("large"), Holder("third")
    budget.update(small, 200)
    budget.update(large, 700)
    assert closed == [] and budget.total == 900
    budget.update(third, 300)  # 1200 > 1000: the largest goes
    assert closed == ["large"] and budget.total == 500
    budget.release(small)
    assert budget.total == 300 and budget.evictions == 1


def test_records_are_refused_from_their_header() -> None:
    decoder = RecordDecoder(max_record=MAX_MESSAGE_RECORD)
    # An ASAP record of 70,000 bytes: impossible for a 16-bit message length.
    with pytest.raises(FramingError, match="exceeds"):
        decoder.feed(encode_header(RecordType.DATA, 11, 70_000 - 12))
    with pytest.raises(FramingError, match="exceeds"):
        RecordDecoder().feed(encode_header(RecordType.HEARTBEAT_REQUEST, 0, 4096))
    with pytest.raises(FramingError, match="exceeds"):  # other PPIDs: the receiver's limit
        RecordDecoder(max_record=4096).feed(encode_header(RecordType.DATA, 99, 5000))
    partial = RecordDecoder()
    assert partial.feed(encode_header(RecordType.DATA, 99, 500_000)) == []  # 1 MiB allowed
    assert partial.pending == 12


def test_peer_problems_are_logged_once_per_host_and_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="rsplib.transport"):
        for _ in range(100):
            peer_problem(logging.WARNING, "192.0.2.7", "test-kind", "trouble from %s", "x")
        peer_problem(logging.WARNING, "192.0.2.8", "test-kind", "trouble from %s", "y")
    lines = [r.getMessage() for r in caplog.records if "trouble" in r.getMessage()]
    assert len(lines) == 2
