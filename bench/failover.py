"""Failover benchmark: real registrar and echo-PE processes, a PU session in this process.

Figures:
  sigkill_ms   time from SIGKILL of the serving PE to the first data received from the
               new PE (median, p95 over --runs faults)
  sigstop_ms   the same for SIGSTOP of the serving PE, detected by the session heartbeat
               (250 ms interval, 2 misses)
  hr_rtt_us    handle-resolution round trip through the library (AsapService.resolve,
               no cache) to a registrar process on loopback (p50, p99 over --resolutions)

The PU streams a 16-byte message every 2 ms; killed PEs are restarted (same identifier)
and stopped ones continued before the next run. Goals: sigkill median < 50 ms, sigstop
median < 1 s, HR p50 < 1 ms.

Usage: python bench/failover.py [--json] [--runs 20] [--resolutions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AsapService
from rsplib.session.pu_machine import FailoverCompleted, SessionEvent
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import HeartbeatConfig
from tests.integration.processes import EchoPe, Process, Registrar

POOL = b"EchoPool"
PE_IDS = (0x701, 0x702, 0x703)
HEARTBEAT = HeartbeatConfig(interval=0.25, misses=2)
ASAP = AsapConfig(registrar_connect_timeout=2.0, registrar_response_timeout=2.0)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Bench:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []
        self.registrar = Registrar(0xB1, log_dir)
        self.processes.append(self.registrar)
        self.registrar.ready()
        self.pes: dict[int, EchoPe] = {}
        for pe_id in PE_IDS:
            self.start_pe(pe_id)
        for pe in self.pes.values():
            pe.registered()

    def start_pe(self, pe_id: int) -> EchoPe:
        old = self.pes.get(pe_id)
        if old is not None:
            old.stop()
            old.log_path.rename(old.log_path.with_suffix(f".{time.monotonic_ns()}.log"))
        pe = EchoPe(pe_id, self.log_dir, registrars=[self.registrar])
        self.processes.append(pe)
        self.pes[pe_id] = pe
        return pe

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class Stream:
    """Writes every 2 ms; records the arrival time of each echo."""

    def __init__(self, session: PoolUserSession) -> None:
        self.session = session
        self.arrivals: list[float] = []
        self.completed_at: list[float] = []
        self._new_data = asyncio.Event()

    def on_event(self, event: SessionEvent) -> None:
        if isinstance(event, FailoverCompleted):
            self.completed_at.append(asyncio.get_running_loop().time())

    async def writer(self) -> None:
        number = 0
        while True:
            number += 1
            await self.session.write(b"bench %010d" % number)
            await asyncio.sleep(0.002)

    async def reader(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await self.session.read()
            if not data:
                return
            self.arrivals.append(loop.time())
            self._new_data.set()

    async def first_data_after_failover(self, failovers_before: int, limit: float) -> float:
        """Arrival time of the first echo after the next failover completed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if len(self.completed_at) > failovers_before:
                done = self.completed_at[failovers_before]
                later = [t for t in self.arrivals if t >= done]
                if later:
                    return later[0]
            self._new_data.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_data.wait(), 0.05)
        raise TimeoutError("no data from a new PE")


async def wait_pool_size(asap: AsapService, size: int, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while len(await asap.resolve(POOL, 0xFFFFFFFF)) < size:
        if loop.time() > deadline:
            raise TimeoutError(f"pool did not get back to {size} PEs")
        await asyncio.sleep(0.05)


async def fault_runs(bench: Bench, asap: AsapService, sig: int, runs: int) -> list[float]:
    results: list[float] = []
    stream_holder: list[Stream] = []

    def on_event(event: SessionEvent) -> None:
        stream_holder[0].on_event(event)

    session = await PoolUserSession.connect(POOL, asap=asap, heartbeat=HEARTBEAT, on_event=on_event)
    stream = Stream(session)
    stream_holder.append(stream)
    tasks = [asyncio.create_task(stream.writer()), asyncio.create_task(stream.reader())]
    loop = asyncio.get_running_loop()
    try:
        for _ in range(runs):
            await wait_pool_size(asap, len(PE_IDS))
            await asyncio.sleep(0.1)  # a steady stream before the fault
            serving = session.pool_element
            assert serving is not None
            victim = bench.pes[serving.identifier]
            before = len(stream.completed_at)
            fault_at = loop.time()
            os.kill(victim.pid, sig)
            arrival = await stream.first_data_after_failover(before, 10.0)
            results.append((arrival - fault_at) * 1000.0)
            if sig == signal.SIGKILL:
                victim.proc.wait(5)
                bench.start_pe(serving.identifier).registered()
            else:
                victim.signal(signal.SIGCONT)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
    return results


async def hr_round_trips(asap: AsapService, count: int) -> list[float]:
    times: list[float] = []
    for _ in range(50):  # warm-up
        await asap.resolve(POOL, 3)
    for _ in range(count):
        start = time.perf_counter()
        await asap.resolve(POOL, 3)
        times.append((time.perf_counter() - start) * 1e6)
    return times


async def measure(bench: Bench, runs: int, resolutions: int) -> dict[str, float]:
    async with AsapService(
        ASAP, registrars=[bench.registrar.asap], transport="tcp-mapping"
    ) as asap:
        hr = await hr_round_trips(asap, resolutions)
        kill = await fault_runs(bench, asap, signal.SIGKILL, runs)
        stop = await fault_runs(bench, asap, signal.SIGSTOP, runs)
    return {
        "sigkill_ms_median": statistics.median(kill),
        "sigkill_ms_p95": percentile(kill, 0.95),
        "sigstop_ms_median": statistics.median(stop),
        "sigstop_ms_p95": percentile(stop, 0.95),
        "hr_rtt_us_p50": percentile(hr, 0.50),
        "hr_rtt_us_p99": percentile(hr, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=20, help="faults per kind (default 20)")
    parser.add_argument("--resolutions", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsp-failover-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            figures = asyncio.run(measure(bench, args.runs, args.resolutions))
        finally:
            bench.stop()
    if args.json:
        print(json.dumps({"runs": args.runs, **figures}))
        return
    print(f"failover over {args.runs} runs each (registrar + 3 echo PEs, loopback):")
    print(
        f"  (a) SIGKILL serving PE -> first data from new PE: "
        f"median {figures['sigkill_ms_median']:.1f} ms, p95 {figures['sigkill_ms_p95']:.1f} ms"
        "  (goal: median < 50 ms)"
    )
    print(
        f"  (b) SIGSTOP serving PE, 250 ms heartbeat x 2:     "
        f"median {figures['sigstop_ms_median']:.1f} ms, p95 {figures['sigstop_ms_p95']:.1f} ms"
        "  (goal: median < 1000 ms)"
    )
    print(
        f"  handle resolution round trip: p50 {figures['hr_rtt_us_p50']:.0f} us, "
        f"p99 {figures['hr_rtt_us_p99']:.0f} us  (goal: p50 < 1000 us)"
    )


if __name__ == "__main__":
    main()
