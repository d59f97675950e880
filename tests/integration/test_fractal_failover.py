"""The fractal demo with real processes: 2 registrars, 3 fractal PEs, the headless PU.

Everything runs on loopback with ephemeral ports, over the TCP mapping and, for the
failover tests, over kernel SCTP too (tests.transports.both_transports). PEs use
``--block-delay`` so a 160x100 image takes long enough to interrupt. Every
process is started here and stopped by PID in the fixture's finalizer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fractal_pe.kernel import compute_rows
from fractal_pu.fsf import read_fsf
from fractal_pu.split import split_image_covering, sub_parameters
from rsplib.trace.receiver import TraceParser
from rsplib.trace.record import EventRecord
from tests.registrar.service_helpers import RegistrarProcess, registrar_args
from tests.support import FractalPeProcess, patience
from tests.transports import both_transports, cli_transport

REPO = Path(__file__).resolve().parents[2]
FSF = REPO / "assets" / "fsf" / "02-seahorse-valley.fsf"
KEY = "hex:" + "5a" * 32
WIDTH, HEIGHT, SESSIONS = 160, 100, 4


class PeProcess(FractalPeProcess):
    def jobs_started(self) -> int:
        return self.log_text().count("rectangle, algorithm")

    def stop(self, timeout: float = 5.0) -> int | None:
        """A PE of this test dies by SIGKILL (its graceful exit is tested on its own)."""
        self.kill_and_close()
        return self.proc.returncode


class Demo:
    """Two peered registrars and the fractal processes of one test."""

    def __init__(self, tmp: Path, registrars: list[RegistrarProcess], transport: str) -> None:
        self.tmp = tmp
        self.registrars = registrars
        self.transport = transport
        self.pes: dict[int, PeProcess] = {}
        self.env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY, FRACTAL_KERNEL="numpy")

    def registrar_option(self) -> list[str]:
        return [f"{r.asap[0]}:{r.asap[1]}" for r in self.registrars]

    def start_pe(self, identifier: int, *extra: str, env: dict[str, str] | None = None) -> None:
        home = self.registrars[identifier % len(self.registrars)]
        args = [
            "--registrar",
            f"{home.asap[0]}:{home.asap[1]}",
            "--transport",
            cli_transport(self.transport),
            "--identifier",
            f"0x{identifier:x}",
            "--poolhandle",
            "FractalTestPool",
            "--kernel",
            "numpy",
            "--heartbeat-interval",
            "250",
            *extra,
        ]
        self.pes[identifier] = PeProcess(
            args, self.tmp / f"pe-{identifier:x}.log", env if env is not None else self.env
        )

    def wait_pes(self) -> None:
        for pe in self.pes.values():
            pe.wait_registered()

    def start_pu(self, *extra: str) -> subprocess.Popen[bytes]:
        args = [
            sys.executable,
            "-m",
            "fractal_pu.cli",
            "--headless",
            "--registrar",
            ",".join(self.registrar_option()),
            "--transport",
            cli_transport(self.transport),
            "--poolhandle",
            "FractalTestPool",
            "--sessions",
            str(SESSIONS),
            "--width",
            str(WIDTH),
            "--height",
            str(HEIGHT),
            "--config",
            str(FSF),
            "--output",
            str(self.tmp / "out.png"),
            "--report",
            str(self.tmp / "report.json"),
            "--values-output",
            str(self.tmp / "values.npy"),
            # A healthy PE sends more often than this; in the emulated lab VM it is
            # many times slower, so the silence that means "hung" is scaled too.
            "--recvtimeout",
            str(round(patience(3000))),
            "--heartbeat-interval",
            "250",
            "--image-timeout",
            str(round(patience(60000))),
            *extra,
        ]
        log = open(self.tmp / "pu.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            return subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self.env
            )
        finally:
            log.close()

    def finish_pu(self, pu: subprocess.Popen[bytes], timeout: float = 60.0) -> dict[str, Any]:
        try:
            code = pu.wait(timeout=patience(timeout))
        except subprocess.TimeoutExpired:
            pu.kill()
            pu.wait()
            raise AssertionError(f"PU did not finish:\n{self.pu_log()}") from None
        assert code == 0, f"PU exit status {code}:\n{self.pu_log()}"
        report: dict[str, Any] = json.loads((self.tmp / "report.json").read_text())
        return report

    def pu_log(self) -> str:
        return (self.tmp / "pu.log").read_text(errors="replace")

    def wait_serving(self, pes: Sequence[int], timeout: float = 20.0) -> int:
        """A PE among ``pes`` that is computing a job (polls the PE logs)."""
        deadline = time.monotonic() + patience(timeout)
        while time.monotonic() < deadline:
            for identifier in pes:
                if self.pes[identifier].jobs_started():
                    return identifier
            time.sleep(0.02)
        raise AssertionError(f"no PE started a job:\n{self.pu_log()}")

    def start_serving(
        self, identifiers: Sequence[int], *pu_args: str, pe_args: Sequence[str] = ()
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Three slowed-down PEs and a PU computing through them; returns the PU and a PE
        that is serving it (a little while into its job, so a fault interrupts it)."""
        for identifier in identifiers:
            self.start_pe(identifier, "--block-delay", "60", *pe_args)
        self.wait_pes()
        pu = self.start_pu(*pu_args)
        victim = self.wait_serving(identifiers)
        time.sleep(0.3)
        return pu, victim

    def close(self) -> None:
        for pe in self.pes.values():
            pe.stop()


