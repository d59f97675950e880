"""Real processes on loopback: 2 registrars, 3 echo PEs, a PU session streaming data.

The PU runs in the test process (the library's PoolUserSession); registrars
and PEs are separate processes that the tests kill, stop and restart by PID.
"""

from __future__ import annotations

import asyncio
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, AsapService
from rsplib.session.pu_machine import (
    Connected,
    CookieEchoed,
    FailoverCompleted,
    FailoverReason,
    FailoverStarted,
    SessionEvent,
)
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import HeartbeatConfig
from tests.integration.conftest import Cluster
from tests.integration.processes import REPO, EchoPe, Registrar, free_udp_port, random_group
from tests.support import patience
from tests.transports import both_transports

POOL = "EchoPool"
HEARTBEAT = HeartbeatConfig(interval=0.25, misses=2)
PU_ASAP = AsapConfig(registrar_connect_timeout=1.0, registrar_response_timeout=1.0)
COUNT = struct.Struct("!Q")
PE_IDS = (0x501, 0x502, 0x503)


def start_pool(cluster: Cluster) -> tuple[list[Registrar], dict[int, EchoPe]]:
    first = cluster.registrar(0xA1).ready()
    second = cluster.registrar(0xA2, extra=["--peer", f"{first.enrp[0]}:{first.enrp[1]}"]).ready()
    registrars = [first, second]
    pes = {pe_id: cluster.echo_pe(pe_id, registrars=registrars) for pe_id in PE_IDS}
    for pe in pes.values():
        pe.registered()
    return registrars, pes


@dataclass
class Stream:
    """A PU session that writes a message every few ms and collects the echoes."""

    session: PoolUserSession
    events: list[tuple[float, SessionEvent]] = field(default_factory=list)
    echoes: list[tuple[float, bytes]] = field(default_factory=list)
    sent: int = 0

    async def writer(self) -> None:
        while True:
            self.sent += 1
            await self.session.write(b"message %06d" % self.sent)
            await asyncio.sleep(0.005)

    async def reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.session.read()
            if not data:
                return
            self.echoes.append((loop.time(), data))

    async def wait_echoes(self, count: int, timeout: float = 5.0) -> None:
        target = len(self.echoes) + count
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.echoes) < target:
            assert asyncio.get_running_loop().time() < deadline, (
                f"only {len(self.echoes)} echoes; events {self.events}"
            )
            await asyncio.sleep(0.01)

    def completed(self) -> list[FailoverCompleted]:
        return [e for _t, e in self.events if isinstance(e, FailoverCompleted)]


async def streaming(
    registrars: list[Registrar], transport: str
) -> tuple[Stream, list[asyncio.Task[None]]]:
    stream_events: list[tuple[float, SessionEvent]] = []
    loop = asyncio.get_running_loop()
    session = await PoolUserSession.connect(
        POOL,
        registrars=[r.asap for r in registrars],
        asap_config=PU_ASAP,
        transport=transport,
        heartbeat=HEARTBEAT,
        on_event=lambda event: stream_events.append((loop.time(), event)),
    )
    stream = Stream(session, stream_events)
    tasks = [asyncio.create_task(stream.writer()), asyncio.create_task(stream.reader())]
    await stream.wait_echoes(20, timeout=patience(5.0))
    return stream, tasks


