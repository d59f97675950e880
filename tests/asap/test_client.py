"""The ASAP client core against scripted registrars with a fake clock."""

from __future__ import annotations

import pytest

from rsplib.asap import (
    AsapConfig,
    AsapErrorReceived,
    CloseConnection,
    Deregistered,
    HomeRegistrarChanged,
    LogEvent,
    NoRegistrar,
    RegistrationFailed,
    RegistrationSucceeded,
    RequestTimedOut,
    ResolutionResult,
    SendMessage,
)
from rsplib.wire.asap import (
    AsapError,
    Deregistration,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    Registration,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID, ErrorCause
from rsplib.wire.params import OperationError, SctpTransport, TcpTransport, ip
from tests.asap.harness import POOL, RR, FakeRegistrar, World, lu, user_transport


def registered_world(**config: object) -> tuple[World, FakeRegistrar, int]:
    world = World(AsapConfig(**config))  # type: ignore[arg-type]
    registrar = world.add_registrar(3863, 0x1111)
    pe_id = world.client.register(POOL, 0x100, user_transport(), RR, world.now)
    world.settle()
    return world, registrar, pe_id


def acks(registrar: FakeRegistrar) -> list[tuple[bytes, int]]:
    return [(m.pool_handle, m.identifier) for m in registrar.of_type(EndpointKeepAliveAck)]


# --------------------------------------------------------------------------- registration


def test_register_hunts_connects_and_registers() -> None:
    world, registrar, pe_id = registered_world()
    assert world.connect_requests == [(registrar.address,)]
    (reg,) = registrar.of_type(Registration)
    assert isinstance(reg, Registration)
    pe = reg.pool_element
    assert (reg.pool_handle, pe.identifier) == (POOL, 0x100)
    assert pe.registration_life == 90_000  # 3 x 30 s, in ms
    assert pe.asap_transport is None
    assert pe.user_transport == user_transport()
    assert world.events_of(RegistrationSucceeded) == [RegistrationSucceeded(POOL, 0x100, 0)]
    assert world.client.pool_elements() == [(POOL, 0x100, True)]
    assert pe_id == 0x100


def test_random_identifiers_are_valid_and_distinct() -> None:
    world = World()
    world.add_registrar(3863, 1)
    ids = {world.client.register(POOL, None, user_transport(), RR, world.now) for _ in range(50)}
    assert len(ids) == 50
    assert all(1 <= i <= 0xFFFFFFFF for i in ids)
    with pytest.raises(ValueError, match="identifier"):
        world.client.register(POOL, 0, user_transport(), RR, world.now)
    with pytest.raises(ValueError, match="pool handle"):
        world.client.register(b"", 5, user_transport(), RR, world.now)


def test_reregistration_every_interval() -> None:
    world, registrar, _ = registered_world(reregistration_interval=30.0)
    world.advance(29.9)
    assert len(registrar.of_type(Registration)) == 1
    world.advance(0.2)
    assert len(registrar.of_type(Registration)) == 2
    world.advance(60.0)
    assert len(registrar.of_type(Registration)) == 4
    # Re-registrations at the same registrar do not repeat the success event.
    assert len(world.events_of(RegistrationSucceeded)) == 1


def test_load_change_reregisters_at_once_and_restarts_the_timer() -> None:
    world = World()
    registrar = world.add_registrar(3863, 7)
    world.client.register(POOL, 0x200, user_transport(), lu(10), world.now)
    world.advance(10.0)
    world.client.update_policy(POOL, 0x200, lu(500), world.now)
    world.settle()
    regs = registrar.of_type(Registration)
    assert [r.pool_element.policy.load for r in regs if isinstance(r, Registration)] == [10, 500]
    world.client.update_policy(POOL, 0x200, lu(500), world.now)  # unchanged: nothing sent
    world.settle()
    assert len(registrar.of_type(Registration)) == 2
    world.advance(29.0)  # 39 s after the first, 29 s after the load change
    assert len(registrar.of_type(Registration)) == 2
    world.advance(1.5)
    assert len(registrar.of_type(Registration)) == 3
    with pytest.raises(KeyError):
        world.client.update_policy(POOL, 0x999, lu(1), world.now)


def test_rejected_registration_reports_the_cause_and_stops() -> None:
    world = World()
    registrar = world.add_registrar(3863, 7)
    registrar.reject_cause = ErrorCause.INCONSISTENT_POOLING_POLICY
    world.client.register(POOL, 0x300, user_transport(), RR, world.now)
    world.settle()
    (failed,) = world.events_of(RegistrationFailed)
    assert failed == RegistrationFailed(
        POOL, 0x300, ErrorCause.INCONSISTENT_POOLING_POLICY, "INCONSISTENT_POOLING_POLICY"
    )
    assert world.client.pool_elements() == []
    world.advance(100.0)
    assert len(registrar.of_type(Registration)) == 1


def test_registration_refused_for_security_is_retried_until_accepted() -> None:
    world = World()
    registrar = world.add_registrar(3863, 7)
    registrar.reject_cause = ErrorCause.REJECTION_DUE_TO_SECURITY  # still bound elsewhere
    world.client.register(POOL, 0x301, user_transport(), RR, world.now)
    world.settle()
    world.advance(5.0)  # retried every 2 s, told once
    assert len(world.events_of(RegistrationFailed)) == 1
    assert len(registrar.of_type(Registration)) == 3
    registrar.reject_cause = None  # the registrar saw our old connection go
    world.advance(2.1)
    assert world.events_of(RegistrationSucceeded)[-1].identifier == 0x301
    assert world.client.pool_elements() == [(POOL, 0x301, True)]


def test_deregistration() -> None:
    world, registrar, pe_id = registered_world()
    world.client.deregister(POOL, pe_id, world.now)
    world.settle()
    assert registrar.of_type(Deregistration) == [Deregistration(POOL, pe_id)]
    assert world.events_of(Deregistered) == [Deregistered(POOL, pe_id, None)]
    assert registrar.pools[POOL] == {}
    world.advance(100.0)
    assert len(registrar.of_type(Registration)) == 1
    conn = next(iter(registrar.conns))
    world.keep_alive(registrar, conn, pe_id)
    assert acks(registrar) == []


# --------------------------------------------------------------------------- keep-alive


def test_keep_alive_naming_a_pe_acks_that_pe_only() -> None:
    world, registrar, _ = registered_world()
    world.client.register(POOL, 0x101, user_transport(7001), RR, world.now)
    world.client.register(b"OtherPool", 0x102, user_transport(7002), RR, world.now)
    world.settle()
    conn = next(iter(registrar.conns))
    world.keep_alive(registrar, conn, 0x101)
    assert acks(registrar) == [(POOL, 0x101)]
    world.keep_alive(registrar, conn, 0x999)  # not ours: no answer
    assert acks(registrar) == [(POOL, 0x101)]


def test_keep_alive_naming_no_pe_acks_every_pe_once() -> None:
    world, registrar, _ = registered_world()
    world.client.register(POOL, 0x101, user_transport(7001), RR, world.now)
    world.client.register(b"OtherPool", 0x102, user_transport(7002), RR, world.now)
    world.settle()
    conn = next(iter(registrar.conns))
    world.keep_alive(registrar, conn, None)
    assert sorted(acks(registrar)) == [(POOL, 0x100), (POOL, 0x101), (b"OtherPool", 0x102)]


def test_keep_alive_teaches_the_home_id_used_in_later_registrations() -> None:
    world, registrar, _ = registered_world()
    conn = next(iter(registrar.conns))
    world.keep_alive(registrar, conn, 0x100)
    assert world.client.home_registrar == (registrar.address, 0x1111)
    world.advance(31.0)
    last = registrar.of_type(Registration)[-1]
    assert isinstance(last, Registration)
    assert last.pool_element.home_registrar_id == 0x1111


def test_h_flag_on_the_home_connection_adopts_the_new_home_id() -> None:
    world, registrar, _ = registered_world()
    conn = next(iter(registrar.conns))
    world.keep_alive(registrar, conn, 0x100)  # learn 0x1111 first
    world.events.clear()
    takeover = FakeRegistrar(registrar.address, 0x2222)  # same connection, other sender id
    world.keep_alive(takeover, conn, 0x100, home=True)
    (changed,) = world.events_of(HomeRegistrarChanged)
    assert (changed.old_registrar_id, changed.new_registrar_id) == (0x1111, 0x2222)
    assert "H flag" in changed.reason
    assert world.client.home_registrar == (registrar.address, 0x2222)
    assert acks(registrar)[-1] == (POOL, 0x100)


def test_h_flag_on_a_new_registrar_connection_moves_home_there() -> None:
    world, old, _ = registered_world()
    new = world.add_registrar(3864, 0x3333, static=False)
    old_conn = next(iter(old.conns))
    side = world.open_conn(new)
    world.client.registrar_connection_accepted(side, new.address, world.now)
    world.keep_alive(new, side, 0x100, home=True)
    assert (old_conn, "registrar 0x00003333 is the new home") in world.closed
    assert world.client.home_connection == side
    assert world.client.home_registrar == (new.address, 0x3333)
    assert acks(new) == [(POOL, 0x100)]
    (changed,) = [e for e in world.events_of(HomeRegistrarChanged) if e.new_registrar_id]
    assert changed.address == new.address
    # Requests now go to the new home; the PE stays registered without a second event.
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert new.of_type(HandleResolution)
    assert len(world.events_of(RegistrationSucceeded)) == 1


# --------------------------------------------------------------------------- failover


def test_home_lost_reregisters_elsewhere_with_the_same_identity() -> None:
    world, first, _ = registered_world()
    second = world.add_registrar(3864, 0x2222)
    world.client.register(POOL, 0x101, user_transport(7001), RR, world.now)
    world.settle()
    world.events.clear()
    world.kill(first)
    assert world.client.home_registrar == (second.address, 0)
    ids = sorted(
        r.pool_element.identifier
        for r in second.of_type(Registration)
        if isinstance(r, Registration)
    )
    assert ids == [0x100, 0x101]
    assert sorted(e.identifier for e in world.events_of(RegistrationSucceeded)) == [0x100, 0x101]
    assert len(world.events_of(HomeRegistrarChanged)) == 1


def test_pending_resolution_fails_over_when_the_connection_drops() -> None:
    world, first, _ = registered_world()
    second = world.add_registrar(3864, 0x2222)
    second.pools[POOL] = dict(first.pools[POOL])
    first.mode = "silent"
    request = world.client.resolve(POOL, 1, world.now)
    world.settle()
    world.kill(first)  # lost before any answer: moves over without using a trial
    (result,) = world.events_of(ResolutionResult)
    assert result.request_id == request
    assert [pe.identifier for pe in result.pool_elements] == [0x100]


def test_silent_registrar_is_dropped_after_the_response_timeout() -> None:
    world, first, _ = registered_world(registrar_request_max_trials=2)
    second = world.add_registrar(3864, 0x2222)
    second.pools[POOL] = dict(first.pools[POOL])
    first.mode = "silent"  # SIGSTOP
    request = world.client.resolve(POOL, 1, world.now)
    world.advance(2.9)
    assert world.client.home_registrar == (first.address, 0)
    world.advance(0.2)
    assert any(reason == "registrar response timeout" for _, reason in world.closed)
    assert world.client.home_registrar == (second.address, 0)
    (result,) = world.events_of(ResolutionResult)
    assert result.request_id == request
    assert [r.pool_element.identifier for r in second.of_type(Registration)] == [0x100]


def test_request_times_out_after_its_trials() -> None:
    world, first, _ = registered_world()  # request max trials 1 (rsplib default)
    world.add_registrar(3864, 0x2222)
    first.mode = "silent"
    request = world.client.resolve(POOL, 1, world.now)
    world.advance(3.5)
    (timed_out,) = world.events_of(RequestTimedOut)
    assert timed_out.request_id == request
    assert "handle resolution" in timed_out.what
    assert world.events_of(ResolutionResult) == []


def test_hunt_tries_three_in_parallel_then_the_rest() -> None:
    world = World()
    regs = [world.add_registrar(4000 + i, 0x10 + i) for i in range(4)]
    for registrar in regs[:3]:
        registrar.mode = "blackhole"
    regs[3].mode = "up"
    world.client.register(POOL, 0x100, user_transport(), RR, world.now)
    world.settle()
    assert world.connect_requests == [tuple(r.address for r in regs[:3])]
    assert world.client.hunting
    # One of the three is refused: room for the fourth, which answers.
    world.client.connect_failed(regs[1].address, world.now)
    world.settle()
    assert world.connect_requests[-1] == (regs[3].address,)
    assert world.client.home_registrar == (regs[3].address, 0)  # static: id not known yet


# --------------------------------------------------------------------------- no registrar


def test_no_registrar_known_fails_within_the_connect_timeout() -> None:
    world = World(AsapConfig(registrar_connect_timeout=7.5))
    start = world.now
    request = world.client.resolve(POOL, 1, world.now)
    world.advance(7.4)
    assert world.events == []
    world.advance(0.2)
    (no_registrar,) = world.events_of(NoRegistrar)
    assert "no registrar known" in no_registrar.reason
    (timed_out,) = world.events_of(RequestTimedOut)
    assert timed_out.request_id == request
    assert "no registrar" in timed_out.what
    assert world.now - start < 7.5 + 0.2
    # Nothing left to do: no further hunt, no timer.
    assert world.client.next_deadline() is None


def test_unreachable_registrars_fail_after_all_trials() -> None:
    world = World(AsapConfig(registrar_connect_timeout=2.0, registrar_connect_max_trials=3))
    registrar = world.add_registrar(3863, 1)
    registrar.mode = "blackhole"
    world.client.resolve(POOL, 1, world.now)
    world.advance(5.9)
    assert world.events_of(NoRegistrar) == []
    world.advance(0.2)
    (no_registrar,) = world.events_of(NoRegistrar)
    assert "127.0.0.1:3863" in no_registrar.reason
    assert len(world.connect_requests) == 3


def test_pe_keeps_hunting_after_no_registrar_and_registers_when_one_appears() -> None:
    world = World(AsapConfig(registrar_connect_timeout=1.0, registrar_hunt_retry_delay=0.5))
    world.client.register(POOL, 0x100, user_transport(), RR, world.now)
    world.advance(1.1)
    assert len(world.events_of(NoRegistrar)) == 1
    world.advance(1.5)  # a new round after the 0.5 s pause fails at 2.5 s, too
    assert len(world.events_of(NoRegistrar)) == 2
    assert not world.client.hunting  # in the pause before the next round
    late = world.add_registrar(3863, 9, static=False)
    world.announce(late.address, 9)  # during the retry pause: hunt at once
    assert world.events_of(RegistrationSucceeded) == [RegistrationSucceeded(POOL, 0x100, 9)]


# --------------------------------------------------------------------------- announces


def test_announce_uses_source_address_and_expires() -> None:
    world = World(AsapConfig(registrar_announce_timeout=5.0))
    source = world.add_registrar(12345, 0xABC, static=False).address
    world.announce(source, 0xABC)
    assert source in world.client.registrar_table
    world.advance(4.0)
    world.announce(source, 0xABC)  # refresh
    world.advance(4.9)
    assert source in world.client.registrar_table
    world.advance(0.2)
    assert source not in world.client.registrar_table


def test_announce_with_transport_parameters() -> None:
    world = World()
    udp_source = world.add_registrar(40000, 5, static=False).address
    tcp = TcpTransport(5555, (ip("127.0.0.1"),))
    wildcard = TcpTransport(6666, (ip("0.0.0.0"),))  # stands for the datagram's source
    sctp_only = SctpTransport(7777, (ip("127.0.0.2"),))  # not our transport kind
    world.announce(udp_source, 5, (tcp, wildcard, sctp_only))
    table = world.client.registrar_table
    addresses = {e.address for e in table.entries()}
    assert {(a.host, a.port) for a in addresses} == {("127.0.0.1", 5555), ("127.0.0.1", 6666)}
    assert udp_source not in table


def test_announce_during_hunt_is_tried_at_once_and_id_known() -> None:
    world = World()
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert world.connect_requests == []
    registrar = world.add_registrar(3863, 0x77, static=False)
    world.advance(2.0)
    world.announce(registrar.address, 0x77)
    assert world.connect_requests == [(registrar.address,)]
    assert world.client.home_registrar == (registrar.address, 0x77)
    (result,) = world.events_of(ResolutionResult)
    assert result.error == ErrorCause.UNKNOWN_POOL_HANDLE


# --------------------------------------------------------------------------- resolution / cache


def test_resolution_without_cache_sends_the_item_option() -> None:
    world, registrar, _ = registered_world()
    world.client.resolve(POOL, 1, world.now)
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert registrar.of_type(HandleResolution) == [HandleResolution(POOL, 1)] * 2
    assert [r.from_cache for r in world.events_of(ResolutionResult)] == [False, False]


def test_resolution_responses_match_requests_in_order_per_pool() -> None:
    world, registrar, _ = registered_world()
    world.client.register(b"OtherPool", 0x200, user_transport(7002), RR, world.now)
    world.settle()
    registrar.mode = "silent"
    first = world.client.resolve(POOL, 1, world.now)
    second = world.client.resolve(b"OtherPool", 1, world.now)
    world.settle()
    conn = next(iter(registrar.conns))
    registrar.mode = "up"
    # Answer the second request first: matching is by pool handle, then in order.
    for request in reversed(registrar.of_type(HandleResolution)):
        assert isinstance(request, HandleResolution)
        (reply,) = registrar.handle(conn, encode_asap(request))
        world.client.receive(conn, PPID.ASAP, reply, world.now)
    world.settle()
    results = {r.request_id: r.pool_handle for r in world.events_of(ResolutionResult)}
    assert results == {first: POOL, second: b"OtherPool"}


def test_cache_answers_until_stale() -> None:
    world, registrar, _ = registered_world(stale_cache_value=1.0)
    world.client.register(POOL, 0x101, user_transport(7001), RR, world.now)
    world.settle()
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert registrar.of_type(HandleResolution) == [HandleResolution(POOL, None)]
    world.advance(0.5)
    world.client.resolve(POOL, 1, world.now)
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert len(registrar.of_type(HandleResolution)) == 1
    cached = [r for r in world.events_of(ResolutionResult) if r.from_cache]
    assert len(cached) == 2
    # Round robin locally: the two cached answers name different PEs.
    assert {r.pool_elements[0].identifier for r in cached} == {0x100, 0x101}
    world.advance(0.6)  # 1.1 s after the answer: stale
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    assert len(registrar.of_type(HandleResolution)) == 2


def test_unreachable_report_reaches_the_registrar_and_leaves_the_cache() -> None:
    world, registrar, _ = registered_world(stale_cache_value=30.0)
    world.client.register(POOL, 0x101, user_transport(7001), RR, world.now)
    world.settle()
    world.client.resolve(POOL, 2, world.now)
    world.settle()
    world.client.report_unreachable(POOL, 0x100, world.now)
    world.settle()
    assert registrar.of_type(EndpointUnreachable) == [EndpointUnreachable(POOL, 0x100)]
    world.events.clear()
    for _ in range(4):
        world.client.resolve(POOL, 1, world.now)
    world.settle()
    chosen = {r.pool_elements[0].identifier for r in world.events_of(ResolutionResult)}
    assert chosen == {0x101}
    assert all(r.from_cache for r in world.events_of(ResolutionResult))


def test_registrar_error_in_resolution_is_reported() -> None:
    world, _, _ = registered_world()
    request = world.client.resolve(b"NoSuchPool", 1, world.now)
    world.settle()
    assert world.events_of(ResolutionResult) == [
        ResolutionResult(request, b"NoSuchPool", (), ErrorCause.UNKNOWN_POOL_HANDLE)
    ]


# --------------------------------------------------------------------------- robustness


def test_malformed_and_unknown_messages_are_logged_not_fatal() -> None:
    world, registrar, _ = registered_world()
    conn = next(iter(registrar.conns))
    world.client.receive(conn, PPID.ASAP, b"\x01\x00\x00", world.now)
    world.client.receive(conn, PPID.ASAP, b"\x7f\x00\x00\x04", world.now)  # unknown type
    world.client.receive(conn, PPID.ENRP, b"\x01\x00\x00\x04", world.now)
    actions = world.client.pop_actions()
    logs = [a for a in actions if isinstance(a, LogEvent)]
    assert len(logs) == 3
    sent = [decode_asap(a.data) for a in actions if isinstance(a, SendMessage)]
    assert len(sent) == 1  # only the unknown message type is reported back
    assert isinstance(sent[0], AsapError)
    assert sent[0].error.first_code == ErrorCause.UNRECOGNIZED_MESSAGE
    # The same fault again is not logged again (no log flood from a broken peer).
    world.client.receive(conn, PPID.ASAP, b"\x01\x00\x00", world.now)
    assert not any(isinstance(a, LogEvent) for a in world.client.pop_actions())


def test_asap_error_from_registrar_becomes_an_event() -> None:
    world, registrar, _ = registered_world()
    conn = next(iter(registrar.conns))
    error = AsapError(OperationError.of(ErrorCause.INVALID_VALUES))
    world.client.receive(conn, PPID.ASAP, encode_asap(error), world.now)
    world.settle()
    assert world.events_of(AsapErrorReceived) == [
        AsapErrorReceived(ErrorCause.INVALID_VALUES, "INVALID_VALUES")
    ]


def test_second_winner_connection_is_closed() -> None:
    world, registrar, _ = registered_world()
    extra = world.open_conn(registrar)
    world.client.connected(extra, registrar.address, world.now)
    world.settle()
    assert world.closed[-1] == (extra, "already connected to a registrar")
    assert isinstance(world.actions[-1], CloseConnection)


def test_pool_handle_outside_registrar_limits_is_refused_locally() -> None:
    import random

    from rsplib.asap import AsapClient, AsapConfig
    from rsplib.wire.constants import PolicyType
    from rsplib.wire.params import PolicyParam, TcpTransport, ip

    client = AsapClient(AsapConfig(), random.Random(1), 0.0)
    transport = TcpTransport(5000, (ip("127.0.0.1"),))
    policy = PolicyParam(PolicyType.ROUND_ROBIN)
    for handle in (b"", b"x" * 33):
        with pytest.raises(ValueError, match=r"pool handle must be 1\.\.32 bytes"):
            client.register(handle, None, transport, policy, 0.0)
        with pytest.raises(ValueError, match=r"pool handle must be 1\.\.32 bytes"):
            client.resolve(handle, 1, 0.0)
    assert client.register(b"x" * 32, 7, transport, policy, 0.0) == 7
