"""Real rsp-registrar processes on loopback peering over ENRP (--peer lists), over the
TCP mapping and over kernel SCTP (tests.transports.both_transports).

Three registrars: PEs registered at the first are resolvable at the others within 1 s;
after SIGKILL of the first the others take its PEs over (seen in their status reports:
the owned count) and keep them resolvable; restarted, the first resyncs from a mentor and
serves the same handlespace. With two registrars only, the takeover completes too.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsplib.wire.csp import ComponentGroup, component_id
from tests.registrar.service_helpers import (
    AsapClient,
    CspCollector,
    ProcessPool,
    RegistrarProcess,
    make_pe,
    registrar_args,
    resolved_ids,
    wait_until,
)
from tests.support import patience
from tests.transports import both_transports

POOL = b"PeeringPool"
# Short ENRP timers (ms) so the group stays fast.
LAST_HEARD_MS = 1000
NO_RESPONSE_MS = 500
TAKEOVER_MS = 1000
TIMERS = [
    "--peer-heartbeat-interval",
    "250",
    "--peer-max-time-last-heard",
    str(LAST_HEARD_MS),
    "--peer-max-time-no-response",
    str(NO_RESPONSE_MS),
    "--takeover-expiry",
    str(TAKEOVER_MS),
    # How long a starting registrar waits for a peer's Presence before it serves
    # without a mentor: stretched in the slow lab VM, where connecting takes longer.
    "--mentor-discovery-timeout",
    str(round(patience(500))),
    "--endpoint-keepalive-interval",
    "1000",
    "--endpoint-keepalive-timeout",
    "1000",
    "--cspinterval",
    "100",
]
#: Death noticed (last heard + no response), takeover (expiry at most), plus slack for
#: process scheduling on a busy 2-core machine.
TAKEOVER_BOUND = (LAST_HEARD_MS + NO_RESPONSE_MS + TAKEOVER_MS) / 1000 + 2.0
PE_IDS = [0x1001, 0x1002, 0x1003]


@dataclass
class Peering:
    procs: ProcessPool
    transport: str


@pytest.fixture
def procs(tmp_path: Path, transport: str) -> Iterator[Peering]:
    pool = ProcessPool(tmp_path)
    yield Peering(pool, transport)
    pool.close()


def start(
    procs: Peering,
    identifier: int,
    csp: tuple[str, int],
    peers: list[RegistrarProcess] | None = None,
) -> RegistrarProcess:
    extra = [*TIMERS, "--cspserver", f"{csp[0]}:{csp[1]}"]
    peer_addresses = [p.enrp for p in peers or []]
    args = registrar_args(identifier, peers=peer_addresses, extra=extra, transport=procs.transport)
    return procs.procs.registrar(args, name=f"pr{identifier:x}").wait_ready()


async def register_pes(procs: Peering, registrar: RegistrarProcess) -> AsapClient:
    client = await AsapClient.open(registrar.asap, transport=procs.transport)
    for identifier in PE_IDS:
        response = await client.register(POOL, make_pe(identifier, port=30000 + identifier))
        assert not response.rejected, response
    return client


@both_transports
def test_three_registrars_share_take_over_and_resync(procs: Peering) -> None:
    async def scenario() -> None:
        csp = await CspCollector.start()
        try:
            a = start(procs, 0xA1, csp.address)
            b = start(procs, 0xB2, csp.address, [a])
            c = start(procs, 0xC3, csp.address, [a, b])
            # All three see two peers before PEs arrive.
            await wait_until(
                lambda: all((csp.counts(r.server_id) or {}).get("peers") == 2 for r in (a, b, c)),
                timeout=10,
            )
            client = await register_pes(procs, a)
            expected = set(PE_IDS)
            # Handle Updates go out at once (no protocol timer is involved), so this bound is
            # only CPU work: the registrars' and this checking client's. In the lab VM that
            # work runs many times slower, hence the scaling.
            limit = patience(1.0)
            took = await wait_until(
                lambda: _all_resolve([b, c], expected, procs.transport),
                timeout=limit,
                interval=0.02,
            )
            assert took <= limit
            # A owns them; B and C hold them as peer-owned.
            await wait_until(lambda: (csp.counts(a.server_id) or {}).get("owned") == 3, 5)
            assert csp.counts(b.server_id)["owned"] == 0  # type: ignore[index]

            a.signal(signal.SIGKILL)
            a.proc.wait(timeout=5)
            await client.close()
            loop = asyncio.get_running_loop()
            killed_at = loop.time()

            def taken_over() -> bool:
                owned = [csp.counts(r.server_id) for r in (b, c)]
                return all(o is not None for o in owned) and (
                    sum(o["owned"] for o in owned if o is not None) == len(PE_IDS)
                )

            await wait_until(taken_over, timeout=TAKEOVER_BOUND + 3)
            elapsed = loop.time() - killed_at
            assert elapsed <= TAKEOVER_BOUND, f"takeover took {elapsed:.2f} s"
            # Exactly one of them won the race, and both still resolve every PE.
            winners = [r for r in (b, c) if csp.counts(r.server_id)["owned"]]  # type: ignore[index]
            assert len(winners) == 1
            assert "complete: 3 PE(s) now ours" in winners[0].log_text()
            assert await _all_resolve([b, c], expected, procs.transport)

            # Restart A (same id, new ports): it takes B as mentor and resyncs. Its old
            # reports (same component id) must not stand in for the new process's.
            csp.latest.pop(component_id(ComponentGroup.REGISTRAR, 0xA1), None)
            a2 = start(procs, 0xA1, csp.address, [b, c])
            await wait_until(lambda: _all_resolve([a2], expected, procs.transport), timeout=5)
            assert "mentor: peer 0x" in a2.log_text()
            # Same handlespace at all three, and A no longer owns the PEs.
            for r in (a2, b, c):
                assert await resolved_ids(r.asap, POOL, procs.transport) == expected
            await wait_until(lambda: (csp.counts(a2.server_id) or {}).get("peers") == 2, 5)
            assert csp.counts(a2.server_id)["owned"] == 0  # type: ignore[index]
        finally:
            csp.close()

    asyncio.run(scenario())


@both_transports
def test_two_registrars_takeover_completes(procs: Peering) -> None:
    async def scenario() -> None:
        csp = await CspCollector.start()
        try:
            a = start(procs, 0x2A, csp.address)
            b = start(procs, 0x2B, csp.address, [a])
            await wait_until(lambda: (csp.counts(b.server_id) or {}).get("peers") == 1, 10)
            client = await register_pes(procs, a)
            await wait_until(lambda: _all_resolve([b], set(PE_IDS), procs.transport), timeout=1.0)
            a.signal(signal.SIGKILL)
            a.proc.wait(timeout=5)
            await client.close()
            took = await wait_until(
                lambda: (csp.counts(b.server_id) or {}).get("owned") == len(PE_IDS),
                timeout=TAKEOVER_BOUND + 3,
            )
            assert took <= TAKEOVER_BOUND
            assert "takeover of 0x0000002a complete" in b.log_text()
            assert (csp.counts(b.server_id) or {}).get("peers") == 0
            assert await resolved_ids(b.asap, POOL, procs.transport) == set(PE_IDS)
        finally:
            csp.close()

    asyncio.run(scenario())


async def _all_resolve(
    registrars: list[RegistrarProcess], expected: set[int], transport: str
) -> bool:
    for registrar in registrars:
        if await resolved_ids(registrar.asap, POOL, transport) != expected:
            return False
    return True