async def finish(stream: Stream, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await stream.session.close()


def run(coro: object, limit: float = 40.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, patience(limit))  # type: ignore[arg-type]

    asyncio.run(bounded())


@both_transports
def test_sigkill_of_the_serving_pe_continues_on_another_pe_after_a_cookie_echo(
    cluster: Cluster,
) -> None:
    registrars, pes = start_pool(cluster)

    async def scenario() -> None:
        stream, tasks = await streaming(registrars, cluster.transport)
        old = stream.session.pool_element
        assert old is not None
        before = len(stream.echoes)
        pes[old.identifier].kill()
        await stream.wait_echoes(20)
        new = stream.session.pool_element
        assert new is not None and new.identifier != old.identifier
        kinds = [type(e) for _t, e in stream.events]
        assert kinds == [Connected, FailoverStarted, CookieEchoed, FailoverCompleted]
        completed = stream.completed()[0]
        assert completed.old_pe == old and completed.new_pe == new and completed.had_cookie
        # The new PE counted on from the echoed cookie: its cookies include the bytes
        # echoed by the killed PE (all echoes so far are 14 bytes each).
        await asyncio.sleep(0.05)
        assert stream.session.cookie is not None
        (count,) = COUNT.unpack(stream.session.cookie)
        assert count >= 14 * before
        await finish(stream, tasks)
        pes[new.identifier].wait_for("restored from a Cookie Echo")

    run(scenario())


# TCP mapping only: its heartbeats are answered by the PE process, so a stopped one is
# noticed. SCTP heartbeats are answered by the PE host's kernel, which a SIGSTOP does
# not stop; over SCTP a hung PE is the application's receive timeout to find (the
# fractal PU's, tested over both transports in test_fractal_failover.py).
def test_sigstop_of_the_serving_pe_fails_over_within_the_heartbeat_timeout(
    cluster: Cluster,
) -> None:
    registrars, pes = start_pool(cluster)

    async def scenario() -> None:
        stream, tasks = await streaming(registrars, cluster.transport)
        old = stream.session.pool_element
        assert old is not None
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        pes[old.identifier].signal(signal.SIGSTOP)
        try:
            await stream.wait_echoes(10, timeout=HEARTBEAT.timeout + 3.0)
        finally:
            pes[old.identifier].signal(signal.SIGCONT)
        completed = stream.completed()
        assert completed and completed[0].old_pe == old and completed[0].had_cookie
        assert completed[0].new_pe.identifier != old.identifier
        started_at = next(t for t, e in stream.events if isinstance(e, FailoverStarted))
        done_at = next(t for t, e in stream.events if isinstance(e, FailoverCompleted))
        # Detected by the session heartbeat (plus one interval of timer granularity).
        assert started_at - stopped_at < HEARTBEAT.timeout + HEARTBEAT.interval + 0.5
        assert done_at - stopped_at < HEARTBEAT.timeout + HEARTBEAT.interval + 1.0
        started = next(e for _t, e in stream.events if isinstance(e, FailoverStarted))
        # The reader or a writer may notice the closed channel first; either way the
        # cause is the transport's heartbeat timeout.
        assert started.reason is FailoverReason.TIMEOUT, started.reason
        await finish(stream, tasks)

    run(scenario())


@both_transports
def test_sigkill_of_the_home_registrar_moves_the_pes_and_the_pu_still_resolves(
    cluster: Cluster,
) -> None:
    registrars, pes = start_pool(cluster)
    by_port = {r.asap: r for r in registrars}
    homes = {pe_id: by_port[pe.homes()[-1]] for pe_id, pe in pes.items()}
    victim = max(registrars, key=lambda r: sum(h is r for h in homes.values()))
    survivor = next(r for r in registrars if r is not victim)
    moved = [pe_id for pe_id, home in homes.items() if home is victim]
    victim.kill()
    deadline = time.monotonic() + 10.0
    for pe_id in moved:
        # Wait for the survivor to be the newest home (a count of home changes could be
        # satisfied by a late re-hunt that picked the victim just before it was killed).
        while pes[pe_id].homes()[-1] != survivor.asap:
            assert time.monotonic() < deadline, pes[pe_id].log_text()
            time.sleep(0.02)
        # Registered again, with the same identity, at the new home.
        while pes[pe_id].count(rf"PE 0x{pe_id:08x} registered") < 2:
            assert time.monotonic() < deadline, pes[pe_id].log_text()
            time.sleep(0.02)

    async def scenario() -> None:
        async with AsapService(
            PU_ASAP, registrars=[r.asap for r in registrars], transport=cluster.transport
        ) as asap:
            found = await asap.resolve(POOL.encode(), 0xFFFFFFFF)
            assert sorted(pe.identifier for pe in found) == sorted(PE_IDS)

    run(scenario())


def test_discovery_by_multicast_announces_on_loopback(cluster: Cluster) -> None:
    group, port = random_group(), free_udp_port()
    announce = ["--asap-announce", f"{group}:{port}", "--announce-interface", "127.0.0.1"]
    cluster.registrar(0xA3, extra=announce).ready()
    listen = ["--announce-interface", "127.0.0.1", "--announce", f"{group}:{port}"]
    pe = cluster.echo_pe(0x504, extra=listen).registered()
    assert pe.homes(), pe.log_text()

    async def scenario() -> None:
        session = await PoolUserSession.connect(
            POOL,
            announce=AnnounceOptions("127.0.0.1", group, port),
            asap_config=AsapConfig(registrar_connect_timeout=5.0),
            transport="tcp-mapping",
        )
        async with session:
            assert session.pool_element is not None
            assert session.pool_element.identifier == 0x504
            await session.write(b"found by announce")
            assert await asyncio.wait_for(session.read(), 3.0) == b"found by announce"

    run(scenario())


def test_terminal_pu_echoes_lines_and_reports_a_missing_registrar(cluster: Cluster) -> None:
    registrar = cluster.registrar(0xA4).ready()
    cluster.echo_pe(0x505, registrars=[registrar]).registered()
    command = [sys.executable, "-m", "rsplib.examples.terminal_pu", "--transport", "tcp"]
    done = subprocess.run(
        [*command, "--registrar", registrar.asap_text],
        input=b"first line\nsecond line\n",
        capture_output=True,
        timeout=20,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "*** connected to PE 0x00000505" in out
    assert "first line\nsecond line\n" in out

    registrar.kill()
    began = time.monotonic()
    failed = subprocess.run(
        [*command, "--registrar", registrar.asap_text, "--registrar-connect-timeout", "500"],
        input=b"",
        capture_output=True,
        timeout=20,
        cwd=REPO,
    )
    elapsed = time.monotonic() - began
    assert failed.returncode == 1
    assert "no registrar answered within 0.5 s" in failed.stderr.decode()
    assert elapsed < 0.5 + 3.0  # interpreter start-up plus the hunt


@pytest.mark.parametrize("bad", [["--registrar", "nonsense"], ["--policy", "NoSuchPolicy"]])
def test_echo_pe_rejects_bad_arguments_with_one_line(bad: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rsplib.examples.echo_pe", "--registrar", "127.0.0.1:1", *bad],
        capture_output=True,
        timeout=20,
        cwd=REPO,
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0]
