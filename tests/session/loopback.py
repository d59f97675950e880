"""In-process components on loopback for the session tests.

A real registrar service (ephemeral ports, the TCP mapping unless told, no multicast,
loopback PE addresses allowed, short keep-alive timers) runs in the test's
event loop; pool elements and users connect to it through real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rsplib.asap.config import AsapConfig
from rsplib.errors import SessionClosed
from rsplib.registrar import PeerAddress, RegistrarConfig
from rsplib.registrar.config import AddressScope
from rsplib.registrar.service import RegistrarService, ServiceOptions
from rsplib.session.pe_server import PeSession, PoolElementServer
from tests.transports import TCP_MAPPING, cli_transport

T = TypeVar("T")
POOL = b"EchoPool"
FAST_ASAP = AsapConfig(registrar_connect_timeout=1.0, reregistration_interval=5.0)
COUNT = struct.Struct("!Q")


def run(coro: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
    """Run one coroutine in a fresh event loop; fail instead of hanging."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def registrar(
    server_id: int = 0x51, *, transport: str = TCP_MAPPING, **config: Any
) -> AsyncIterator[RegistrarService]:
    values: dict[str, Any] = {
        "min_address_scope": AddressScope.LOOPBACK,
        "endpoint_keepalive_interval": 0.5,
        "endpoint_keepalive_timeout": 0.5,
    }
    values.update(config)
    service = RegistrarService(
        RegistrarConfig(**values),
        server_id,
        ServiceOptions(
            asap=(PeerAddress("127.0.0.1", 0),),
            enrp=PeerAddress("127.0.0.1", 0),
            transport=cli_transport(transport),
            asap_announce=None,
            enrp_announce=None,
        ),
        install_signal_handlers=False,
    )
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.wait_ready(), 5.0)
        yield service
    finally:
        service.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5.0)


def asap_address(service: RegistrarService) -> tuple[str, int]:
    return service.asap_addresses[0]


@dataclass
class EchoRecord:
    """What an echo handler saw in its sessions (for assertions)."""

    sessions: list[PeSession] = field(default_factory=list)
    first_cookie: list[bytes | None] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)


def echo_handler(record: EchoRecord) -> Any:
    """Echo with a byte-count cookie after each message (like rsplib.examples.echo_pe)."""

    async def handler(session: PeSession) -> None:
        record.sessions.append(session)
        record.first_cookie.append(session.cookie)
        echoed = COUNT.unpack(session.cookie)[0] if session.cookie else 0
        try:
            while True:
                message = await session.read_message()
                record.received.append(message.data)
                await session.write(message.data, ppid=message.ppid)
                echoed += len(message.data)
                await session.send_cookie(COUNT.pack(echoed))
        except SessionClosed:
            pass

    return handler


@contextlib.asynccontextmanager
async def echo_pe(
    reg: RegistrarService,
    identifier: int,
    record: EchoRecord | None = None,
    *,
    transport: str = TCP_MAPPING,
    **options: Any,
) -> AsyncIterator[PoolElementServer]:
    server = PoolElementServer(
        POOL,
        echo_handler(record if record is not None else EchoRecord()),
        identifier=identifier,
        registrars=[asap_address(reg)],
        asap_config=FAST_ASAP,
        transport=transport,
        **options,
    )
    await server.start()
    try:
        await server.wait_registered(5.0)
        yield server
    finally:
        await server.close()
