"""Endpoint keep-alive supervision by a real rsp-registrar process.

A PE in its own process answers keep-alives and stays registered; frozen with SIGSTOP
it stops answering and must leave the pool within keep-alive interval + timeout (plus
scheduling slack). An in-process PE that keeps its connection but ignores keep-alives
is removed the same way, and the keep-alives it saw carry rsplib's PE identifier.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registrar.service_helpers import (
    AsapClient,
    ProcessPool,
    make_pe,
    registrar_args,
    resolved_ids,
    wait_until,
)

INTERVAL_MS = 300
TIMEOUT_MS = 300
BOUND = (INTERVAL_MS + TIMEOUT_MS) / 1000
SLACK = 0.9  # process scheduling on a loaded host and the 50 ms polling of the test
POOL = b"KeepAlivePool"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessPool]:
    pool = ProcessPool(tmp_path)
    yield pool
    pool.close()


def start_registrar(procs: ProcessPool, identifier: int):  # type: ignore[no-untyped-def]
    extra = [
        "--endpoint-keepalive-interval",
        str(INTERVAL_MS),
        "--endpoint-keepalive-timeout",
        str(TIMEOUT_MS),
    ]
    return procs.registrar(registrar_args(identifier, extra=extra)).wait_ready()


def test_stopped_pe_process_disappears_within_interval_plus_timeout(procs: ProcessPool) -> None:
    registrar = start_registrar(procs, 0x5A)
    pe = procs.pe_process(registrar.asap, POOL, 0xBEEF)
    assert pe.stdout is not None
    assert pe.stdout.readline().strip() == b"registered"

    async def scenario() -> None:
        assert await resolved_ids(registrar.asap, POOL) == {0xBEEF}
        # Alive and answering: still there after several keep-alive rounds.
        await asyncio.sleep(4 * BOUND)
        assert await resolved_ids(registrar.asap, POOL) == {0xBEEF}
        pe.send_signal(signal.SIGSTOP)
        took = await wait_until(lambda: _gone(registrar.asap), timeout=BOUND + 5, interval=0.05)
        assert took <= BOUND + SLACK, f"PE removed only after {took:.2f} s"

    try:
        asyncio.run(scenario())
    finally:
        pe.send_signal(signal.SIGCONT)
    assert "keep-alive" in registrar.log_text().lower()


def test_pe_ignoring_keepalives_is_removed_but_connection_stays(procs: ProcessPool) -> None:
    registrar = start_registrar(procs, 0x5B)

    async def scenario() -> None:
        client = await AsapClient.open(registrar.asap)
        assert not (await client.register(POOL, make_pe(0x51))).rejected
        assert not (await client.register(POOL, make_pe(0x52))).rejected
        await asyncio.sleep(3 * BOUND)
        assert await resolved_ids(registrar.asap, POOL) == {0x51, 0x52}
        # Keep-alives name the PE and the registrar (rsplib's extension).
        seen = {(ka.identifier, ka.server_id) for ka in client.keepalives}
        assert {(0x51, 0x5B), (0x52, 0x5B)} <= seen
        assert not any(ka.home for ka in client.keepalives)
        client.registered.discard((POOL, 0x52))  # stop answering for this one only
        took = await wait_until(
            lambda: _ids(registrar.asap, {0x51}), timeout=BOUND + 5, interval=0.05
        )
        assert took <= BOUND + SLACK
        # The other PE on the same connection stays, and the connection still serves.
        await asyncio.sleep(2 * BOUND)
        assert await resolved_ids(registrar.asap, POOL) == {0x51}
        response = await client.resolve(POOL)
        assert [pe.identifier for pe in response.pool_elements] == [0x51]
        await client.close()

    asyncio.run(scenario())


async def _gone(address: tuple[str, int]) -> bool:
    return await resolved_ids(address, POOL) == set()


async def _ids(address: tuple[str, int], expected: set[int]) -> bool:
    return await resolved_ids(address, POOL) == expected
