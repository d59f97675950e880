"""RegistrarService run inside the test's event loop: serving, stop(), start-up errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from rsplib.addressing import PeerAddress
from rsplib.registrar.config import AddressScope, RegistrarConfig
from rsplib.registrar.service import RegistrarService, ServiceOptions
from tests.registrar.service_helpers import AsapClient, make_pe, resolved_ids

LOOPBACK = ServiceOptions(
    asap=(PeerAddress("127.0.0.1", 0),),
    enrp=PeerAddress("127.0.0.1", 0),
    transport="tcp",
    asap_announce=None,
    enrp_announce=None,
)
CONFIG = RegistrarConfig(min_address_scope=AddressScope.LOOPBACK, mentor_discovery_timeout=0.2)


def test_serves_then_stops_cleanly() -> None:
    async def scenario() -> None:
        service = RegistrarService(CONFIG, 0x1111, LOOPBACK, install_signal_handlers=False)
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.wait_ready(), 5)
        assert service.transport_name == "tcp-mapping"
        asap = service.asap_addresses[0]
        assert asap[0] == "127.0.0.1" and asap[1] != 0
        assert service.enrp_address is not None and service.enrp_address[1] != 0

        client = await AsapClient.open(asap)
        assert not (await client.register(b"InProc", make_pe(0x42))).rejected
        assert await resolved_ids(asap, b"InProc") == {0x42}
        assert service.core is not None
        status = service.core.status()
        assert (status.pe_count, status.owned_pe_count, status.pool_count) == (1, 1, 1)

        service.stop()
        await asyncio.wait_for(task, 5)
        # The PE's connection was closed, and nothing listens any more.
        await asyncio.wait_for(client.closed.wait(), 5)
        with pytest.raises(OSError):
            await asyncio.open_connection(*asap)

    asyncio.run(scenario())


def test_bind_error_propagates_before_serving() -> None:
    async def scenario() -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            options = ServiceOptions(
                asap=(PeerAddress("127.0.0.1", 0),),
                enrp=PeerAddress("127.0.0.1", taken),
                transport="tcp",
                asap_announce=None,
                enrp_announce=None,
            )
            service = RegistrarService(CONFIG, 0x2222, options, install_signal_handlers=False)
            with pytest.raises(OSError):
                await service.run()
            assert service.core is None

    asyncio.run(scenario())


def test_multicast_without_interface_is_refused() -> None:
    async def scenario() -> None:
        options = ServiceOptions(
            asap=(PeerAddress("127.0.0.1", 0),),
            enrp=PeerAddress("127.0.0.1", 0),
            transport="tcp",
            announce_interface=None,
        )
        service = RegistrarService(CONFIG, 0x3333, options, install_signal_handlers=False)
        with pytest.raises(ValueError, match="interface"):
            await service.run()

    asyncio.run(scenario())
