"""PoolElementServer against a real in-process registrar and raw session channels."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from rsplib.api import resolve
from rsplib.errors import CloseKind, LocalProtocolError, SessionClosed
from rsplib.session.control import encode_cookie_echo
from rsplib.session.cookies import CookiePolicy, CookieRejection, CookieSealer, new_session_id
from rsplib.session.pe_server import PeSession, PoolElementServer
from rsplib.session.reporting import CspOptions
from rsplib.transport import ChannelClosed, MessageChannel, connect
from rsplib.wire.asap import Cookie, decode_asap
from rsplib.wire.constants import FRACTION_MAX, PPID, TransportUse
from rsplib.wire.csp import ComponentGroup, component_id, decode_csp
from rsplib.wire.params import TcpTransport
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

KEY = b"k" * 32


async def open_session(server: PoolElementServer) -> MessageChannel:
    return await connect(*server.address, transport="tcp-mapping", timeout=2.0)


async def receive_data_and_cookie(channel: MessageChannel) -> tuple[bytes, bytes]:
    ppid, data = await asyncio.wait_for(channel.receive(), 2.0)
    assert ppid != PPID.ASAP
    ppid, raw = await asyncio.wait_for(channel.receive(), 2.0)
    assert ppid == PPID.ASAP
    message = decode_asap(raw)
    assert isinstance(message, Cookie)
    return data, message.cookie


async def wait_closed(channel: MessageChannel) -> str:
    return (await wait_closed_error(channel)).reason


async def wait_closed_error(channel: MessageChannel) -> ChannelClosed:
    with pytest.raises(ChannelClosed) as info:
        while True:
            await asyncio.wait_for(channel.receive(), 2.0)
    return info.value


def test_registers_a_tcp_transport_for_data_plus_control_and_echoes() -> None:
    async def scenario() -> None:
        async with registrar() as reg, echo_pe(reg, 0x101) as server:
            found = await resolve(POOL, registrars=[asap_address(reg)], config=FAST_ASAP)
            assert [pe.identifier for pe in found] == [0x101]
            transport = found[0].transport
            assert isinstance(transport, TcpTransport)
            assert transport.transport_use == TransportUse.DATA_PLUS_CONTROL
            assert (found[0].addresses[0], found[0].port) == server.address
            channel = await open_session(server)
            await channel.send(33, b"hello")
            data, cookie = await receive_data_and_cookie(channel)
            assert data == b"hello"
            assert COUNT.unpack(cookie) == (5,)
            channel.abort()

    run(scenario())


def test_a_cookie_echo_as_first_message_restores_the_session() -> None:
    async def scenario() -> None:
        record = EchoRecord()
        async with registrar() as reg, echo_pe(reg, 0x102, record) as server:
            channel = await open_session(server)
            channel.send_nowait(PPID.ASAP, encode_cookie_echo(COUNT.pack(40)))
            await channel.send(0, b"abc")
            data, cookie = await receive_data_and_cookie(channel)
            assert data == b"abc"
            assert COUNT.unpack(cookie) == (43,)  # counting went on from the cookie
            session = record.sessions[0]
            assert session.started_with_cookie_echo
            assert record.first_cookie == [COUNT.pack(40)]
            channel.abort()

    run(scenario())


def test_a_cookie_echo_later_in_the_session_aborts_it(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        record = EchoRecord()
        async with registrar() as reg, echo_pe(reg, 0x103, record) as server:
            channel = await open_session(server)
            await channel.send(0, b"first")
            await receive_data_and_cookie(channel)
            channel.send_nowait(PPID.ASAP, encode_cookie_echo(COUNT.pack(1)))
            reason = await wait_closed(channel)
            assert "EOF" in reason or "reset" in reason.lower() or "lost" in reason
            assert not record.sessions[0].started_with_cookie_echo

    with caplog.at_level(logging.WARNING, logger="rsplib.session"):
        run(scenario())
    assert any("Cookie Echo must come first" in r.message for r in caplog.records)


def test_sealed_cookies_verify_at_another_pe_and_forged_ones_are_rejected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        first, second = EchoRecord(), EchoRecord()
        options = {"cookies": CookiePolicy.signed(CookieSealer(KEY, POOL))}
        async with (
            registrar() as reg,
            echo_pe(reg, 0x104, first, **options) as pe_a,
            echo_pe(reg, 0x105, second, **options) as pe_b,
        ):
            channel = await open_session(pe_a)
            await channel.send(0, b"1234567")
            _data, sealed = await receive_data_and_cookie(channel)
            assert sealed != COUNT.pack(7)  # wrapped in the envelope
            channel.abort()
            await asyncio.sleep(0.05)  # PE A notices; the session is no longer live there

            restored = await open_session(pe_b)
            restored.send_nowait(PPID.ASAP, encode_cookie_echo(sealed))
            await restored.send(0, b"x")
            await receive_data_and_cookie(restored)
            assert second.first_cookie == [COUNT.pack(7)]
            assert second.sessions[0].cookie_rejected is None

            forged = bytearray(sealed)
            forged[-1] ^= 1
            tampered = await open_session(pe_b)
            tampered.send_nowait(PPID.ASAP, encode_cookie_echo(bytes(forged)))
            await tampered.send(0, b"y")
            # The explicit refusal: a graceful close before anything is sent, and the
            # application's handler never sees the session.
            closed = await wait_closed_error(tampered)
            assert closed.kind is CloseKind.EOF
            assert len(second.sessions) == 1 and pe_b.cookies.rejected == 1
            restored.abort()

    with caplog.at_level(logging.WARNING, logger="rsplib.session"):
        run(scenario())
    assert any("Cookie Echo rejected" in r.message for r in caplog.records)


def test_a_cookie_cannot_be_replayed_into_a_second_live_session() -> None:
    async def scenario() -> None:
        record = EchoRecord()
        sealer = CookieSealer(KEY, POOL)
        # START_FRESH: the refused session is served as a new one (no cookie).
        policy = CookiePolicy.signed(sealer, on_rejection=CookieRejection.START_FRESH)
        async with registrar() as reg, echo_pe(reg, 0x106, record, cookies=policy) as pe:
            cookie = sealer.seal(COUNT.pack(9), new_session_id(), 1)
            one = await open_session(pe)
            one.send_nowait(PPID.ASAP, encode_cookie_echo(cookie))
            await one.send(0, b"a")
            await receive_data_and_cookie(one)
            two = await open_session(pe)
            two.send_nowait(PPID.ASAP, encode_cookie_echo(cookie))
            await two.send(0, b"b")
            await receive_data_and_cookie(two)
            assert record.first_cookie == [COUNT.pack(9), None]
            assert record.sessions[1].cookie_rejected == "session is live on another connection"
            one.abort()
            two.abort()

    run(scenario())


def test_writes_refuse_ppid_11() -> None:
    async def scenario() -> None:
        outcome: list[BaseException] = []

        async def handler(session: PeSession) -> None:
            try:
                await session.write(b"x", ppid=PPID.ASAP)
            except LocalProtocolError as exc:
                outcome.append(exc)

        async with registrar() as reg:
            server = PoolElementServer(
                POOL,
                handler,
                identifier=0x107,
                registrars=[asap_address(reg)],
                transport="tcp-mapping",
                first_message_timeout=0,
            )
            async with server:
                channel = await open_session(server)
                for _ in range(100):
                    if outcome:
                        break
                    await asyncio.sleep(0.01)
                channel.abort()
        assert outcome and "PPID 11" in str(outcome[0])

    run(scenario())


def test_load_follows_the_session_count_for_adaptive_policies() -> None:
    async def scenario() -> None:
        async with (
            registrar() as reg,
            echo_pe(reg, 0x108, policy="LeastUsed", max_sessions=4) as server,
        ):
            where = [asap_address(reg)]

            async def registered_load() -> float:
                found = await resolve(POOL, registrars=where, config=FAST_ASAP)
                return found[0].policy.load / FRACTION_MAX

            assert await registered_load() == 0.0
            channels = [await open_session(server) for _ in range(2)]
            for channel in channels:
                await channel.send(0, b"go")
            for _ in range(100):
                if len(server.sessions) == 2:
                    break
                await asyncio.sleep(0.01)
            assert server.workload() == 0.5
            await asyncio.sleep(0.05)
            assert await registered_load() == pytest.approx(0.5, abs=1e-6)
            for channel in channels:
                channel.abort()

    run(scenario())


def test_status_reports_name_the_registrar_link_and_end_with_final() -> None:
    async def scenario() -> None:
        monitor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        monitor.bind(("127.0.0.1", 0))
        monitor.setblocking(False)
        csp = CspOptions(monitor.getsockname(), 0.05)
        try:
            async with registrar(0x5A) as reg:
                async with echo_pe(reg, 0x109, policy="LeastUsed", max_sessions=2, csp=csp):
                    # The registrar's id is learned from its first keep-alive (0.5 s here).
                    await asyncio.sleep(0.8)
                reports = []
                while True:
                    try:
                        reports.append(decode_csp(monitor.recv(2048)))
                    except BlockingIOError:
                        break
        finally:
            monitor.close()
        assert reports, "no status report arrived"
        live = [r for r in reports if not r.final]
        assert all(r.sender_id == component_id(ComponentGroup.POOL_ELEMENT, 0x109) for r in live)
        assert live[-1].status == "0 Sessions"
        assert live[-1].workload == 0.0
        links = [a for r in live for a in r.associations]
        assert links and links[-1].ppid == PPID.ASAP
        assert links[-1].receiver_id == component_id(ComponentGroup.REGISTRAR, 0x5A)
        assert reports[-1].final

    run(scenario())


def test_a_session_that_ends_before_its_first_message_never_reaches_the_handler() -> None:
    async def scenario() -> None:
        record = EchoRecord()
        async with registrar() as reg, echo_pe(reg, 0x10A, record) as server:
            channel = await open_session(server)
            channel.abort()
            await asyncio.sleep(0.1)
            assert record.sessions == []
            assert server.sessions == set()

    run(scenario())


def test_read_returns_empty_bytes_at_the_end_of_a_session() -> None:
    async def scenario() -> None:
        reads: list[bytes] = []

        async def handler(session: PeSession) -> None:
            reads.append(await session.read())
            reads.append(await session.read())
            with pytest.raises(SessionClosed):
                await session.read_message()

        async with registrar() as reg:
            server = PoolElementServer(
                POOL,
                handler,
                identifier=0x10B,
                registrars=[asap_address(reg)],
                transport="tcp-mapping",
            )
            async with server:
                channel = await open_session(server)
                await channel.send(0, b"only")
                await channel.close()
                for _ in range(100):
                    if len(reads) == 2:
                        break
                    await asyncio.sleep(0.01)
        assert reads == [b"only", b""]

    run(scenario())