class RegistrarPairs:
    """Two peered registrars per transport, started on first use, shared by a module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pairs: dict[str, list[RegistrarProcess]] = {}
        self.started: list[RegistrarProcess] = []

    def get(self, transport: str) -> list[RegistrarProcess]:
        if transport not in self.pairs:
            first = self._start(0xF1, transport, [])
            second = self._start(0xF2, transport, [first.enrp])
            self.pairs[transport] = [first, second]
        return self.pairs[transport]

    def _start(
        self, identifier: int, transport: str, peers: list[tuple[str, int]]
    ) -> RegistrarProcess:
        args = registrar_args(identifier, peers=peers, transport=transport)
        log = self.tmp / f"pr{identifier:x}-{transport}.log"
        registrar = RegistrarProcess(args, log)
        self.started.append(registrar)
        return registrar.wait_ready()

    def stop_all(self) -> None:
        for registrar in self.started:
            registrar.stop()


@pytest.fixture(scope="module")
def registrar_pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrarPairs]:
    pairs = RegistrarPairs(tmp_path_factory.mktemp("fractal-registrars"))
    try:
        yield pairs
    finally:
        pairs.stop_all()


@pytest.fixture
def demo(tmp_path: Path, registrar_pairs: RegistrarPairs, transport: str) -> Iterator[Demo]:
    scenario = Demo(tmp_path, registrar_pairs.get(transport), transport)
    try:
        yield scenario
    finally:
        scenario.close()


def offline_reference() -> np.ndarray:
    job = read_fsf(FSF)
    image = np.zeros((HEIGHT, WIDTH), dtype=np.uint32)
    for rect in split_image_covering(WIDTH, HEIGHT, SESSIONS):
        param = sub_parameters(job, rect, WIDTH, HEIGHT)
        image[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = compute_rows(
            param, 0, rect.h, kernel="numpy"
        )
    return image


def image_of(report: dict[str, Any]) -> dict[str, Any]:
    assert report["complete"] is True
    (image,) = report["images"]
    assert image["missing_pixels"] == 0
    assert sum(image["pixels_per_pe"].values()) >= WIDTH * HEIGHT
    return image


def failovers_from(image: dict[str, Any], pe: int) -> list[dict[str, Any]]:
    name = f"0x{pe:08x}"
    return [f for cell in image["cells"] for f in cell["failovers"] if f["old_pe"] == name]


@both_transports
def test_sigkill_of_a_serving_pe_still_completes_with_exact_pixels(demo: Demo) -> None:
    pu, victim = demo.start_serving([0xA1, 0xA2, 0xA3])
    demo.pes[victim].signal(signal.SIGKILL)
    image = image_of(demo.finish_pu(pu))
    values = np.load(demo.tmp / "values.npy")
    assert np.array_equal(values, offline_reference())
    moved = failovers_from(image, victim)
    assert moved, f"no failover away from the killed PE:\n{demo.pu_log()}"
    assert all(f["had_cookie"] and f["failover_ms"] is not None for f in moved)
    assert (demo.tmp / "out.png").read_bytes().startswith(b"\x89PNG")


@both_transports
def test_sigstop_of_a_serving_pe_is_left_when_it_falls_silent(demo: Demo) -> None:
    # Found by the session heartbeat over the TCP mapping; over SCTP the stopped PE's
    # kernel still answers heartbeats, and the PU's receive timeout finds it.
    pu, victim = demo.start_serving([0x91, 0x92, 0x93])
    demo.pes[victim].signal(signal.SIGSTOP)
    try:
        image = image_of(demo.finish_pu(pu))
    finally:
        demo.pes[victim].signal(signal.SIGCONT)
    assert np.array_equal(np.load(demo.tmp / "values.npy"), offline_reference())
    moved = failovers_from(image, victim)
    assert moved, f"no failover away from the stopped PE:\n{demo.pu_log()}"
    assert all(f["had_cookie"] for f in moved)


def test_the_pool_user_reports_its_failovers_on_the_trace_channel(demo: Demo) -> None:
    """Failovers are the pool user's own news: one trace event per cell that moved, with
    the old PE's last message, the detection and the first resumed pixel (wall clock)."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    receiver.settimeout(0.0)
    try:
        began = time.time()
        trace = f"127.0.0.1:{receiver.getsockname()[1]}"
        pu, victim = demo.start_serving([0x71, 0x72, 0x73], "--trace", trace)
        killed_at = time.time()
        demo.pes[victim].signal(signal.SIGKILL)
        image = image_of(demo.finish_pu(pu))
        parser = TraceParser()
        events = []
        with contextlib.suppress(BlockingIOError):
            while True:
                events += [
                    r for r in parser.feed(receiver.recv(2048)) if isinstance(r, EventRecord)
                ]
    finally:
        receiver.close()
    failovers = [e.fields for e in events if e.type == "failover"]
    reported = [f for cell in image["cells"] for f in cell["failovers"] if f["new_pe"]]
    assert len(failovers) == len(reported) >= 1, (failovers, reported)
    for event in failovers:
        assert event["old_pe"] == victim and event["cookie"] is True
        assert event["reason"] in ("reset", "eof", "heartbeat-timeout")
        assert began <= event["last_rx"] <= killed_at + 0.1
        assert event["last_rx"] <= event["detected"] <= event["resumed"] <= time.time()
        assert list(event["cells"]) == [event["session"]] and event["image"] == 1


