"""Component status (CSP) both ways with rsplib, on this machine (CSP is plain UDP).

rsplib's ``cspmonitor`` shows our registrar, fractal PE and pool user with their status
texts and associations. The other direction (our monitors showing rsplib's components)
needs rsplib's programs running, hence kernel SCTP: ``test_rsplib_in_lab.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.rsplib_programs import cspmonitor_table, need_programs, start, wait_until
from tests.registrar.service_helpers import RegistrarProcess, registrar_args
from tests.support import FractalPeProcess, LoggedProcess, free_udp_port

KEY = "hex:" + "5a" * 32


@pytest.fixture
def processes() -> Iterator[list[LoggedProcess]]:
    started: list[LoggedProcess] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def test_cspmonitor_shows_our_registrar_pe_and_pool_user(
    tmp_path: Path, processes: list[LoggedProcess]
) -> None:
    need_programs("cspmonitor")
    port = free_udp_port()
    monitor = start(
        ["cspmonitor", f"-localaddress=127.0.0.1:{port}", "-updateinterval=200"],
        tmp_path / "cspmonitor.log",
    )
    processes.append(monitor)
    csp = ["--cspserver", f"127.0.0.1:{port}", "--cspinterval", "200"]
    registrar = RegistrarProcess(registrar_args(0x5C1, extra=csp), tmp_path / "pr.log")
    processes.append(registrar)
    registrar.wait_ready()
    asap = f"{registrar.asap[0]}:{registrar.asap[1]}"
    env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY, FRACTAL_KERNEL="numpy")
    common = ["--registrar", asap, "--transport", "tcp", "--poolhandle", "CspPool", *csp]
    pe = FractalPeProcess(
        [*common, "--identifier", "0x5c2", "--local", "127.0.0.1:0", "--block-delay", "100"],
        tmp_path / "pe.log",
        env,
    )
    processes.append(pe)
    pe.wait_registered()
    pu = LoggedProcess(
        "fractal_pu.cli",
        [*common, "--headless", "--identifier", "0x5c3", "--width", "64", "--height", "48",
         "--images", "3", "--output", str(tmp_path / "pu.png")],
        tmp_path / "pu.log",
        env,
    )  # fmt: skip
    processes.append(pu)

    def table_complete() -> bool:
        rows = cspmonitor_table(monitor.log_text())
        pr = rows.get(("registrar", 0x5C1))
        pe_row = rows.get(("pool-element", 0x5C2))
        pu_row = rows.get(("pool-user", 0x5C3))
        return (
            pr is not None
            and "1[1] PEs in 1 Pool(s)" in pr.status
            and pe_row is not None
            and pe_row.associations >= 1
            and pu_row is not None
            and pu_row.associations >= 2  # its registrar and the PE computing its image
        )

    wait_until(
        table_complete,
        30.0,
        lambda: f"cspmonitor rows: {cspmonitor_table(monitor.log_text())}\n{pu.log_text()}",
    )
    rows = cspmonitor_table(monitor.log_text())
    assert asap in rows[("registrar", 0x5C1)].location
    assert rows[("pool-element", 0x5C2)].status  # its sessions or job progress
