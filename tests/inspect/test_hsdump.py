"""rsp-hsdump against two peered registrars with a pool element homed at each."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from rsplib.handlespace.checksum import ownership_checksum
from rsplib.inspect.handlespace_dump import HandlespaceDump
from rsplib.inspect.hsdump import DumpError, fetch_handlespace
from tests.integration.conftest import Cluster
from tests.support import REPO


def _dump(address: tuple[str, int]) -> HandlespaceDump:
    return asyncio.run(fetch_handlespace(*address, timeout=5.0))


def _wait_for_pes(address: tuple[str, int], count: int, timeout: float = 20.0) -> HandlespaceDump:
    deadline = time.monotonic() + timeout
    while True:
        dump = _dump(address)
        if dump.pe_count >= count or time.monotonic() > deadline:
            return dump
        time.sleep(0.2)


def test_two_peered_registrars(cluster: Cluster) -> None:
    first = cluster.registrar(0xA1).ready()
    second = cluster.registrar(0xA2, extra=["--peer", f"{first.enrp[0]}:{first.enrp[1]}"]).ready()
    cluster.echo_pe(0x51, registrars=[first]).registered()
    cluster.echo_pe(0x52, registrars=[second]).registered()

    dumps = [_wait_for_pes(r.enrp, 2) for r in (first, second)]
    for dump, registrar in zip(dumps, (first, second), strict=True):
        assert dump.server_id == registrar.identifier
        (pool,) = dump.pools.values()
        assert sorted(pool) == [0x51, 0x52]
        assert pool[0x51].home_registrar_id == 0xA1 and pool[0x52].home_registrar_id == 0xA2
        # The registrar's own Presence checksum agrees with what its table says it owns.
        assert dump.reported_checksum == dump.own_checksum()
    # Both copies of the handlespace agree, owner by owner.
    assert dumps[0].checksums() == dumps[1].checksums()
    handle = next(iter(dumps[0].pools))
    assert dumps[0].checksums()[0xA1] == (ownership_checksum([(handle, 0x51)]), 1)

    # The command itself, on both registrars at once.
    out = subprocess.run(
        [sys.executable, "-m", "rsplib.inspect.hsdump",
         f"127.0.0.1:{first.enrp[1]}", f"127.0.0.1:{second.enrp[1]}"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "Registrar 0x000000a1" in out and "Registrar 0x000000a2" in out
    assert "PE 0x00000051" in out and "home 0x000000a2" in out and "lifetime" in out
    assert "agrees with the table below" in out
    assert "Ownership checksums side by side:" in out

    as_json = subprocess.run(
        [sys.executable, "-m", "rsplib.inspect.hsdump", "--json", f"127.0.0.1:{first.enrp[1]}"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    obj = json.loads(as_json)
    assert obj["registrar"] == 0xA1 and len(obj["pools"][0]["pool_elements"]) == 2
    # The registrars keep running normally after being dumped, and forget the visitor at
    # once (it owns nothing and has no ENRP endpoint): only the real peer stays counted.
    assert first.alive() and second.alive()
    first.wait_for(r"dropped: left \(no ENRP endpoint\)")
    assert "takeover" not in first.log_text().lower()


def test_no_registrar_gives_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        asyncio.run(fetch_handlespace("127.0.0.1", port, timeout=2.0))
    except DumpError as exc:
        assert "refused" in str(exc).lower() or "connect" in str(exc).lower()
    else:
        raise AssertionError("dumping a closed port succeeded")
    result = subprocess.run(
        [sys.executable, "-m", "rsplib.inspect.hsdump", f"127.0.0.1:{port}"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "rsp-hsdump: 127.0.0.1:" in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "rsplib.inspect.hsdump", "nonsense"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
