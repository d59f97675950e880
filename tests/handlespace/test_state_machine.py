"""Random operation sequences against a brute-force model of the handlespace.

After every step the handlespace's own indices are recomputed
(``check_invariants``) and compared with the model: membership, homes,
connections, ownership checksums, timers and, for the sorted policies, the
exact selection order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from rsplib.handlespace import Handlespace, HandlespaceError, TimerKind, ownership_checksum
from rsplib.wire.constants import FRACTION_MAX, ErrorCause, PolicyType

from .helpers import pe, sctp

P = PolicyType
POOLS = {
    b"rr": P.ROUND_ROBIN,
    b"lu": P.LEAST_USED,
    b"lud": P.LEAST_USED_DEGRADATION,
    b"wrand": P.WEIGHTED_RANDOM,
}
SORTED = (b"rr", b"lu", b"lud")
HOMES = (1, 2, 3)
CONNECTIONS = (None, "conn-a", "conn-b")

pools = st.sampled_from(sorted(POOLS))
ids = st.integers(1, 10)
small = st.integers(0, 4)


@dataclass
class ModelPE:
    home: int
    conn: str | None
    value: int  # load (LU/LUD) or weight (WRAND)
    seq: int
    degradation: int = 0
    timer: tuple[TimerKind, float, int] | None = None  # kind, time, order set


def fields_for(pool: bytes, value: int) -> dict[str, int]:
    if pool == b"wrand":
        return {"weight": value}
    if pool == b"lud":
        return {"load": value * 1000, "load_degradation": 1500}
    if pool == b"lu":
        return {"load": value}
    return {}


class HandlespaceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.hs = Handlespace(rng=random.Random(0))
        self.model: dict[tuple[bytes, int], ModelPE] = {}
        self.counter = 0
        self.now = 0.0

    def _tick(self) -> int:
        self.counter += 1
        return self.counter

    def _sort_key(self, pool: bytes, m: ModelPE) -> tuple[int, int]:
        if pool == b"rr":
            return (0, m.seq)
        if pool == b"lu":
            return (m.value, m.seq)
        return (min(FRACTION_MAX, m.value * 1000 + m.degradation), m.seq)

    def _pool_model(self, pool: bytes) -> dict[int, ModelPE]:
        return {i: m for (p, i), m in self.model.items() if p == pool}

    @rule(
        pool=pools,
        identifier=ids,
        home=st.sampled_from(HOMES),
        conn=st.sampled_from(CONNECTIONS),
        value=small,
    )
    def register(
        self, pool: bytes, identifier: int, home: int, conn: str | None, value: int
    ) -> None:
        result = self.hs.register(
            pool,
            pe(identifier, POOLS[pool], **fields_for(pool, value)),
            home_registrar_id=home,
            now=self.now,
            connection=conn,
        )
        old = self.model.get((pool, identifier))
        assert result.is_new == (old is None)
        if old is None:
            self.model[(pool, identifier)] = ModelPE(home, conn, value, self._tick())
        else:
            assert result.previous_home_registrar_id == old.home
            old.home, old.conn, old.value, old.degradation = home, conn, value, 0

    @rule(pool=pools, identifier=ids)
    def register_inconsistent(self, pool: bytes, identifier: int) -> None:
        if not self._pool_model(pool):
            return  # an empty pool accepts anything
        other = P.RANDOM if pool != b"wrand" else P.ROUND_ROBIN
        for bad, cause in (
            (pe(identifier, other), ErrorCause.INCONSISTENT_POOLING_POLICY),
            (pe(identifier, POOLS[pool], transport=sctp()), ErrorCause.INCONSISTENT_TRANSPORT_TYPE),
        ):
            with pytest.raises(HandlespaceError) as info:
                self.hs.register(pool, bad, home_registrar_id=1, now=self.now)
            assert info.value.cause == cause

    @rule(pool=pools, identifier=ids)
    def deregister(self, pool: bytes, identifier: int) -> None:
        entry = self.hs.deregister(pool, identifier)
        old = self.model.pop((pool, identifier), None)
        assert (entry is None) == (old is None)

    @rule(pool=pools, items=st.sampled_from([None, 0, 1, 2, 3, 5, 0xFFFFFFFF]))
    def resolve(self, pool: bytes, items: int | None) -> None:
        members = self._pool_model(pool)
        if not members:
            with pytest.raises(HandlespaceError) as info:
                self.hs.resolve(pool, items, self.now)
            assert info.value.cause == ErrorCause.UNKNOWN_POOL_HANDLE
            return
        got = [e.identifier for e in self.hs.resolve(pool, items, self.now)]
        n = 3 if not items else min(items, 128)
        assert len(got) == len(set(got))
        if pool == b"wrand":
            positive = [i for i, m in members.items() if m.value > 0]
            assert len(got) == min(n, len(positive))
            assert set(got) <= set(positive)
            return
        expected = sorted(members, key=lambda i: self._sort_key(pool, members[i]))[:n]
        assert got == expected
        first = members[expected[0]]  # MaxIncrement 1: only the first is consumed
        first.seq = self._tick()
        if pool == b"lud":
            first.degradation = min(FRACTION_MAX, first.degradation + 1500)

    @rule(
        pool=pools, identifier=ids, kind=st.sampled_from(list(TimerKind)), delay=st.integers(0, 5)
    )
    def set_timer(self, pool: bytes, identifier: int, kind: TimerKind, delay: int) -> None:
        entry = self.hs.get(pool, identifier)
        if entry is None:
            return
        self.hs.set_timer(entry, kind, self.now + delay)
        self.model[(pool, identifier)].timer = (kind, self.now + delay, self._tick())

    @rule(pool=pools, identifier=ids)
    def cancel_timer(self, pool: bytes, identifier: int) -> None:
        entry = self.hs.get(pool, identifier)
        if entry is None:
            return
        self.hs.cancel_timer(entry)
        self.model[(pool, identifier)].timer = None

    @rule(step=st.integers(0, 3))
    def expire(self, step: int) -> None:
        self.now += step
        fired = self.hs.pop_expired(self.now)
        due = sorted(
            (m.timer[1], m.timer[2], m.timer[0], key)
            for key, m in self.model.items()
            if m.timer is not None and m.timer[1] <= self.now
        )
        assert [(k, (e.pool_handle, e.identifier)) for k, e in fired] == [
            (kind, key) for _, _, kind, key in due
        ]
        for kind, entry in fired:
            key = (entry.pool_handle, entry.identifier)
            self.model[key].timer = None
            if kind == TimerKind.EXPIRY:  # what a registrar does with a peer's PE
                assert self.hs.remove(entry)
                del self.model[key]

    @rule(conn=st.sampled_from(CONNECTIONS[1:]))
    def drop_connection(self, conn: str) -> None:
        for entry in self.hs.entries_of_connection(conn):
            assert self.hs.remove(entry)
        for key in [k for k, m in self.model.items() if m.conn == conn]:
            del self.model[key]

    @rule(pool=pools, identifier=ids, home=st.sampled_from(HOMES))
    def rehome(self, pool: bytes, identifier: int, home: int) -> None:
        entry = self.hs.get(pool, identifier)
        if entry is None:
            return
        self.hs.rehome(entry, home)
        self.model[(pool, identifier)].home = home

    @invariant()
    def agrees_with_model(self) -> None:
        hs = self.hs
        hs.check_invariants()
        assert len(hs) == len(self.model)
        assert sorted(hs.pools()) == sorted({p for p, _ in self.model})
        for (pool, identifier), m in self.model.items():
            entry = hs.get(pool, identifier)
            assert entry is not None
            assert (entry.home_registrar_id, entry.connection) == (m.home, m.conn)
            assert entry.degradation == m.degradation
            timer = None if entry.timer_kind is None else (entry.timer_kind, entry.timer_at)
            assert timer == (None if m.timer is None else m.timer[:2])
        for home in HOMES:
            owned = [k for k, m in self.model.items() if m.home == home]
            assert {(e.pool_handle, e.identifier) for e in hs.entries_of_home(home)} == set(owned)
            assert hs.ownership_checksum(home) == ownership_checksum(owned)
        for conn in CONNECTIONS[1:]:
            mine = {k for k, m in self.model.items() if m.conn == conn}
            assert {(e.pool_handle, e.identifier) for e in hs.entries_of_connection(conn)} == mine
        times = [m.timer[1] for m in self.model.values() if m.timer is not None]
        assert hs.next_timer_time() == (min(times) if times else None)
        for pool in SORTED:
            members = self._pool_model(pool)
            order = sorted(members, key=lambda i: self._sort_key(pool, members[i]))
            assert [e.identifier for e in hs.pool_entries(pool)] == order


def test_handlespace_against_model() -> None:
    run_state_machine_as_test(
        HandlespaceMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.slow
def test_handlespace_against_model_long() -> None:
    run_state_machine_as_test(
        HandlespaceMachine,
        settings=settings(
            max_examples=1500,
            stateful_step_count=80,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
