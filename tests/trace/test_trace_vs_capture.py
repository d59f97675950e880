"""The trace of a real run against a loopback capture of the same run, read by rsp-decode.

Two peered registrars, two fractal PEs and the headless fractal PU run with ``--trace``
to a UDP socket of this test while dumpcap records TCP on lo. For every connection between
these processes, the messages that rsp-decode finds in the capture (ASAP, ENRP, FGP, in
order) must be exactly the ones the sender traced as sent and the receiver as received.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsplib.trace.receiver import TraceParser
from rsplib.trace.record import MessageRecord
from tests.registrar.service_helpers import RegistrarProcess, registrar_args
from tests.support import REPO, FractalPeProcess, LoopbackCapture

FSF = REPO / "assets" / "fsf" / "02-seahorse-valley.fsf"
KEY = "hex:" + "5a" * 32
POOL = "TraceCheckPool"

pytestmark = pytest.mark.tshark


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _registrar_args(
    identifier: int, asap: int, enrp: int, peers: list[tuple[str, int]], extra: list[str]
) -> list[str]:
    """The loopback registrar arguments with these ASAP and ENRP ports instead of 0."""
    args = registrar_args(identifier, peers=peers, extra=extra)
    args[args.index("127.0.0.1:0")] = f"127.0.0.1:{asap}"  # --asap comes first
    args[args.index("127.0.0.1:0")] = f"127.0.0.1:{enrp}"
    return args


@pytest.fixture
def trace_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _read_trace(sock: socket.socket) -> tuple[list[MessageRecord], TraceParser]:
    sock.setblocking(False)
    parser = TraceParser()
    records: list[MessageRecord] = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return records, parser
        records.extend(r for r in parser.feed(data) if isinstance(r, MessageRecord))


def test_trace_matches_the_capture(
    tshark_tools: None, tmp_path: Path, trace_socket: socket.socket
) -> None:
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe_port = probe.getsockname()[1]
    # Every connection of the run goes to one of these server ports, so the capture holds
    # only this run even while other tests use loopback.
    asap1, enrp1, asap2, enrp2, pe1, pe2 = (_free_tcp_port() for _ in range(6))
    ports = " or ".join(f"tcp port {p}" for p in (asap1, enrp1, asap2, enrp2, pe1, pe2))
    capture = LoopbackCapture(
        f"udp port {probe_port} or {ports}", tmp_path / "run.pcapng", tmp_path / "dumpcap.log"
    )
    trace = ["--trace", f"127.0.0.1:{trace_socket.getsockname()[1]}"]
    env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY, FRACTAL_KERNEL="numpy")
    started: list[RegistrarProcess | FractalPeProcess] = []
    try:
        capture.wait_ready(probe_port)
        first = RegistrarProcess(
            _registrar_args(0xE1, asap1, enrp1, [], trace), tmp_path / "pr1.log"
        )
        started.append(first)
        first.wait_ready()
        second = RegistrarProcess(
            _registrar_args(0xE2, asap2, enrp2, [first.enrp], trace), tmp_path / "pr2.log"
        )
        started.append(second)
        second.wait_ready()
        for number, home, port in ((1, first, pe1), (2, second, pe2)):
            pe = FractalPeProcess(
                ["--registrar", f"{home.asap[0]}:{home.asap[1]}", "--transport", "tcp",
                 "--identifier", f"0x{0xE0 + number:x}", "--poolhandle", POOL,
                 "--kernel", "numpy", "--local", f"127.0.0.1:{port}", *trace],
                tmp_path / f"pe{number}.log", env,
            )  # fmt: skip
            started.append(pe)
            pe.wait_registered()
        pu = subprocess.run(
            [sys.executable, "-m", "fractal_pu.cli", "--headless",
             "--registrar", f"{first.asap[0]}:{first.asap[1]}", "--transport", "tcp",
             "--poolhandle", POOL, "--sessions", "2", "--width", "48", "--height", "32",
             "--config", str(FSF), "--output", str(tmp_path / "out.png"),
             "--report", str(tmp_path / "report.json"), *trace],
            cwd=REPO, env=env, capture_output=True, timeout=120,
        )  # fmt: skip
        assert pu.returncode == 0, pu.stdout.decode(errors="replace")
        # PEs first (they deregister with their registrars), then the registrars.
        for process in reversed(started):
            process.stop()
        time.sleep(0.5)  # the last segments reach the capture
    finally:
        for process in reversed(started):
            process.stop()
        capture.stop()
        probe.close()

    records, parser = _read_trace(trace_socket)
    assert parser.bad_datagrams == 0 and parser.lost == 0, "the trace dropped records"
    decoded = subprocess.run(
        [str(Path(sys.executable).parent / "rsp-decode"), str(capture.path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip

    # Per connection direction (src -> dst): message types in order.
    captured: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line in decoded.splitlines():
        obj = json.loads(line)
        if obj.get("protocol") in ("asap", "enrp", "fgp") and "type" in obj:
            captured[(obj["src"], obj["dst"])].append(obj["type"])
    sent: dict[tuple[str, str], list[str]] = defaultdict(list)
    received: dict[tuple[str, str], list[str]] = defaultdict(list)
    ours: set[str] = set()
    for record in sorted(records, key=lambda r: (r.component, r.seq)):
        assert record.local is not None
        ours.add(record.local)
        if record.direction == "tx":
            sent[(record.local, record.peer)].append(record.type)
        else:
            received[(record.peer, record.local)].append(record.type)

    between_ours = {k: v for k, v in captured.items() if k[0] in ours and k[1] in ours}
    # Registration, resolution, keep-alive, ENRP and FGP all took place and were traced.
    all_types = {t for types in between_ours.values() for t in types}
    expected = {"REGISTRATION", "HANDLE_RESOLUTION", "PRESENCE", "COOKIE", "FGP_DATA"}
    assert expected <= all_types, " ".join(sorted(all_types))
    assert set(sent) == set(between_ours)
    for direction, types in between_ours.items():
        assert sent[direction] == types, direction
        assert received[direction] == types, direction
