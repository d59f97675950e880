"""Pool-user cache of Handle Resolution results (docs/protocol-notes.md#pu-cache, #timers-pe-pu).

A PU that asks its registrar with a stale-cache value > 0 keeps every PE of
the answer for ``stale_timeout`` seconds and selects locally with the pool's
policy. The cache is a :class:`Handlespace` of its own with an unlimited
MaxIncrement (every returned PE is consumed, as in rsplib's PU cache) and one
expiry timer per cached PE, so selection, staleness and removal reuse the
registrar's structures.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from rsplib.handlespace.entry import PoolElementEntry, TimerKind
from rsplib.handlespace.errors import HandlespaceError
from rsplib.handlespace.handlespace import Handlespace
from rsplib.wire.params import PoolElementParam

#: rsplib's "unlimited" MaxIncrement for the PU cache.
UNLIMITED_MAX_INCREMENT = 1_000_000_000


class PoolUserCache:
    """Cached PEs per pool handle; ``stale_timeout`` is in seconds."""

    __slots__ = ("_space", "stale_timeout")

    def __init__(self, stale_timeout: float, rng: random.Random | None = None) -> None:
        if stale_timeout < 0:
            raise ValueError("stale_timeout must be >= 0")
        self.stale_timeout = stale_timeout
        self._space = Handlespace(max_increment=UNLIMITED_MAX_INCREMENT, rng=rng)

    def store(self, pool_handle: bytes, pes: Iterable[PoolElementParam], now: float) -> None:
        """Add or refresh the PEs of a Handle Resolution answer.

        A known PE keeps its selection state (round-robin position); its
        staleness clock restarts. If the answer no longer fits the cached
        pool (the pool was re-created with another policy or transport), the
        old cached PEs are dropped first.
        """
        space = self._space
        expires = now + self.stale_timeout
        for pe in pes:
            try:
                result = space.register(
                    pool_handle,
                    pe,
                    home_registrar_id=pe.home_registrar_id,
                    now=now,
                    distance=pe.policy.distance,
                )
            except HandlespaceError:
                self.clear(pool_handle)
                result = space.register(
                    pool_handle,
                    pe,
                    home_registrar_id=pe.home_registrar_id,
                    now=now,
                    distance=pe.policy.distance,
                )
            space.set_timer(result.entry, TimerKind.EXPIRY, expires)

    def purge(self, now: float) -> int:
        """Drop every PE whose cache life ended at ``now``; return how many."""
        expired = self._space.pop_expired(now)
        for _, entry in expired:
            self._space.remove(entry)
        return len(expired)

    def select(self, pool_handle: bytes, items: int, now: float) -> list[PoolElementEntry]:
        """Up to ``items`` fresh PEs chosen by the pool's policy; [] on a miss.

        An empty result means: ask the registrar (and ``store`` the answer).
        """
        self.purge(now)
        if not self._space.pool_size(pool_handle):
            return []
        return self._space.resolve(pool_handle, max(items, 1), now)

    def has_pool(self, pool_handle: bytes, now: float) -> bool:
        self.purge(now)
        return self._space.pool_size(pool_handle) > 0

    def remove(self, pool_handle: bytes, identifier: int) -> bool:
        """Forget a PE reported unreachable; False if it was not cached."""
        return self._space.deregister(pool_handle, identifier) is not None

    def clear(self, pool_handle: bytes) -> None:
        for entry in self._space.pool_entries(pool_handle):
            self._space.remove(entry)

    def entries(self, pool_handle: bytes) -> list[PoolElementEntry]:
        return self._space.pool_entries(pool_handle)

    def __len__(self) -> int:
        return len(self._space)

    def check_invariants(self) -> None:
        self._space.check_invariants()
