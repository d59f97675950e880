"""SCTP multi-homing: a PE on two addresses registers both, and survives one going down.

Two links between this network namespace and a new one ("host B"): 10.91.1.0/24 and
10.91.2.0/24, each a veth pair. A registrar listens on every address here; an echo PE
in B listens on both of B's addresses and advertises them. A pool user here streams
through the PE; then link 1 goes down. SCTP moves both associations (PU-PE and
PE-registrar) to link 2: the stream goes on without a failover and the PE stays
registered. Needs root (namespaces) and kernel SCTP (marked ``sctp``: the lab VM
provides both where this machine lacks SCTP).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AsapService
from rsplib.session.pu_machine import FailoverStarted, SessionEvent
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import HeartbeatConfig
from tests.registrar.service_helpers import RegistrarProcess
from tests.support import LoggedProcess, patience

pytestmark = pytest.mark.sctp

POOL = "MultiHomedPool"
PE_ID = 0x7001
LINKS = (("10.91.1.1", "10.91.1.2"), ("10.91.2.1", "10.91.2.2"))
HEARTBEAT = HeartbeatConfig(interval=0.25, misses=4)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@dataclass
class TwoLinks:
    namespace: str
    here: list[str]  # the veth ends in this namespace, one per link

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]


@pytest.fixture
def two_links() -> Iterator[TwoLinks]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = f"{os.getpid() % 100000}"
    links = TwoLinks(f"rsp-mh-{tag}", [f"mh{tag}a{n}" for n in (1, 2)])
    ip("netns", "add", links.namespace)
    try:
        ip("-n", links.namespace, "link", "set", "lo", "up")
        for n, (near, far) in enumerate(LINKS, start=1):
            here, there = f"mh{tag}a{n}", f"mh{tag}b{n}"
            ip("link", "add", here, "type", "veth", "peer", "name", there)
            ip("link", "set", there, "netns", links.namespace)
            ip("addr", "add", f"{near}/24", "dev", here)
            ip("link", "set", here, "up")
            ip("-n", links.namespace, "addr", "add", f"{far}/24", "dev", there)
            ip("-n", links.namespace, "link", "set", there, "up")
        yield links
    finally:
        for here in links.here:
            subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", links.namespace], capture_output=True, timeout=20)


def test_a_two_address_pe_registers_both_and_survives_one_going_down(
    two_links: TwoLinks, tmp_path: Path
) -> None:
    registrar = RegistrarProcess(
        [
            "--identifier", "0x91",
            "--asap", "0.0.0.0:0",
            "--enrp", "127.0.0.1:0",
            "--asap-announce", "off",
            "--enrp-announce", "off",
            "--transport", "sctp",
            # A keep-alive lost on the failed path is resent on the other one after an
            # RTO (1 s at the registrar's default heartbeat interval): allow for that.
            "--endpoint-keepalive-interval", "1000",
            "--endpoint-keepalive-timeout", "3000",
            "--loglevel", "debug",
        ],
        tmp_path / "registrar.log",
    )  # fmt: skip
    pe = None
    try:
        registrar.wait_ready()
        port = registrar.asap[1]
        pe = LoggedProcess(
            "rsplib.examples.echo_pe",
            [
                "--identifier", f"0x{PE_ID:x}",
                "--poolhandle", POOL,
                "--transport", "sctp",
                "--local", "0.0.0.0:0",
                "--advertise", LINKS[0][1],
                "--advertise", LINKS[1][1],
                "--registrar", f"{LINKS[0][0]}:{port}",
                "--heartbeat-interval", "250",
                "--heartbeat-misses", "4",
            ],
            tmp_path / "pe.log",
            prefix=two_links.prefix(),
        )  # fmt: skip
        pe.wait_for(rf"PE 0x{PE_ID:08x} registered", 20)
        asyncio.run(asyncio.wait_for(_stream_across_a_link_loss(two_links, port), patience(60)))
        assert pe.log_text().count("registered (registrar") == 1, pe.log_text()
        assert pe.alive()
    finally:
        if pe is not None:
            pe.stop()
        registrar.stop()


async def _stream_across_a_link_loss(links: TwoLinks, port: int) -> None:
    asap_config = AsapConfig(registrar_connect_timeout=2.0, registrar_response_timeout=2.0)
    async with AsapService(asap_config, registrars=[("127.0.0.1", port)], transport="sctp") as asap:
        (found,) = await asap.resolve(POOL.encode(), 0xFFFFFFFF)
        assert found.identifier == PE_ID
        addresses = sorted(str(a) for a in found.user_transport.addresses)
        assert addresses == [LINKS[0][1], LINKS[1][1]]

    events: list[SessionEvent] = []
    session = await PoolUserSession.connect(
        POOL,
        registrars=[("127.0.0.1", port)],
        asap_config=asap_config,
        transport="sctp",
        heartbeat=HEARTBEAT,
        on_event=events.append,
    )
    async with session:
        await _echo_some(session, 5)
        ip("link", "set", links.here[0], "down")  # link 1 is gone for both associations
        # SCTP retransmits on the other path at once and soon marks path 1 failed; the
        # session, the PE and its registration carry on.
        await _echo_some(session, 40, pause=0.05)
        assert not [e for e in events if isinstance(e, FailoverStarted)], events

    async with AsapService(asap_config, registrars=[("127.0.0.1", port)], transport="sctp") as asap:
        (still,) = await asap.resolve(POOL.encode(), 0xFFFFFFFF)
        assert still.identifier == PE_ID


async def _echo_some(session: PoolUserSession, count: int, pause: float = 0.0) -> None:
    for n in range(count):
        message = b"message %04d" % n
        await session.write(message)
        assert await asyncio.wait_for(session.read(), 10) == message
        await asyncio.sleep(pause)
