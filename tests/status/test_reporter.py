"""StatusReporter: report contents, cadence, FINAL report, robustness against failures."""

from __future__ import annotations

import asyncio
import socket

import pytest

from rsplib.status import StatusReporter, parse_server
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id, decode_csp


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Collector:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def __call__(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((data, address))


CID = component_id(ComponentGroup.REGISTRAR, 0x1234ABCD)


def make_reporter(**kwargs: object) -> tuple[StatusReporter, Collector, FakeClock]:
    collector = Collector()
    clock = FakeClock()
    defaults: dict[str, object] = {
        "server": ("127.0.0.1", 2960),
        "interval": 0.25,
        "status": lambda: "3[1] PEs in 1 Pool(s), 2 Peer(s)",
        "location": "host: 127.0.0.1:3863",
        "send": collector,
        "clock": clock,
    }
    defaults.update(kwargs)
    reporter = StatusReporter(CID, **defaults)  # type: ignore[arg-type]
    return reporter, collector, clock


def test_report_carries_provider_values_and_relative_timestamp() -> None:
    assocs = [CspAssociation(receiver_id=component_id(1, 7), duration_us=None, ppid=12)]
    reporter, collector, clock = make_reporter(associations=lambda: assocs, workload=lambda: 0.5)
    asyncio.run(reporter.send_report())
    clock.now += 1.5
    asyncio.run(reporter.send_report())
    assert len(collector.sent) == 2
    first, second = (decode_csp(data) for data, _ in collector.sent)
    assert collector.sent[0][1] == ("127.0.0.1", 2960)
    assert first.sender_id == CID
    assert first.timestamp_us == 0
    assert second.timestamp_us == 1_500_000
    assert first.report_interval_us == 250_000
    assert first.status == "3[1] PEs in 1 Pool(s), 2 Peer(s)"
    assert first.location == "host: 127.0.0.1:3863"
    assert first.workload is not None and abs(first.workload - 0.5) < 1e-4
    assert first.associations == tuple(assocs)
    assert not first.final


def test_providers_are_read_at_every_report() -> None:
    counter = iter(range(10))
    reporter, collector, _ = make_reporter(status=lambda: f"report {next(counter)}")
    for _ in range(3):
        asyncio.run(reporter.send_report())
    assert [decode_csp(d).status for d, _ in collector.sent] == [
        "report 0",
        "report 1",
        "report 2",
    ]


def test_unknown_workload_and_out_of_range_workload_clamped() -> None:
    reporter, collector, _ = make_reporter()
    asyncio.run(reporter.send_report())
    assert decode_csp(collector.sent[0][0]).workload is None
    reporter2, collector2, _ = make_reporter(workload=lambda: 1.7)
    asyncio.run(reporter2.send_report())
    assert decode_csp(collector2.sent[0][0]).workload == 1.0


def test_final_report_is_sent_once_with_empty_texts() -> None:
    assocs = [CspAssociation(receiver_id=1, duration_us=5, ppid=12)]
    reporter, collector, _ = make_reporter(associations=lambda: assocs)

    async def go() -> None:
        await reporter.close()
        await reporter.close()

    asyncio.run(go())
    assert len(collector.sent) == 1
    final = decode_csp(collector.sent[0][0])
    assert final.final
    assert final.status == "" and final.location == "" and final.associations == ()


def test_broken_provider_skips_the_report_but_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> str:
        raise RuntimeError("boom")

    reporter, collector, _ = make_reporter(status=broken)
    assert asyncio.run(reporter.send_report()) is False
    assert collector.sent == []
    assert any("cannot build CSP" in r.getMessage() for r in caplog.records)


def test_send_error_is_not_fatal() -> None:
    def failing(data: bytes, address: tuple[str, int]) -> None:
        raise ConnectionRefusedError(111, "refused")

    reporter, _, _ = make_reporter(send=failing)
    assert asyncio.run(reporter.send_report()) is False
    assert reporter.reports_sent == 0


def test_async_sender_is_awaited() -> None:
    got: list[bytes] = []

    async def sender(data: bytes, address: tuple[str, int]) -> None:
        await asyncio.sleep(0)
        got.append(data)

    reporter, _, _ = make_reporter(send=sender)
    assert asyncio.run(reporter.send_report()) is True
    assert len(got) == 1 and decode_csp(got[0]).sender_id == CID


def test_run_reports_at_the_interval() -> None:
    collector = Collector()
    reporter = StatusReporter(CID, interval=0.05, status=lambda: "x", send=collector)

    async def go() -> None:
        task = asyncio.create_task(reporter.run())
        await asyncio.sleep(0.33)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    # 0.33 s at 50 ms: the first report at once, then about six more.
    assert 5 <= len(collector.sent) <= 9


def test_interval_below_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        StatusReporter(CID, interval=0.0, status=lambda: "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:2960", ("127.0.0.1", 2960)), ("[::1]:99", ("::1", 99))],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", ":2960", "host:0", "host:70000", "h:x"])
def test_parse_server_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)


def test_default_sender_delivers_real_udp_datagrams() -> None:
    """Through rsplib.transport's UDP helper to a real socket on loopback."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5.0)
    try:
        reporter = StatusReporter(
            CID, server=receiver.getsockname(), interval=0.1, status=lambda: "real"
        )

        async def go() -> None:
            assert await reporter.send_report()
            await reporter.close()

        asyncio.run(go())
        first = decode_csp(receiver.recv(4096))
        final = decode_csp(receiver.recv(4096))
    finally:
        receiver.close()
    assert first.status == "real" and not first.final
    assert final.final and final.sender_id == CID
