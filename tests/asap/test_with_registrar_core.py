"""ASAP clients against the real registrar cores (sans-IO, fake clock, in-memory network)."""

from __future__ import annotations

from rsplib.asap import (
    AsapConfig,
    HomeRegistrarChanged,
    NoRegistrar,
    RegistrationSucceeded,
    RequestTimedOut,
    ResolutionResult,
)
from rsplib.wire.constants import PolicyType
from rsplib.wire.params import PolicyParam, TcpTransport, ip
from tests.asap.core_world import CoreWorld

POOL = b"EchoPool"
RR = PolicyParam(PolicyType.ROUND_ROBIN)
FAST_CLIENT = AsapConfig(reregistration_interval=2.0, registrar_connect_timeout=2.0)


def transport(port: int) -> TcpTransport:
    return TcpTransport(port, (ip("127.0.0.1"),))


def two_registrars() -> CoreWorld:
    world = CoreWorld()
    world.add_registrar("A", 0xA)
    world.add_registrar("B", 0xB, peers=("A",))
    world.advance(3.0)  # peering and start-up
    return world


def resolved_ids(world: CoreWorld, client: str, request: int) -> list[int]:
    for event in world.events[client]:
        if isinstance(event, ResolutionResult) and event.request_id == request:
            assert event.error is None, f"resolution failed with cause 0x{event.error:04x}"
            return [pe.identifier for pe in event.pool_elements]
    raise AssertionError(f"no answer to request {request}")


def test_registration_keep_alives_and_resolution_through_a_peer() -> None:
    world = two_registrars()
    pe = world.add_client("pe", FAST_CLIENT, static=("A",))
    pu = world.add_client("pu", FAST_CLIENT, static=("B",))
    pe_id = pe.register(POOL, None, transport(7000), RR, world.now)
    world.advance(0.1)
    # The registrar greets a TCP-mapping connection with its identifier, so the PE knows it
    # before the first keep-alive, and so does the PU, which never gets a keep-alive.
    assert world.events_of("pe", RegistrationSucceeded) == [RegistrationSucceeded(POOL, pe_id, 0xA)]
    entry = world.registrars["A"].core.handlespace.get(POOL, pe_id)
    assert entry is not None and entry.home_registrar_id == 0xA
    # 20 s of registrar keep-alives (1 s interval, 1 s timeout): the PE answers them all.
    world.advance(20.0)
    assert world.registrars["A"].core.handlespace.get(POOL, pe_id) is not None
    assert pe.home_registrar == (world.registrars["A"].asap, 0xA)
    request = pu.resolve(POOL, 1, world.now)
    world.advance(0.1)
    assert resolved_ids(world, "pu", request) == [pe_id]
    assert pu.home_registrar == (world.registrars["B"].asap, 0xB)


def test_load_change_reaches_the_registrar_at_once() -> None:
    world = two_registrars()
    pe = world.add_client("pe", FAST_CLIENT, static=("A",))
    lu = PolicyParam(PolicyType.LEAST_USED, load=10)
    pe_id = pe.register(POOL, 0x42, transport(7000), lu, world.now)
    world.advance(0.1)
    pe.update_policy(POOL, pe_id, PolicyParam(PolicyType.LEAST_USED, load=12345), world.now)
    world.pump()
    entry = world.registrars["A"].core.handlespace.get(POOL, pe_id)
    assert entry is not None and entry.policy.load == 12345


def test_home_registrar_killed_pe_keeps_identity_and_stays_resolvable() -> None:
    world = two_registrars()
    pe = world.add_client("pe", FAST_CLIENT, static=("A", "B"))
    pu = world.add_client("pu", FAST_CLIENT, static=("B",))
    ids = [pe.register(POOL, None, transport(7000 + i), RR, world.now) for i in range(3)]
    world.advance(2.0)
    world.kill("A")
    world.advance(0.5)
    b = world.registrars["B"]
    assert pe.home_registrar is not None and pe.home_registrar[0] == b.asap
    changes = world.events_of("pe", HomeRegistrarChanged)
    assert len(changes) == 2  # first connection to A, then B
    for pe_id in ids:
        entry = b.core.handlespace.get(POOL, pe_id)
        assert entry is not None and entry.home_registrar_id == 0xB
    succeeded = [e for e in world.events["pe"] if isinstance(e, RegistrationSucceeded)]
    assert sorted(e.identifier for e in succeeded) == sorted(ids * 2)
    # Later: B keeps the PEs (keep-alives answered), the PU still gets all three.
    world.advance(10.0)
    request = pu.resolve(POOL, 3, world.now)
    world.advance(0.1)
    assert sorted(resolved_ids(world, "pu", request)) == sorted(ids)


def test_discovery_by_server_announce() -> None:
    world = CoreWorld()
    world.add_registrar("A", 0xA)
    pe = world.add_client("pe", AsapConfig(registrar_connect_timeout=5.0))
    pe_id = pe.register(POOL, 7, transport(7000), RR, world.now)
    world.advance(3.0)  # registrar start-up ends at 1 s, then it announces every ~1 s
    assert world.events_of("pe", RegistrationSucceeded) == [RegistrationSucceeded(POOL, pe_id, 0xA)]
    assert world.registrars["A"].core.handlespace.get(POOL, pe_id) is not None


def test_unreachable_reports_do_not_remove_a_pe_that_answers_its_keep_alives() -> None:
    world = two_registrars()
    pe = world.add_client("pe", FAST_CLIENT, static=("A",))
    pu = world.add_client("pu", FAST_CLIENT, static=("A",))
    pe_id = pe.register(POOL, 9, transport(7000), RR, world.now)
    world.advance(0.5)
    for _ in range(3):  # rsplib's MaxBadPEReports, all from one pool user
        pu.report_unreachable(POOL, pe_id, world.now)
    world.pump()
    world.advance(6.0)  # beyond the keep-alive timeout of the probe it answered
    assert world.registrars["A"].core.handlespace.get(POOL, pe_id) is not None


def test_no_registrar_reachable_is_a_clear_error_within_the_timeout() -> None:
    world = two_registrars()
    pu = world.add_client("pu", AsapConfig(registrar_connect_timeout=2.0), static=("A", "B"))
    world.kill("A")
    world.kill("B")
    request = pu.resolve(POOL, 1, world.now)
    world.advance(1.9)
    assert world.events["pu"] == []
    world.advance(0.2)
    (no_registrar,) = world.events_of("pu", NoRegistrar)
    assert "127.0.0.1:3001" in no_registrar.reason and "127.0.0.1:3002" in no_registrar.reason
    (timed_out,) = world.events_of("pu", RequestTimedOut)
    assert timed_out.request_id == request
