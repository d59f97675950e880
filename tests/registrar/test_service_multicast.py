"""Multicast on loopback (interface 127.0.0.1): Server Announces and ENRP Presence.

A registrar's announces and presences are received and decoded (announce source
address and port = the registrar's ASAP endpoint, as rsplib receivers expect); two
registrars without --peer lists find each other by multicast Presence and share PEs.
Group ports are picked per test run, so parallel runs on one machine do not mix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsplib.handlespace.checksum import ownership_checksum
from rsplib.transport import open_multicast_receiver
from rsplib.wire.asap import ServerAnnounce
from rsplib.wire.codec import decode_asap, decode_enrp
from rsplib.wire.enrp import Presence
from tests.registrar.service_helpers import (
    AsapClient,
    ProcessPool,
    RegistrarProcess,
    make_pe,
    registrar_args,
    resolved_ids,
    wait_until,
)
from tests.support import free_udp_port

ASAP_GROUP = "239.0.0.50"
ENRP_GROUP = "239.0.0.51"
POOL = b"MulticastPool"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessPool]:
    pool = ProcessPool(tmp_path)
    yield pool
    pool.close()


def multicast_registrar(
    procs: ProcessPool, identifier: int, asap_port: int, enrp_port: int
) -> RegistrarProcess:
    args = registrar_args(identifier)
    # Replace "off" with our groups; the loopback interface is explicit.
    args[args.index("--asap-announce") + 1] = f"{ASAP_GROUP}:{asap_port}"
    args[args.index("--enrp-announce") + 1] = f"{ENRP_GROUP}:{enrp_port}"
    args += [
        "--announce-interface",
        "127.0.0.1",
        "--mentor-discovery-timeout",
        "300",
        "--peer-heartbeat-interval",
        "200",
    ]
    return procs.registrar(args, name=f"mc{identifier:x}").wait_ready()


def test_announces_and_presence_are_received_and_decoded(procs: ProcessPool) -> None:
    asap_port, enrp_port = free_udp_port("0.0.0.0"), free_udp_port("0.0.0.0")

    async def scenario() -> None:
        announces = await open_multicast_receiver(ASAP_GROUP, asap_port, "127.0.0.1")
        presences = await open_multicast_receiver(ENRP_GROUP, enrp_port, "127.0.0.1")
        try:
            registrar = multicast_registrar(procs, 0xACE, asap_port, enrp_port)
            got_announce = None
            while got_announce is None:
                data, source = await asyncio.wait_for(announces.receive(), 5)
                msg = decode_asap(data)
                if isinstance(msg, ServerAnnounce) and msg.server_id == 0xACE:
                    got_announce = (msg, source)
            # rsplib receivers take the registrar's address from the datagram's source.
            assert got_announce[1] == registrar.asap
            got_presence = None
            while got_presence is None:
                data, source = await asyncio.wait_for(presences.receive(), 5)
                msg = decode_enrp(data)
                if isinstance(msg, Presence) and msg.sender_server_id == 0xACE:
                    got_presence = (msg, source)
            presence = got_presence[0]
            assert presence.receiver_server_id == 0
            assert presence.server_info.server_id == 0xACE
            assert presence.server_info.transport.port == registrar.enrp[1]
            assert presence.checksum == 0xFFFF  # owns no PE yet
            assert got_presence[1][0] == "127.0.0.1"

            # After a registration it carries the ownership checksum of that PE.
            client = await AsapClient.open(registrar.asap)
            assert not (await client.register(POOL, make_pe(0x12345678))).rejected
            deadline = asyncio.get_running_loop().time() + 5
            checksum = 0xFFFF
            while checksum == 0xFFFF and asyncio.get_running_loop().time() < deadline:
                msg = decode_enrp((await asyncio.wait_for(presences.receive(), 5))[0])
                if isinstance(msg, Presence) and msg.sender_server_id == 0xACE:
                    checksum = msg.checksum
            assert checksum == ownership_checksum([(POOL, 0x12345678)])
            await client.close()
        finally:
            announces.close()
            presences.close()

    asyncio.run(scenario())


def test_registrars_find_each_other_by_multicast_presence(procs: ProcessPool) -> None:
    asap_port, enrp_port = free_udp_port("0.0.0.0"), free_udp_port("0.0.0.0")
    first = multicast_registrar(procs, 0xD1, asap_port, enrp_port)
    second = multicast_registrar(procs, 0xD2, asap_port, enrp_port)

    async def scenario() -> None:
        client = await AsapClient.open(first.asap)
        assert not (await client.register(POOL, make_pe(0x77))).rejected
        await wait_until(lambda: _resolves(second.asap), timeout=5)
        await client.close()

    asyncio.run(scenario())
    assert "new ENRP peer 0x000000d1" in second.log_text()


async def _resolves(address: tuple[str, int]) -> bool:
    return await resolved_ids(address, POOL) == {0x77}