@both_transports
def test_sigint_of_a_serving_pe_hands_over_without_recomputing(demo: Demo) -> None:
    # Session heartbeats of 3 x 1 s, not 3 x 250 ms: this test counts recomputed pixels,
    # and on a loaded machine a PE starved of CPU for 0.75 s would be left (rightly, with
    # its last cookie) for reasons that have nothing to do with the clean stop under test.
    slow_heartbeat = ("--heartbeat-interval", "1000")
    pu, victim = demo.start_serving([0xB1, 0xB2, 0xB3], *slow_heartbeat, pe_args=slow_heartbeat)
    demo.pes[victim].signal(signal.SIGINT)
    image = image_of(demo.finish_pu(pu))
    assert image["pixels_computed_twice"] == 0
    moved = failovers_from(image, victim)
    assert moved and all(f["had_cookie"] and not f["cookie_rejected"] for f in moved)
    assert np.array_equal(np.load(demo.tmp / "values.npy"), offline_reference())
    demo.pes[victim].proc.wait(timeout=10)
    assert demo.pes[victim].proc.returncode == 0
    assert "handed over" in demo.pes[victim].log_text()


def test_failure_mode_pes_pass_the_cells_around(demo: Demo) -> None:
    for identifier in (0xC1, 0xC2, 0xC3):
        demo.start_pe(identifier, "--failure-after", "3", "--test-mode")
    demo.wait_pes()
    image = image_of(demo.finish_pu(demo.start_pu()))
    assert image["failovers"] >= SESSIONS  # each cell needs 13 messages, 3 per PE visit
    assert image["pixels_computed_twice"] == 0  # data is flushed before the cookie
    assert len(image["pixels_per_pe"]) >= 2
    values = np.load(demo.tmp / "values.npy")
    for rect in split_image_covering(WIDTH, HEIGHT, SESSIONS):
        ys, xs = np.mgrid[0 : rect.h, 0 : rect.w]
        expected = (xs * ys) % 256
        assert np.array_equal(values[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w], expected)


