"""Pool-user cache: storing answers, local selection, staleness, removal."""

from __future__ import annotations

import random
from collections import Counter

from rsplib.handlespace import PoolUserCache
from rsplib.wire.constants import PolicyType

from .helpers import POOL, pe

P = PolicyType


def test_local_round_robin_over_cached_pes() -> None:
    cache = PoolUserCache(stale_timeout=2.0)
    cache.store(POOL, [pe(i, P.ROUND_ROBIN) for i in (1, 2, 3)], now=0.0)
    got = [cache.select(POOL, 1, now=0.1)[0].identifier for _ in range(6)]
    assert got == [1, 2, 3, 1, 2, 3]
    # Unlimited MaxIncrement: every returned PE moves behind the others.
    assert [e.identifier for e in cache.select(POOL, 2, now=0.2)] == [1, 2]
    assert [e.identifier for e in cache.select(POOL, 2, now=0.3)] == [3, 1]
    cache.check_invariants()


def test_stale_entries_disappear_and_refresh_extends() -> None:
    cache = PoolUserCache(stale_timeout=1.0)
    cache.store(POOL, [pe(1, P.ROUND_ROBIN), pe(2, P.ROUND_ROBIN)], now=0.0)
    cache.store(POOL, [pe(2, P.ROUND_ROBIN)], now=0.5)
    assert {e.identifier for e in cache.select(POOL, 3, now=0.9)} == {1, 2}
    assert [e.identifier for e in cache.select(POOL, 3, now=1.0)] == [2]
    assert cache.select(POOL, 3, now=1.5) == []
    assert not cache.has_pool(POOL, now=1.5) and len(cache) == 0
    cache.check_invariants()


def test_remove_unreachable_pe() -> None:
    cache = PoolUserCache(stale_timeout=10.0, rng=random.Random(2))
    cache.store(POOL, [pe(i, P.RANDOM) for i in (1, 2, 3)], now=0.0)
    assert cache.remove(POOL, 2)
    assert not cache.remove(POOL, 2)
    counts = Counter(cache.select(POOL, 1, now=1.0)[0].identifier for _ in range(300))
    assert set(counts) == {1, 3}
    cache.check_invariants()


def test_pool_recreated_with_other_policy_replaces_cached_pes() -> None:
    cache = PoolUserCache(stale_timeout=10.0)
    cache.store(POOL, [pe(1, P.ROUND_ROBIN), pe(2, P.ROUND_ROBIN)], now=0.0)
    cache.store(POOL, [pe(3, P.LEAST_USED, load=1)], now=1.0)
    assert [e.identifier for e in cache.entries(POOL)] == [3]
    cache.check_invariants()


def test_zero_timeout_caches_nothing_usable() -> None:
    cache = PoolUserCache(stale_timeout=0.0)
    cache.store(POOL, [pe(1, P.ROUND_ROBIN)], now=5.0)
    assert cache.select(POOL, 1, now=5.0) == []
