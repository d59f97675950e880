"""Connection admission, the shared buffer budget and the per-host problem log (no sockets
needed for most; the process-level behaviour is tested in tests/hostile)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import pytest

from rsplib.errors import CloseKind
from rsplib.transport import (
    ChannelClosed,
    FlowLimits,
    HeartbeatConfig,
    MessageChannel,
    start_server,
)
from rsplib.transport.acceptor import Admission, default_per_host, split_connection_limit
from rsplib.transport.budget import BufferBudget
from rsplib.transport.peerlog import peer_problem
from rsplib.wire.tcpmap import (
    MAX_MESSAGE_RECORD,
    FramingError,
    RecordDecoder,
    RecordType,
    encode_header,
    encode_record,
    heartbeat_request,
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


# ------------------------------------------------------------------ over real sockets


async def _closed_reason(
    limits: FlowLimits, heartbeat: HeartbeatConfig, attack: Any, *, serve_with: Any = None
) -> tuple[ChannelClosed, socket.socket]:
    """Start a server with ``limits``, let a raw client ``attack`` it; the server side's
    ChannelClosed (and the raw client socket, still open)."""
    closed: asyncio.Future[ChannelClosed] = asyncio.get_running_loop().create_future()

    async def handler(channel: MessageChannel) -> None:
        try:
            if serve_with is not None:
                await serve_with(channel)
            while True:
                await channel.receive()
        except ChannelClosed as exc:
            closed.set_result(exc)

    server = await start_server(
        "127.0.0.1", 0, handler, transport="tcp-mapping", limits=limits, heartbeat=heartbeat
    )
    try:
        sock = socket.create_connection(server.addresses[0], timeout=2.0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await attack(sock)
        return await asyncio.wait_for(closed, 10.0), sock
    finally:
        server.close()
        await server.wait_closed()


def test_a_peer_that_never_reads_is_closed_once_with_a_warning(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    limits = FlowLimits(write_high=16 * 1024, write_low=4096, send_nowait_limit=64 * 1024)

    async def flood_answers(channel: MessageChannel) -> None:
        for _ in range(10_000):  # far more than the limit; the client reads nothing
            channel.send_nowait(33, b"\xaa" * 1024)
            await asyncio.sleep(0)

    async def idle(_sock: socket.socket) -> None:
        return None

    async def main() -> None:
        exc, sock = await _closed_reason(limits, HeartbeatConfig(), idle, serve_with=flood_answers)
        sock.close()
        assert exc.kind is CloseKind.OVERFLOW

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(main())
    warnings = [r.getMessage() for r in caplog.records if "does not read" in r.getMessage()]
    assert len(warnings) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_heartbeat_request_flood_is_closed(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def flood(sock: socket.socket) -> None:
        request = encode_record(heartbeat_request(b"\0" * 8))
        with contextlib.suppress(OSError):
            sock.send(request * 200)

    async def main() -> None:
        exc, sock = await _closed_reason(FlowLimits(), HeartbeatConfig(), flood)
        sock.close()
        assert exc.kind is CloseKind.PROTOCOL

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(main())
    assert any("heartbeat request flood" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
