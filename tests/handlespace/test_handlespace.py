"""Handlespace operations: consistency, resolution sizes, indices, timers."""

from __future__ import annotations

import pytest

from rsplib.handlespace import Handlespace, HandlespaceError, TimerKind
from rsplib.wire.constants import ErrorCause, PolicyType, TransportUse

from .helpers import HOME, POOL, pe, sctp, tcp, udp

P = PolicyType


def rr_space(n: int, **kw: int) -> Handlespace:
    hs = Handlespace(**kw)
    for i in range(1, n + 1):
        hs.register(POOL, pe(i, P.ROUND_ROBIN), home_registrar_id=HOME, now=0)
    return hs


def test_register_new_then_update() -> None:
    hs = Handlespace()
    first = hs.register(POOL, pe(1, P.LEAST_USED, load=5), home_registrar_id=HOME, now=1.0)
    assert first.is_new and len(hs) == 1
    again = hs.register(
        POOL, pe(1, P.LEAST_USED, load=9, life=60_000), home_registrar_id=HOME, now=2.0
    )
    assert not again.is_new and again.entry is first.entry and len(hs) == 1
    entry = again.entry
    assert entry.policy.load == 9 and entry.registration_life == 60_000
    assert entry.registered_at == 1.0 and entry.updated_at == 2.0
    hs.check_invariants()


@pytest.mark.parametrize(
    ("other", "cause"),
    [
        (pe(2, P.LEAST_USED), ErrorCause.INCONSISTENT_POOLING_POLICY),
        (pe(2, P.ROUND_ROBIN, transport=sctp()), ErrorCause.INCONSISTENT_TRANSPORT_TYPE),
        (pe(2, P.ROUND_ROBIN, transport=udp()), ErrorCause.INCONSISTENT_TRANSPORT_TYPE),
        (
            pe(2, P.ROUND_ROBIN, transport=tcp(use=TransportUse.DATA_ONLY)),
            ErrorCause.INCONSISTENT_DATA_CONTROL_CONFIGURATION,
        ),
    ],
)
def test_pool_consistency(other: object, cause: int) -> None:
    hs = rr_space(1)
    with pytest.raises(HandlespaceError) as info:
        hs.register(POOL, other, home_registrar_id=HOME, now=0)  # type: ignore[arg-type]
    assert info.value.cause == cause
    assert len(hs) == 1
    hs.check_invariants()


def test_empty_pool_is_forgotten_so_new_rules_apply() -> None:
    hs = rr_space(1)
    assert hs.deregister(POOL, 1) is not None
    assert hs.pools() == [] and hs.pool_size(POOL) == 0
    hs.register(POOL, pe(2, P.LEAST_USED), home_registrar_id=HOME, now=0)
    assert hs.pool_policy_type(POOL) == P.LEAST_USED


def test_invalid_identifier_and_handle() -> None:
    hs = Handlespace()
    with pytest.raises(HandlespaceError) as info:
        hs.register(POOL, pe(0, P.ROUND_ROBIN), home_registrar_id=HOME, now=0)
    assert info.value.cause == ErrorCause.INVALID_PE_IDENTIFIER
    for handle in (b"", b"x" * 33):
        with pytest.raises(HandlespaceError) as info:
            hs.register(handle, pe(1, P.ROUND_ROBIN), home_registrar_id=HOME, now=0)
        assert info.value.cause == ErrorCause.INVALID_POOL_HANDLE
    assert len(hs) == 0 and hs.pools() == []


@pytest.mark.parametrize(
    ("items", "expected"),
    [(None, 3), (0, 3), (1, 1), (5, 5), (128, 128), (129, 128), (0xFFFFFFFF, 128)],
)
def test_resolution_size(items: int | None, expected: int) -> None:
    hs = rr_space(200)
    assert len(hs.resolve(POOL, items, 0)) == expected
    small = rr_space(2)
    assert len(small.resolve(POOL, items, 0)) == min(expected, 2)


def test_max_hr_items_option() -> None:
    hs = rr_space(10, max_hr_items=5)
    assert len(hs.resolve(POOL, None, 0)) == 5


def test_unknown_or_emptied_pool_is_0x0009() -> None:
    hs = rr_space(1)
    with pytest.raises(HandlespaceError) as info:
        hs.resolve(b"nope", 1, 0)
    assert info.value.cause == ErrorCause.UNKNOWN_POOL_HANDLE
    hs.deregister(POOL, 1)
    with pytest.raises(HandlespaceError) as info:
        hs.resolve(POOL, 1, 0)
    assert info.value.cause == ErrorCause.UNKNOWN_POOL_HANDLE


