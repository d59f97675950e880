"""PoolUserSession: connect, cookies, the failover sequence and its events, on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AsapService
from rsplib.errors import (
    CloseKind,
    LocalProtocolError,
    NoPoolElementError,
    NoRegistrarError,
    SessionClosed,
)
from rsplib.session.control import PoolElementIdentity
from rsplib.session.cookies import CookiePolicy, CookieSealer
from rsplib.session.pu_machine import (
    Connected,
    CookieEchoed,
    FailoverCompleted,
    FailoverReason,
    FailoverStarted,
    SessionConfig,
    SessionEvent,
    SessionLost,
)
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import HeartbeatConfig, start_server
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.csp import ComponentGroup, component_id
from rsplib.wire.params import PolicyParam, TcpTransport, ip
from tests.session.loopback import (
    COUNT,
    FAST_ASAP,
    POOL,
    EchoRecord,
    asap_address,
    echo_pe,
    registrar,
    run,
)
from tests.transports import TCP_MAPPING, both_transports


class Recorder:
    """Session events plus the Endpoint Unreachable reports the session made."""

    def __init__(self, asap: AsapService) -> None:
        self.events: list[SessionEvent] = []
        self.reports: list[int] = []
        core = asap.client
        original = core.report_unreachable

        def spy(pool_handle: bytes, identifier: int, now: float) -> None:
            self.reports.append(identifier)
            original(pool_handle, identifier, now)

        core.report_unreachable = spy  # type: ignore[method-assign]

    def __call__(self, event: SessionEvent) -> None:
        self.events.append(event)


async def echo(session: PoolUserSession, data: bytes) -> bytes:
    await session.write(data)
    return await asyncio.wait_for(session.read(), 3.0)


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def session_with_recorder(
    reg: Any, transport: str = TCP_MAPPING, **options: Any
) -> tuple[PoolUserSession, Recorder, AsapService]:
    asap = AsapService(FAST_ASAP, registrars=[asap_address(reg)], transport=transport)
    await asap.start()
    recorder = Recorder(asap)
    session = await PoolUserSession.connect(POOL, asap=asap, on_event=recorder, **options)
    return session, recorder, asap


@both_transports
def test_connect_echo_and_the_newest_cookie_is_kept(transport: str) -> None:
    async def scenario() -> None:
        async with (
            registrar(transport=transport) as reg,
            echo_pe(reg, 0x201, transport=transport),
        ):
            session = await PoolUserSession.connect(
                POOL, registrars=[asap_address(reg)], asap_config=FAST_ASAP, transport=transport
            )
            async with session:
                assert session.pool_element is not None
                assert session.pool_element.identifier == 0x201
                assert await echo(session, b"hello") == b"hello"
                assert await echo(session, b"abc") == b"abc"
                await asyncio.sleep(0.05)  # the cookie follows the data
                assert session.cookie == COUNT.pack(8)
                message_ppid = 36
                await session.write(b"p", ppid=message_ppid)
                received = await asyncio.wait_for(session.read_message(), 3.0)
                assert received.ppid == message_ppid
                with pytest.raises(LocalProtocolError, match="PPID 11"):
                    await session.write(b"x", ppid=PPID.ASAP)
            assert await session.read() == b""

    run(scenario())


@both_transports
def test_forced_failover_echoes_the_cookie_first_and_reports_events_in_order(
    transport: str,
) -> None:
    async def scenario() -> None:
        first, second = EchoRecord(), EchoRecord()
        async with (
            registrar(transport=transport) as reg,
            echo_pe(reg, 0x202, first, transport=transport),
            echo_pe(reg, 0x203, second, transport=transport),
        ):
            session, recorder, asap = await session_with_recorder(reg, transport)
            async with session:
                start = session.pool_element
                assert start is not None
                await echo(session, b"0123456789")
                await asyncio.sleep(0.05)
                await session.failover()
                new = session.pool_element
                assert new is not None and new.identifier != start.identifier
                # The new PE's first answer accepts the echoed cookie.
                assert await echo(session, b"xy") == b"xy"
                connected, started, echoed, completed = recorder.events
                assert connected == Connected(start)
                assert isinstance(started, FailoverStarted) and started.old_pe == start
                assert started.reason is FailoverReason.REQUESTED
                assert echoed == CookieEchoed(new, echoed.at)  # type: ignore[union-attr]
                assert isinstance(completed, FailoverCompleted)
                assert (completed.old_pe, completed.new_pe, completed.had_cookie) == (
                    start,
                    new,
                    True,
                )
                assert recorder.reports == []  # nothing failed: nobody is reported
                await asyncio.sleep(0.05)
                assert session.cookie == COUNT.pack(12)  # the new PE went on counting
                serving = second if new.identifier == 0x203 else first
                restored = serving.sessions[-1]
                assert restored.started_with_cookie_echo
                assert serving.first_cookie[-1] == COUNT.pack(10)
                assert session.failovers == 1
            await asap.close()

    run(scenario())


@both_transports
def test_eof_from_the_pe_fails_over_to_another_pe_without_reporting_it(transport: str) -> None:
    async def scenario() -> None:
        records = {0x204: EchoRecord(), 0x205: EchoRecord()}
        async with (
            registrar(transport=transport) as reg,
            echo_pe(reg, 0x204, records[0x204], transport=transport) as pe_a,
            echo_pe(reg, 0x205, records[0x205], transport=transport) as pe_b,
        ):
            servers = {0x204: pe_a, 0x205: pe_b}
            session, recorder, asap = await session_with_recorder(reg, transport)
            async with session:
                old = session.pool_element
                assert old is not None
                await echo(session, b"abcd")
                await asyncio.sleep(0.05)
                # The serving PE ends the session: the PU sees EOF. (Written before the
                # PU has seen it, a message could still go to the closing PE and be lost
                # with it; the cookie, not the transport, carries the state across.)
                await records[old.identifier].sessions[0].close()
                await until(lambda: any(isinstance(e, FailoverStarted) for e in recorder.events))
                assert await echo(session, b"efgh") == b"efgh"
                new = session.pool_element
                assert new is not None and new.identifier != old.identifier
                kinds = [type(e) for e in recorder.events]
                assert kinds == [Connected, FailoverStarted, CookieEchoed, FailoverCompleted]
                assert isinstance(recorder.events[1], FailoverStarted)
                assert recorder.events[1].reason is FailoverReason.EOF
                assert isinstance(recorder.events[3], FailoverCompleted)
                assert recorder.events[3].had_cookie
                assert recorder.reports == []
                assert servers[old.identifier].sessions == set()
            await asap.close()

    run(scenario())


def test_a_failed_send_fails_over_and_is_repeated_on_the_new_pe() -> None:
    async def scenario() -> None:
        async with registrar() as reg, echo_pe(reg, 0x206), echo_pe(reg, 0x207):
            session, recorder, asap = await session_with_recorder(reg)
            async with session:
                old = session.pool_element
                assert old is not None
                conn = session._machine.current_connection
                assert conn is not None
                session._channels[conn].abort()  # the next send fails at once
                assert await echo(session, b"resent") == b"resent"
                started = recorder.events[1]
                assert isinstance(started, FailoverStarted)
                assert started.reason is FailoverReason.SEND_FAILED
                # A send that failed without a transport timeout says nothing about the
                # PE's reachability: it is not reported.
                assert recorder.reports == []
            await asap.close()

    run(scenario())


def test_a_silent_pe_is_left_after_the_session_heartbeat_timeout() -> None:
    async def scenario() -> None:
        silent_channels: list[Any] = []

        async def silent(channel: Any) -> None:
            silent_channels.append(channel)
            await asyncio.sleep(3600)  # never reads: no heartbeat acks either

        # A raw TCP server that accepts and then says nothing: heartbeats off on its side
        # and the PU's heartbeat requests are never read (the reader is paused).
        async with registrar() as reg:
            asap = AsapService(FAST_ASAP, registrars=[asap_address(reg)], transport="tcp-mapping")
            await asap.start()
            frozen = await start_server(
                "127.0.0.1",
                0,
                silent,
                transport="tcp-mapping",
                heartbeat=HeartbeatConfig(misses=0),
            )
            port = frozen.addresses[0][1]
            silent_id = asap.register(
                POOL,
                TcpTransport(port, (ip("127.0.0.1"),)),
                PolicyParam(PolicyType.ROUND_ROBIN),
                0x2FF,
            )
            await asap.wait_registered(POOL, silent_id, 5.0)
            recorder = Recorder(asap)
            heartbeat = HeartbeatConfig(interval=0.1, misses=2)
            session = await PoolUserSession.connect(
                POOL, asap=asap, heartbeat=heartbeat, on_event=recorder
            )
            assert session.pool_element is not None
            assert session.pool_element.identifier == 0x2FF
            # Stall the silent PE's side for real: stop reading its socket.
            for channel in silent_channels:
                transport = channel._transport
                transport.pause_reading()
            async with echo_pe(reg, 0x208):
                loop = asyncio.get_running_loop()
                began = loop.time()
                await session.write(b"lost")
                completed = None
                while completed is None and loop.time() - began < 3.0:
                    await asyncio.sleep(0.01)
                    done = [e for e in recorder.events if isinstance(e, FailoverCompleted)]
                    completed = done[0] if done else None
                elapsed = loop.time() - began
                assert completed is not None, recorder.events
                assert completed.new_pe.identifier == 0x208
                assert elapsed < heartbeat.timeout + 1.0
                started = recorder.events[1]
                assert isinstance(started, FailoverStarted)
                assert started.reason is FailoverReason.TIMEOUT
                assert recorder.reports == [0x2FF]  # a heartbeat timeout is worth a report
                assert await echo(session, b"again") == b"again"
                await session.close()
            frozen.close()
            await asap.close()

    run(scenario())


def test_no_registrar_is_a_clear_error_within_the_configured_timeout() -> None:
    async def scenario() -> None:
        unused = socket.socket()
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        unused.close()  # nothing listens there now
        config = AsapConfig(registrar_connect_timeout=0.4)
        began = time.monotonic()
        with pytest.raises(NoRegistrarError, match="no registrar answered"):
            await PoolUserSession.connect(
                POOL, registrars=[("127.0.0.1", port)], asap_config=config
            )
        assert time.monotonic() - began < 0.4 + 1.0

    run(scenario())


def test_an_empty_pool_is_reported_after_the_connect_timeout() -> None:
    async def scenario() -> None:
        async with registrar() as reg:
            began = time.monotonic()
            with pytest.raises(NoPoolElementError, match="is registered"):
                await PoolUserSession.connect(
                    POOL,
                    registrars=[asap_address(reg)],
                    asap_config=FAST_ASAP,
                    timeout=0.5,
                    config=SessionConfig(retry_delay=0.1),
                )
            assert 0.5 <= time.monotonic() - began < 2.0

    run(scenario())


def test_a_cookie_sealed_by_one_pe_restores_the_session_at_another() -> None:
    async def scenario() -> None:
        sealer = CookieSealer(b"s" * 32, POOL, encrypt=True)
        records = [EchoRecord(), EchoRecord()]
        async with (
            registrar() as reg,
            echo_pe(reg, 0x209, records[0], cookies=CookiePolicy.signed(sealer)),
            echo_pe(reg, 0x20A, records[1], cookies=CookiePolicy.signed(sealer)),
        ):
            session = await PoolUserSession.connect(
                POOL, registrars=[asap_address(reg)], asap_config=FAST_ASAP
            )
            async with session:
                await echo(session, b"secret")
                await asyncio.sleep(0.05)
                assert session.cookie is not None and b"secret" not in session.cookie
                await session.failover()
                await echo(session, b"!")
                restored = [r for r in records if r.first_cookie and r.first_cookie[-1]]
                assert restored and restored[0].first_cookie[-1] == COUNT.pack(6)

    run(scenario())


def test_events_iterator_and_status_associations() -> None:
    async def scenario() -> None:
        async with registrar(0x77) as reg, echo_pe(reg, 0x20B), echo_pe(reg, 0x20C):
            session = await PoolUserSession.connect(
                POOL, registrars=[asap_address(reg)], asap_config=FAST_ASAP, ppid=35
            )
            seen: list[SessionEvent] = []

            async def collect() -> None:
                async for event in session.events():
                    seen.append(event)

            collector = asyncio.create_task(collect())
            await echo(session, b"z")
            await session.failover()
            await echo(session, b"y")
            pe = session.pool_element
            assert isinstance(pe, PoolElementIdentity)
            links = session.csp_associations()
            session_link = links[-1]
            assert session_link.receiver_id == component_id(
                ComponentGroup.POOL_ELEMENT, pe.identifier
            )
            assert session_link.ppid == 35
            assert session.status_text() == f"Connected to PE ${pe.identifier:08x}"
            await session.close()
            await asyncio.wait_for(collector, 2.0)
            kinds = [type(e) for e in seen]
            assert kinds == [
                Connected,
                FailoverStarted,
                CookieEchoed,
                FailoverCompleted,
                SessionLost,
            ]
            with pytest.raises(SessionClosed):
                await session.read_message()

    run(scenario())


def test_triggers_from_an_old_connection_are_ignored() -> None:
    async def scenario() -> None:
        async with registrar() as reg, echo_pe(reg, 0x20D), echo_pe(reg, 0x20E):
            session, recorder, asap = await session_with_recorder(reg)
            async with session:
                old = session._machine.current_connection
                assert old is not None
                await echo(session, b"a")
                await session.failover()
                await echo(session, b"b")
                now = asyncio.get_running_loop().time()
                session._machine.connection_lost(old, CloseKind.RESET, now)
                session._machine.send_failed(old, CloseKind.TIMEOUT, now)
                await asyncio.sleep(0.05)
                assert len(recorder.events) == 4  # connected, started, echoed, completed
                assert session.failovers == 1 and recorder.reports == []
            await asap.close()

    run(scenario())
