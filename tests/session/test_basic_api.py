"""Basic mode (register / resolve / report) and the blocking facade, against a registrar."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rsplib.api import (
    AsapService,
    RegistrationError,
    register_pool_element,
    report_unreachable,
    resolve,
)
from rsplib.blocking import BlockingRserPool
from rsplib.wire.constants import FRACTION_MAX, ErrorCause
from rsplib.wire.params import TcpTransport, ip
from tests.session.loopback import COUNT, FAST_ASAP, POOL, asap_address, echo_pe, registrar, run


def user_transport(port: int) -> TcpTransport:
    return TcpTransport(port, (ip("127.0.0.1"),))


def test_register_resolve_set_load_and_deregister_on_exit() -> None:
    async def scenario() -> None:
        async with registrar() as reg:
            asap = AsapService(FAST_ASAP, registrars=[asap_address(reg)])
            async with asap:
                async with register_pool_element(
                    "BasicPool",
                    user_transport(5001),
                    policy="LeastUsed",
                    identifier=0x301,
                    asap=asap,
                ) as pe:
                    assert pe.registered
                    found = await resolve("BasicPool", asap=asap)
                    assert [(p.identifier, p.port) for p in found] == [(0x301, 5001)]
                    pe.set_load(0.25)
                    await asyncio.sleep(0.05)
                    found = await resolve("BasicPool", asap=asap)
                    assert found[0].policy.load == round(0.25 * FRACTION_MAX)
                # Deregistered on exit: the pool is empty (an unknown pool is no error).
                assert await resolve("BasicPool", asap=asap) == []

    run(scenario())


def test_a_refused_registration_raises() -> None:
    async def scenario() -> None:
        async with registrar() as reg:
            where = [asap_address(reg)]
            async with register_pool_element(
                "MixedPool",
                user_transport(5002),
                policy="RoundRobin",
                registrars=where,
                config=FAST_ASAP,
            ):
                # Another policy in the same pool is refused (inconsistent pooling policy).
                with pytest.raises(RegistrationError, match="refused") as info:
                    async with register_pool_element(
                        "MixedPool",
                        user_transport(5005),
                        policy="LeastUsed",
                        registrars=where,
                        config=FAST_ASAP,
                    ):
                        pass
                assert info.value.cause == ErrorCause.INCONSISTENT_POOLING_POLICY

    run(scenario())


def test_reports_from_pool_users_reach_the_registrar_which_keeps_a_live_pe() -> None:
    async def scenario() -> None:
        async with registrar(max_bad_pe_reports=2) as reg:
            where = [asap_address(reg)]
            async with register_pool_element(
                "ReportPool",
                user_transport(5003),
                identifier=0x302,
                registrars=where,
                config=FAST_ASAP,
            ):
                await report_unreachable("ReportPool", 0x302, registrars=where, config=FAST_ASAP)
                await report_unreachable("ReportPool", 0x302, registrars=where, config=FAST_ASAP)
                await asyncio.sleep(0.05)
                assert reg.core is not None and reg.core.asap.unreachable_reports == 2
                # The registrar probed the PE; it answers its keep-alives, so it stays.
                await asyncio.sleep(0.6)
                assert len(await resolve("ReportPool", registrars=where, config=FAST_ASAP)) == 1

    run(scenario())


def test_the_blocking_facade_resolves_and_runs_a_session_from_a_plain_thread() -> None:
    ready = threading.Event()
    done = threading.Event()
    address: list[tuple[str, int]] = []

    async def serve() -> None:
        async with registrar() as reg, echo_pe(reg, 0x303):
            address.append(asap_address(reg))
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.02)

    server = threading.Thread(target=run, args=(serve(), 30.0))
    server.start()
    try:
        assert ready.wait(10)
        with BlockingRserPool(registrars=address, config=FAST_ASAP) as pool:
            assert [pe.identifier for pe in pool.resolve(POOL)] == [0x303]
            with pool.connect_session(POOL) as session:
                session.write(b"blocking")
                assert session.read(timeout=3) == b"blocking"
                for _ in range(100):
                    if session.cookie is not None:
                        break
                    threading.Event().wait(0.01)
                assert session.cookie == COUNT.pack(8)
            element = pool.register("Other", user_transport(5004), identifier=0x304)
            assert [pe.identifier for pe in pool.resolve("Other")] == [0x304]
            element.deregister()
            assert pool.resolve("Other") == []
    finally:
        done.set()
        server.join(10)