def test_selection_counter_counts_consumed_only() -> None:
    hs = rr_space(3)
    hs.resolve(POOL, 3, 0)
    assert [e.selection_count for e in sorted(hs.entries(), key=lambda e: e.identifier)] == [
        1,
        0,
        0,
    ]


def test_connection_and_home_indices() -> None:
    hs = Handlespace()
    hs.register(POOL, pe(1, P.ROUND_ROBIN), home_registrar_id=1, now=0, connection="c1")
    hs.register(POOL, pe(2, P.ROUND_ROBIN), home_registrar_id=1, now=0, connection="c2")
    hs.register(b"other", pe(3, P.RANDOM), home_registrar_id=2, now=0, connection="c1")
    hs.register(b"other", pe(4, P.RANDOM), home_registrar_id=2, now=0)
    assert {e.identifier for e in hs.entries_of_connection("c1")} == {1, 3}
    assert {e.identifier for e in hs.entries_of_home(2)} == {3, 4}
    # An update from another connection moves the PE.
    hs.register(POOL, pe(1, P.ROUND_ROBIN), home_registrar_id=1, now=1, connection="c2")
    assert {e.identifier for e in hs.entries_of_connection("c1")} == {3}
    assert {e.identifier for e in hs.entries_of_connection("c2")} == {1, 2}
    entry = hs.get(b"other", 4)
    assert entry is not None
    hs.rehome(entry, 1)
    assert {e.identifier for e in hs.entries_of_home(1)} == {1, 2, 4}
    for e in hs.entries_of_connection("c2"):
        hs.remove(e)
    assert hs.entries_of_connection("c2") == [] and len(hs) == 2
    assert sorted(hs.homes()) == [1, 2]
    hs.check_invariants()


def test_to_param_with_and_without_asap_transport() -> None:
    hs = Handlespace()
    asap = sctp(3863)
    entry = hs.register(
        POOL, pe(1, P.ROUND_ROBIN), home_registrar_id=HOME, now=0, asap_transport=asap
    ).entry
    with_asap = entry.to_param(True)
    assert with_asap.asap_transport == asap and with_asap.home_registrar_id == HOME
    assert entry.to_param(False).asap_transport is None


def test_timers_fire_in_order_and_restart_replaces() -> None:
    hs = rr_space(4)
    e1, e2, e3, e4 = (hs.get(POOL, i) for i in range(1, 5))
    assert e1 and e2 and e3 and e4
    assert hs.next_timer_time() is None
    hs.set_timer(e1, TimerKind.KEEPALIVE_TRANSMISSION, 5.0)
    hs.set_timer(e2, TimerKind.EXPIRY, 3.0)
    hs.set_timer(e3, TimerKind.KEEPALIVE_TIMEOUT, 4.0)
    hs.set_timer(e4, TimerKind.KEEPALIVE_TRANSMISSION, 1.0)
    hs.set_timer(e1, TimerKind.KEEPALIVE_TIMEOUT, 2.0)  # restart: replaces 5.0
    hs.cancel_timer(e4)
    hs.check_invariants()
    assert hs.next_timer_time() == 2.0
    assert hs.pop_expired(1.9) == []
    fired = hs.pop_expired(4.0)
    assert fired == [
        (TimerKind.KEEPALIVE_TIMEOUT, e1),
        (TimerKind.EXPIRY, e2),
        (TimerKind.KEEPALIVE_TIMEOUT, e3),
    ]
    assert hs.next_timer_time() is None and hs.pop_expired(100.0) == []
    # Deregistration cancels a running timer.
    hs.set_timer(e4, TimerKind.EXPIRY, 7.0)
    hs.deregister(POOL, 4)
    assert hs.next_timer_time() is None
    hs.check_invariants()


def test_many_restarts_keep_heap_bounded() -> None:
    hs = rr_space(10)
    entries = list(hs.entries())
    for round_ in range(200):
        for e in entries:
            hs.set_timer(e, TimerKind.KEEPALIVE_TRANSMISSION, round_ + e.identifier / 100)
    assert len(hs._timers._heap) <= 2 * 10 + 64 + 1
    hs.check_invariants()
    assert [e.identifier for _, e in hs.pop_expired(1e9)] == list(range(1, 11))