def test_forged_cookie_is_rejected_and_the_cell_restarts(demo: Demo) -> None:
    # PE D1 signs with the pool key; D2 and D3 hold another key, so D1's cookies look
    # forged to them. Killing D1 makes every cell it served fail over with such a cookie.
    forger_env = dict(demo.env, RSERPOOL_COOKIE_KEY="hex:" + "77" * 32)
    demo.start_pe(0xD1, "--block-delay", "60")
    demo.wait_pes()
    pu = demo.start_pu("--sessions", "1")
    demo.wait_serving([0xD1])
    demo.start_pe(0xD2, env=forger_env)
    demo.start_pe(0xD3, env=forger_env)
    demo.wait_pes()
    time.sleep(0.2)
    demo.pes[0xD1].signal(signal.SIGKILL)
    report = demo.finish_pu(pu)
    assert report["complete"] is True
    (cell,) = report["images"][0]["cells"]
    assert cell["cookies_rejected"] >= 1 and cell["restarts"] >= 1
    rejecting = [demo.pes[i].log_text() for i in (0xD2, 0xD3)]
    assert any(re.search(r"Cookie Echo rejected: bad signature", t) for t in rejecting)
    job = read_fsf(FSF)
    param = sub_parameters(job, split_image_covering(WIDTH, HEIGHT, 1)[0], WIDTH, HEIGHT)
    values = np.load(demo.tmp / "values.npy")
    assert np.array_equal(values, compute_rows(param, 0, HEIGHT, kernel="numpy"))


def test_a_hung_but_registered_pe_does_not_cost_the_cookie(demo: Demo) -> None:
    """A PE that is registered but stopped (SIGSTOP) leaves the Cookie Echo unanswered.

    That is no rejection: the cell keeps its cookie, waits out the session heartbeat
    and resumes at the next PE from where the killed one stopped (this used to throw
    the cookie away and restart the cell from pixel 0).
    """
    demo.start_pe(0x61, "--block-delay", "60")
    demo.wait_pes()
    pu = demo.start_pu("--sessions", "1")
    demo.wait_serving([0x61])
    demo.start_pe(0x62)
    demo.wait_pes()
    demo.pes[0x62].signal(signal.SIGSTOP)
    try:
        time.sleep(0.4)  # a few cookies
        demo.pes[0x61].signal(signal.SIGKILL)
        time.sleep(0.5)  # the cell's Cookie Echo now waits at the hung PE
        demo.start_pe(0x63, "--block-delay", "20")
        report = demo.finish_pu(pu)
    finally:
        demo.pes[0x62].signal(signal.SIGCONT)
    assert report["complete"] is True
    (cell,) = report["images"][0]["cells"]
    assert cell["cookies_rejected"] == 0 and cell["restarts"] == 0, demo.pu_log()
    resumed = [f for f in cell["failovers"] if f["new_pe"] == "0x00000063"]
    assert resumed and all(f["had_cookie"] for f in resumed), cell["failovers"]
    # Recomputed: at most what was sent after the last cookie (a cookie every 10 data
    # messages of 324 pixels), never the cell's whole 16,000 pixels.
    assert cell["pixels_computed_twice"] <= 10 * 324
    job = read_fsf(FSF)
    param = sub_parameters(job, split_image_covering(WIDTH, HEIGHT, 1)[0], WIDTH, HEIGHT)
    values = np.load(demo.tmp / "values.npy")
    assert np.array_equal(values, compute_rows(param, 0, HEIGHT, kernel="numpy"))


def test_pes_at_max_threads_refuse_and_the_pu_goes_elsewhere(demo: Demo) -> None:
    # Three PEs with one slot each and four sessions: at least one session is refused.
    for identifier in (0xE1, 0xE2, 0xE3):
        demo.start_pe(identifier, "--max-threads", "1", "--block-delay", "20", "--test-mode")
    demo.wait_pes()
    image = image_of(demo.finish_pu(demo.start_pu()))
    refusals = sum(
        pe.log_text().count("limit of 1 connections reached") for pe in demo.pes.values()
    )
    assert refusals >= 1
    assert set(image["pixels_per_pe"]) <= {f"0x{i:08x}" for i in (0xE1, 0xE2, 0xE3)}
