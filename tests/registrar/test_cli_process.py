"""The rsp-registrar process: ready line, log file, status reports, clean shutdown, errors."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsplib.transport import sctp_available
from rsplib.wire.csp import ComponentGroup, component_id
from tests.registrar.service_helpers import (
    REPO,
    AsapClient,
    CspCollector,
    ProcessPool,
    make_pe,
    registrar_args,
    wait_until,
)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessPool]:
    pool = ProcessPool(tmp_path)
    yield pool
    pool.close()


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsplib.registrar.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_status_reports_and_final_report_on_sigint(procs: ProcessPool, tmp_path: Path) -> None:
    async def scenario() -> None:
        csp = await CspCollector.start()
        try:
            logfile = tmp_path / "registrar.log"
            args = registrar_args(
                0x3E3,
                extra=[
                    "--cspserver",
                    f"{csp.address[0]}:{csp.address[1]}",
                    "--cspinterval",
                    "100",
                    "--logfile",
                    str(logfile),
                ],
            )
            registrar = procs.registrar(args)
            # With --logfile the ready line goes to the file (the helper reads stderr).
            deadline = time.monotonic() + 15
            while "ready: ASAP on" not in (logfile.read_text() if logfile.exists() else ""):
                assert time.monotonic() < deadline, registrar.log_text()
                await asyncio.sleep(0.05)
            registrar.log_path = logfile
            registrar.wait_ready()
            assert registrar.log_text().count("ready: ASAP on") == 1
            assert registrar.transport == "tcp-mapping"

            cid = component_id(ComponentGroup.REGISTRAR, 0x3E3)
            await wait_until(lambda: cid in csp.latest, timeout=5)
            first = csp.latest[cid]
            assert first.status == "0[0] PEs in 0 Pool(s), 0 Peer(s)"
            assert first.report_interval_us == 100_000
            assert f"127.0.0.1:{registrar.asap[1]}" in first.location
            assert first.associations == ()
            assert first.workload is None

            client = await AsapClient.open(registrar.asap)
            assert not (await client.register(b"CspPool", make_pe(0x10))).rejected
            assert not (await client.register(b"CspPool", make_pe(0x11))).rejected
            assert not (await client.register(b"Other", make_pe(0x12))).rejected
            await wait_until(
                lambda: csp.latest[cid].status == "3[3] PEs in 2 Pool(s), 0 Peer(s)", 5
            )
            timestamps = [r.timestamp_us for r in csp.reports if r.sender_id == cid]
            assert timestamps == sorted(timestamps) and timestamps[0] < timestamps[-1]

            registrar.signal(signal.SIGINT)
            await wait_until(lambda: csp.latest[cid].final, timeout=5)
            await wait_until(client.closed.is_set, timeout=5)
            assert registrar.proc.wait(timeout=10) == 0
            assert "stopped" in registrar.log_text()
            assert "Traceback" not in registrar.log_text()
        finally:
            csp.close()

    asyncio.run(scenario())


def test_sigterm_stops_with_status_zero(procs: ProcessPool) -> None:
    registrar = procs.registrar(registrar_args(0x3E4)).wait_ready()
    assert registrar.alive()
    registrar.signal(signal.SIGTERM)
    assert registrar.proc.wait(timeout=10) == 0
    text = registrar.log_text()
    assert "shutting down" in text and "Traceback" not in text


def test_ready_line_shows_every_asap_endpoint(procs: ProcessPool) -> None:
    args = [*registrar_args(0x3E5), "--asap", "127.0.0.1:0"]
    registrar = procs.registrar(args).wait_ready()
    line = next(x for x in registrar.log_text().splitlines() if "ready:" in x)
    # registrar_args already has one --asap; the extra one adds a second endpoint.
    assert line.count("127.0.0.1:") >= 3, line
    assert "rsp-registrar 0x000003e5 ready" in line


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            *registrar_args(0x3E6)[:2],
            "--asap",
            f"127.0.0.1:{port}",
            "--enrp",
            "127.0.0.1:0",
            "--asap-announce",
            "off",
            "--enrp-announce",
            "off",
            "--transport",
            "tcp",
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("rsp-registrar:")]
    assert len(errors) == 1 and "address" in errors[0].lower(), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    sctp_available(), reason="this kernel has SCTP; the refusal is for kernels without"
)
def test_sctp_requested_without_kernel_support_is_a_clear_error() -> None:
    result = run_cli(*registrar_args(0x3E7)[:-2], "--transport", "sctp")
    assert result.returncode == 1
    assert "SCTP" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_logfile_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("--asap", "127.0.0.1:0", "--logfile", str(tmp_path / "no" / "dir.log"))
    assert result.returncode == 2
    assert "log file" in result.stderr
