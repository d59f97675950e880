"""Failures 4 and 5 of the attack review: descriptors and memory (real processes).

4. The default connection limit ignored RLIMIT_NOFILE: ~1,100 connections under
   ``ulimit -n 1024`` locked out every new client and asyncio logged an ``accept() out of
   system resource`` traceback per attempt; one source could take every slot.
5. Memory per peer without a cap: unfinished 1 MiB records, peers that never read their
   heartbeat acks (ending in a ``data_received()`` traceback), a peer trickling one byte
   every few seconds never reaped.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.hostile.conftest import POOL, StartRegistrar, register_pe
from tests.hostile.rawwire import (
    HB_REQUEST,
    PPID_ASAP,
    RawConnection,
    record,
    resolve,
)
from tests.hostile.rawwire import (
    RECORD as RECORD_HEADER,
)
from tests.support import REPO


@contextlib.contextmanager
def raw_sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def open_many(
    opened: list[socket.socket], address: tuple[str, int], count: int, source: str
) -> int:
    """Open up to ``count`` connections from ``source``; returns how many succeeded."""
    made = 0
    for _ in range(count):
        try:
            sock = socket.create_connection(address, timeout=2.0, source_address=(source, 0))
        except OSError:
            continue
        opened.append(sock)
        made += 1
    return made


def assert_quiet_log(text: str) -> None:
    assert "Traceback" not in text
    assert "out of system resource" not in text
    assert "Fatal error" not in text


def test_connection_flood_leaves_room_for_other_clients(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar(open_files=256)
    register_pe(connections, reg.asap, 0x7007, 41007)
    with raw_sockets() as flood:
        open_many(flood, reg.asap, 300, "127.0.0.2")  # more than the process has descriptors
        time.sleep(0.5)
        assert resolve(reg.asap, POOL) == {0x7007: 41007}  # a client from another host
    log = reg.log_text()
    assert_quiet_log(log)
    assert log.count("refusing TCP-mapping connections from 127.0.0.2") == 1
    assert len(log.splitlines()) < 200


def test_running_out_of_descriptors_pauses_accepting_with_one_line() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.fd_server", "48"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        with raw_sockets() as flood:
            open_many(flood, ("127.0.0.1", port), 100, "127.0.0.1")
            time.sleep(2.5)  # accepting fails, pauses, retries, fails again
        time.sleep(1.5)  # the flood is gone: accepting resumes
        client = RawConnection(("127.0.0.1", port))
        try:
            client.send(99, b"\x01\x00\x00\x08ping")
            client.expect(0x01)
        finally:
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _out, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            _out, err = server.communicate()
    assert_quiet_log(err)
    assert 1 <= err.count("cannot accept TCP-mapping connections") <= 3
    assert err.count("accepting TCP-mapping connections again") >= 1


def test_oversized_records_are_refused_from_their_header(
    start_registrar: StartRegistrar,
) -> None:
    reg = start_registrar()
    before = reg.rss_kb()
    header = record(PPID_ASAP, b"")[:4] + (1_048_576).to_bytes(4, "big") + b"\0\0\0\x0b"
    with raw_sockets() as peers:
        open_many(peers, reg.asap, 100, "127.0.0.3")
        for sock in peers:
            # A 1 MiB ASAP record (an ASAP message is at most 64 KiB), nearly all of it.
            with contextlib.suppress(OSError):
                sock.settimeout(2.0)
                sock.sendall(header + b"\xa5" * (1_048_576 - 13))
        time.sleep(0.5)
        grown_mb = (reg.rss_kb() - before) / 1024
    assert grown_mb < 20, f"registrar grew by {grown_mb:.0f} MB"
    assert "exceeds" in reg.log_text()
    assert_quiet_log(reg.log_text())


def test_peers_that_do_not_read_are_closed_without_tracebacks(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar()
    register_pe(connections, reg.asap, 0x8008, 41008)
    before = reg.rss_kb()
    request = record(0, b"\0" * 8, HB_REQUEST) * 4096  # 80 KiB of heartbeat requests
    with raw_sockets() as peers:
        open_many(peers, reg.asap, 10, "127.0.0.4")
        for sock in peers:
            sock.setblocking(False)
        deadline = time.monotonic() + 8.0
        sent = 0
        while peers and time.monotonic() < deadline and sent < 10 * 24 * 1024 * 1024:
            progress = False
            for sock in peers:
                with contextlib.suppress(BlockingIOError, OSError):
                    sent += sock.send(request)
                    progress = True
            if not progress:
                time.sleep(0.05)
            peak_mb = (reg.rss_kb() - before) / 1024
            assert peak_mb < 80, f"registrar grew by {peak_mb:.0f} MB"
        assert resolve(reg.asap, POOL) == {0x8008: 41008}
        # Closed by the registrar (its stall check, or the kernel's TCP_USER_TIMEOUT on
        # the zero window, whichever comes first).
        # Watched without reading, so they stay peers that do not read.
        watch = select.poll()
        for sock in peers:
            watch.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        open_peers = {sock.fileno() for sock in peers}
        deadline = time.monotonic() + 10.0
        while open_peers and time.monotonic() < deadline:
            for fd, _events in watch.poll(100):
                open_peers.discard(fd)
                watch.unregister(fd)
        assert not open_peers, f"{len(open_peers)} non-reading peers still connected"
    assert_quiet_log(reg.log_text())


def test_trickling_peer_is_closed(start_registrar: StartRegistrar) -> None:
    reg = start_registrar()
    sock = socket.create_connection(reg.asap, timeout=2.0)
    try:
        data = record(PPID_ASAP, b"\x05\x00\x00\x10" + b"\0" * 12)
        started = time.monotonic()
        closed_after = None
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(1.0)
                if sock.recv(4096) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue  # nothing to read yet: keep trickling
            except OSError:
                closed_after = time.monotonic() - started
                break
    finally:
        sock.close()
    assert closed_after is not None and closed_after < 9.0
    assert "incomplete record" in reg.log_text()


@pytest.fixture(autouse=True)
def _enough_descriptors() -> None:
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        pytest.skip(f"the test process needs 1024 open files (RLIMIT_NOFILE is {soft})")


def test_memory_budget_closes_the_largest_holders(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar("--buffer-budget", "1")  # 1 MiB for all connection buffers
    register_pe(connections, reg.asap, 0x9009, 41009)
    # 40 unfinished ASAP records of 60 KiB each (the record is 64 KiB): 2.4 MiB held.
    header = RECORD_HEADER.pack(1, 0, 0, 65_536, PPID_ASAP)
    with raw_sockets() as peers:
        open_many(peers, reg.asap, 40, "127.0.0.5")
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.sendall(header + b"\x05\x00\xff\xf4" + b"\0" * (60 * 1024))
        reg.wait_for("memory budget of 1024 KiB for connection buffers exceeded", timeout=5)
        assert resolve(reg.asap, POOL) == {0x9009: 41009}
    assert_quiet_log(reg.log_text())
