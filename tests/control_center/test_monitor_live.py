"""CspMonitor over real UDP, and against real rsp-registrar processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_center.monitor import (
    ComponentInactive,
    CspMonitor,
    ExpectedComponent,
    InactiveReason,
    StatusModel,
)
from rsplib.transport import UdpSender
from rsplib.wire.csp import ComponentGroup, CspReport, component_id, encode_csp
from tests.support import LOOPBACK_REGISTRAR_ARGS

REPO = Path(__file__).resolve().parents[2]
PR1 = component_id(ComponentGroup.REGISTRAR, 0x10000)
PR2 = component_id(ComponentGroup.REGISTRAR, 0x20000)
READY = re.compile(r"ready: ASAP on [\d.]+:(\d+) .*ENRP on ([\d.]+):(\d+)")


def datagram(sender: int, *, interval_ms: int = 100, final: bool = False) -> bytes:
    return encode_csp(
        CspReport(
            sender_id=sender,
            timestamp_us=0,
            report_interval_us=interval_ms * 1000,
            location="test",
            status="" if final else "running",
            workload=None,
            final=final,
        )
    )


def send(address: tuple[str, int], data: bytes) -> None:
    with UdpSender(*address) as sender:
        assert sender.send(data)


def test_reports_are_applied_as_they_arrive_and_the_timer_expires_silence() -> None:
    async def run() -> None:
        model = StatusModel([ExpectedComponent("PR-1", PR1)])
        inactive: list[tuple[float, ComponentInactive]] = []
        loop = asyncio.get_running_loop()
        model.component_inactive.connect(lambda e: inactive.append((loop.time(), e)))
        async with CspMonitor(model, host="127.0.0.1", port=0) as monitor:
            host, port = monitor.address
            assert host == "127.0.0.1" and port > 0
            send(monitor.address, datagram(PR1, interval_ms=100))
            assert await monitor.wait_until(lambda m: m.by_name("PR-1").active, timeout=2)
            sent_at = model.by_name("PR-1").last_report_at
            assert sent_at is not None
            # No further reports: the single timer must fire at 5 x 100 ms.
            assert await monitor.wait_until(lambda m: not m.by_name("PR-1").active, timeout=3)
            fired_at, event = inactive[0]
            assert event.reason is InactiveReason.TIMEOUT
            assert fired_at - sent_at == pytest.approx(0.5, abs=0.2)
            assert fired_at - sent_at >= 0.5 - 1e-6

    asyncio.run(run())


def test_final_report_and_malformed_datagrams_over_udp() -> None:
    async def run() -> None:
        async with CspMonitor(StatusModel(), host="127.0.0.1", port=0) as monitor:
            send(monitor.address, b"garbage")
            send(monitor.address, datagram(PR2, interval_ms=5000))
            assert await monitor.wait_until(lambda m: PR2 in m.components, timeout=2)
            assert monitor.model.stats.malformed == 1
            state = monitor.model.components[PR2]
            assert state.discovered and state.active
            send(monitor.address, datagram(PR2, final=True))
            assert await monitor.wait_until(lambda m: not m.components[PR2].active, timeout=2)
            assert monitor.model.components[PR2].inactive_reason is InactiveReason.FINAL

    asyncio.run(run())


def test_wait_until_times_out_and_ends_when_closed() -> None:
    async def run() -> None:
        monitor = CspMonitor(StatusModel(), host="127.0.0.1", port=0)
        await monitor.start()
        started = time.monotonic()
        assert not await monitor.wait_until(lambda m: PR1 in m.components, timeout=0.2)
        assert time.monotonic() - started >= 0.19
        waiting = asyncio.create_task(monitor.wait_until(lambda m: False, timeout=None))
        await asyncio.sleep(0.05)
        monitor.close()
        assert await asyncio.wait_for(waiting, 2) is False

    asyncio.run(run())


def test_port_in_use_is_a_clear_error() -> None:
    async def run() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            monitor = CspMonitor(host="127.0.0.1", port=port)
            with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
                await monitor.start()

    asyncio.run(run())


# ------------------------------------------------------------------ real registrars


class Registrar:
    def __init__(self, identifier: int, csp_port: int, log: Path, peers: list[str]) -> None:
        args = [
            sys.executable,
            "-m",
            "rsplib.registrar.cli",
            "--identifier",
            f"0x{identifier:x}",
            *LOOPBACK_REGISTRAR_ARGS,
            "--cspserver",
            f"127.0.0.1:{csp_port}",
            "--cspinterval",
            "250",
        ]
        for peer in peers:
            args += ["--peer", peer]
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO
            )

    def enrp_address(self, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = READY.search(self.log.read_text())
            if match:
                return f"{match.group(2)}:{match.group(3)}"
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"registrar not ready: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


@pytest.fixture
def registrars(tmp_path: Path) -> Iterator[list[Registrar]]:
    started: list[Registrar] = []
    yield started
    for registrar in started:
        registrar.stop()


def test_real_registrars_links_kill_timeout_and_sigint_final(
    registrars: list[Registrar], tmp_path: Path
) -> None:
    async def run() -> None:
        model = StatusModel([ExpectedComponent("PR-1", PR1), ExpectedComponent("PR-2", PR2)])
        async with CspMonitor(model, host="127.0.0.1", port=0) as monitor:
            port = monitor.address[1]
            first = Registrar(0x10000, port, tmp_path / "pr1.log", [])
            registrars.append(first)
            peer = first.enrp_address()
            second = Registrar(0x20000, port, tmp_path / "pr2.log", [peer])
            registrars.append(second)

            def linked(m: StatusModel) -> bool:
                one, two = m.by_name("PR-1"), m.by_name("PR-2")
                return (
                    one.active
                    and two.active
                    and any(link.receiver_id == PR2 and link.ppid == 12 for link in one.links)
                    and any(link.receiver_id == PR1 and link.ppid == 12 for link in two.links)
                )

            assert await monitor.wait_until(linked, timeout=10), model.snapshot()
            one = model.by_name("PR-1")
            assert one.report_interval == pytest.approx(0.25)
            assert "PEs in" in one.status and "1 Peer(s)" in one.status
            assert one.links[0].protocol == "ENRP" and one.links[0].duration is None

            # SIGKILL: no FINAL report, so the timeout (5 x 250 ms) must catch it.
            os.kill(second.proc.pid, signal.SIGKILL)
            assert await monitor.wait_until(lambda m: not m.by_name("PR-2").active, timeout=1.5)
            two = model.by_name("PR-2")
            assert two.inactive_reason is InactiveReason.TIMEOUT and two.links == ()

            # SIGINT: the FINAL report makes it inactive well before any timeout.
            assert model.by_name("PR-1").active
            os.kill(first.proc.pid, signal.SIGINT)
            assert await monitor.wait_until(lambda m: not m.by_name("PR-1").active, timeout=1.0)
            assert model.by_name("PR-1").inactive_reason is InactiveReason.FINAL
            assert first.proc.wait(timeout=10) == 0

    asyncio.run(run())
