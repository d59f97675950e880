"""The PU engine against in-process fractal PEs and a registrar on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from fractal_pe.fgp import Algorithm
from fractal_pe.kernel import compute_rows
from fractal_pe.service import FractalService, FractalServiceConfig, fractal_cookie_policy
from fractal_pu.engine import (
    CellDone,
    CellRestarted,
    CellSession,
    EngineConfig,
    EngineEvent,
    FailoverCompleted,
    FailoverStarted,
    FractalEngine,
    ImageDone,
    ImageResult,
    PixelsArrived,
)
from fractal_pu.fsf import FractalJob
from fractal_pu.split import sub_parameters
from rsplib.asap.service import AsapService
from rsplib.registrar.service import RegistrarService
from rsplib.session.cookies import CookieSealer
from rsplib.session.pe_server import PoolElementServer
from rsplib.session.pu_machine import SessionEvent
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import HeartbeatConfig
from rsplib.wire.constants import PPID
from tests.session.loopback import FAST_ASAP, asap_address, registrar, run

POOL = "FractalTestPool"
KEY = b"engine-test-key-0123456789"
JOB = FractalJob(Algorithm.MANDELBROT, -2.0, -1.2, 1.0, 1.2, 2.0, 64)


def reference(result: ImageResult) -> np.ndarray:
    """Each cell computed offline from its own parameters, pasted into one image."""
    image = np.zeros((result.height, result.width), dtype=np.uint32)
    for cell in result.cells:
        r = cell.rect
        param = sub_parameters(result.job, r, result.width, result.height)
        image[r.y : r.y + r.h, r.x : r.x + r.w] = compute_rows(param, 0, r.h, kernel="numpy")
    return image


@contextlib.asynccontextmanager
async def fractal_pe(
    reg: RegistrarService,
    identifier: int,
    *,
    key: bytes = KEY,
    config: FractalServiceConfig | None = None,
) -> AsyncIterator[tuple[PoolElementServer, FractalService]]:
    service = FractalService(config or FractalServiceConfig(kernel="numpy"))
    server = PoolElementServer(
        POOL,
        service.handle,
        cookies=fractal_cookie_policy(CookieSealer(key, POOL.encode()), accept_unsigned=False),
        identifier=identifier,
        max_sessions=service.config.max_threads,
        registrars=[asap_address(reg)],
        asap_config=FAST_ASAP,
        transport="tcp-mapping",
        ppid=int(PPID.FGP),
    )
    await server.start()
    try:
        await server.wait_registered(5.0)
        yield server, service
    finally:
        await service.shutdown(1.0)
        await server.close()


def make_engine(
    reg: RegistrarService, events: list[EngineEvent]
) -> tuple[FractalEngine, AsapService]:
    asap = AsapService(FAST_ASAP, registrars=[asap_address(reg)], transport="tcp-mapping")

    async def factory(on_event: Callable[[SessionEvent], None]) -> CellSession:
        return await PoolUserSession.connect(
            POOL,
            asap=asap,
            heartbeat=HeartbeatConfig(0.25, 3),
            timeout=5.0,
            ppid=int(PPID.FGP),
            on_event=on_event,
        )

    engine = FractalEngine(
        factory,
        config=EngineConfig(receive_timeout=2.0, image_timeout=20.0),
        listener=events.append,
    )
    return engine, asap


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_image_through_two_pes_equals_the_reference() -> None:
    async def scenario() -> None:
        events: list[EngineEvent] = []
        async with registrar() as reg, fractal_pe(reg, 0x71), fractal_pe(reg, 0x72):
            engine, asap = make_engine(reg, events)
            await asap.start()
            try:
                result = await engine.compute_image(JOB, 96, 60, 4)
            finally:
                await asap.close()
        assert result.complete and result.missing_pixels == 0
        assert np.array_equal(result.values, reference(result))
        assert sum(c.pixels_computed_twice for c in result.cells) == 0
        assert {pe for c in result.cells for pe in c.pes_used} <= {0x71, 0x72}
        # Events: every pixel announced once, every cell done, then the image.
        arrived = sum(len(e.values) for e in events if isinstance(e, PixelsArrived))
        assert arrived == 96 * 60
        assert sorted(e.cell for e in events if isinstance(e, CellDone)) == [0, 1, 2, 3]
        assert isinstance(events[-1], ImageDone)

    run(scenario(), 30)


def test_clean_stop_of_a_serving_pe_loses_and_repeats_nothing() -> None:
    async def scenario() -> None:
        events: list[EngineEvent] = []
        slow = FractalServiceConfig(kernel="numpy", block_delay=0.02)
        async with (
            registrar() as reg,
            fractal_pe(reg, 0x81, config=slow),
            fractal_pe(reg, 0x82, config=slow) as (server_b, service_b),
        ):
            engine, asap = make_engine(reg, events)
            await asap.start()
            try:
                image = asyncio.create_task(engine.compute_image(JOB, 120, 80, 2))
                await _until(lambda: service_b.active_sessions > 0)
                await asyncio.sleep(0.15)
                # What fractal-pe does on SIGINT: deregister, hand over, stop.
                await server_b.asap.deregister(server_b.pool_handle, server_b.identifier, 1.0)
                await service_b.shutdown(2.0)
                result = await image
            finally:
                await asap.close()
        assert result.complete
        assert np.array_equal(result.values, reference(result))
        assert sum(c.pixels_computed_twice for c in result.cells) == 0
        moved = [e for e in events if isinstance(e, FailoverCompleted)]
        assert moved and all(e.old_pe == 0x82 and e.had_cookie for e in moved)
        assert all(e.resumed_time >= e.fault_time for e in moved)
        assert not any(isinstance(e, CellRestarted) for e in events)

    run(scenario(), 40)


def test_rejected_cookie_restarts_the_cell_from_its_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        events: list[EngineEvent] = []
        slow = FractalServiceConfig(kernel="numpy", block_delay=0.02, cookie_max_packets=2)
        async with registrar() as reg:
            # PE A signs with the pool's key; PE B has another key, so to B every cookie
            # of A looks forged.
            a = fractal_pe(reg, 0x91, config=slow)
            server_a, _ = await a.__aenter__()
            try:
                engine, asap = make_engine(reg, events)
                await asap.start()
                image = asyncio.create_task(engine.compute_image(JOB, 80, 50, 1))
                await _until(lambda: any(isinstance(e, PixelsArrived) for e in events))
                async with fractal_pe(reg, 0x92, key=b"another-key-0123456789"):
                    await asyncio.sleep(0.1)
                    # A crashes: deregistered and gone without handing over.
                    await server_a.asap.deregister(server_a.pool_handle, 0x91, 1.0)
                    await server_a.close()
                    result = await image
                await asap.close()
            finally:
                await a.__aexit__(None, None, None)
        assert result.complete
        assert np.array_equal(result.values, reference(result))
        cell = result.cells[0]
        assert cell.cookies_rejected >= 1 and cell.restarts >= 1
        assert any(f.cookie_rejected for f in cell.failovers)
        assert cell.pes_used[-1] == 0x92
        assert any(isinstance(e, CellRestarted) for e in events)
        assert any(isinstance(e, FailoverStarted) and e.old_pe == 0x91 for e in events)

    with caplog.at_level(logging.WARNING):
        run(scenario(), 40)
    assert "Cookie Echo rejected" in caplog.text and "rejected our cookie" in caplog.text
