"""The handlespace: pools plus the cross-pool indices a registrar needs.

Indices (each hot operation is O(log n) or better):
- pool handle -> pool (PE id -> entry, and the policy's selection engine);
- one timer schedule over every PE (see timers.py);
- connection -> its PEs (connection loss);
- home registrar id -> its PEs, with a running ownership checksum
  (takeover, Handle Table Request with the W flag, Presence).

Pure and clock-free: calls that need the time take ``now``.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator
from typing import NamedTuple

from rsplib.handlespace.checksum import OwnershipChecksums, ownership_checksum
from rsplib.handlespace.entry import PoolElementEntry, TimerKind
from rsplib.handlespace.errors import HandlespaceError
from rsplib.handlespace.pool import Pool
from rsplib.handlespace.timers import TimerSchedule
from rsplib.wire.constants import ErrorCause
from rsplib.wire.params import PoolElementParam, Transport

#: Hard cap of PEs in one Handle Resolution answer (rsplib's limit).
MAX_HANDLE_RESOLUTION_ITEMS = 128
#: rsplib's pool handle size limit (cause 0xF004 beyond it).
MAX_POOL_HANDLE_SIZE = 32


class RegistrationResult(NamedTuple):
    """Outcome of :meth:`Handlespace.register`.

    ``previous_home_registrar_id`` is the home before an update (equal to
    the entry's home for new entries), so a registrar sees takeovers.
    """

    entry: PoolElementEntry
    is_new: bool
    previous_home_registrar_id: int


class Handlespace:
    """Pools, PEs and their indices.

    ``max_increment`` is the registrar's MaxIncrement option: 0 means each
    policy's default (1 for the sorted policies); the PU cache passes a
    huge value. ``max_hr_items`` answers Handle Resolutions without an
    Items option (or with 0).
    """

    def __init__(
        self,
        max_increment: int = 0,
        max_hr_items: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        if max_increment < 0:
            raise ValueError("max_increment must be >= 0")
        if max_hr_items < 1:
            raise ValueError("max_hr_items must be >= 1")
        self.max_increment = max_increment
        self.max_hr_items = min(max_hr_items, MAX_HANDLE_RESOLUTION_ITEMS)
        self._rng = rng if rng is not None else random.Random()
        self._pools: dict[bytes, Pool] = {}
        self._count = 0
        self._timers = TimerSchedule()
        self._by_connection: dict[Hashable, dict[PoolElementEntry, None]] = {}
        self._by_home: dict[int, dict[PoolElementEntry, None]] = {}
        self._checksums = OwnershipChecksums()

    # --- registration ------------------------------------------------------

    def register(
        self,
        pool_handle: bytes,
        pe: PoolElementParam,
        *,
        home_registrar_id: int,
        now: float,
        connection: Hashable | None = None,
        asap_transport: Transport | None = None,
        distance: int = 0,
    ) -> RegistrationResult:
        """Add a PE, or update it if its id is already in the pool.

        ``asap_transport`` defaults to the one in ``pe``. Raises
        :class:`HandlespaceError` with 0x0005 / 0x0007 / 0x0008 when the PE
        does not fit the pool, 0xF000 for id 0, 0xF004 for a bad handle and
        0xF003 for a policy type without selection rules.
        """
        pool = self._pools.get(pool_handle)
        identifier = pe.identifier
        if pool is None:
            if not 0 < len(pool_handle) <= MAX_POOL_HANDLE_SIZE:
                raise HandlespaceError(
                    ErrorCause.INVALID_POOL_HANDLE,
                    f"pool handle must be 1..{MAX_POOL_HANDLE_SIZE} bytes",
                )
            if not 0 < identifier <= 0xFFFFFFFF:
                raise HandlespaceError(ErrorCause.INVALID_PE_IDENTIFIER, "PE identifier 0")
            pool = Pool(pool_handle, pe, max_increment=self.max_increment, rng=self._rng)
            self._pools[pool_handle] = pool
        else:
            transport = pe.user_transport
            if (
                pe.policy.policy_type != pool.policy_type
                or type(transport) is not pool.transport_class
                or getattr(transport, "transport_use", None) != pool.transport_use
            ):
                pool.check_consistent(pe)  # raises the matching cause
            if not 0 < identifier <= 0xFFFFFFFF:
                raise HandlespaceError(ErrorCause.INVALID_PE_IDENTIFIER, "PE identifier 0")
        if asap_transport is None:
            asap_transport = pe.asap_transport

        entry = pool.by_id.get(identifier)
        if entry is None:
            entry = PoolElementEntry(
                pool_handle,
                pe,
                home_registrar_id,
                now,
                connection,
                asap_transport,
                distance,
                pool.handle_sum + (identifier >> 16) + (identifier & 0xFFFF),
            )
            pool.insert(entry)
            self._count += 1
            self._index_home(entry)
            if connection is not None:
                self._index_connection(entry)
            return RegistrationResult(entry, True, home_registrar_id)

        previous_home = entry.home_registrar_id
        if previous_home != home_registrar_id:
            self.rehome(entry, home_registrar_id)
        if connection != entry.connection:
            if entry.connection is not None:
                self._unindex_connection(entry)
            entry.connection = connection
            if connection is not None:
                self._index_connection(entry)
        entry.registration_life = pe.registration_life
        entry.user_transport = pe.user_transport
        entry.asap_transport = asap_transport
        entry.updated_at = now
        pool.update_policy(entry, pe.policy, distance)
        return RegistrationResult(entry, False, previous_home)

    def deregister(self, pool_handle: bytes, identifier: int) -> PoolElementEntry | None:
        """Remove a PE from every index; None if it is not registered."""
        pool = self._pools.get(pool_handle)
        if pool is None:
            return None
        entry = pool.by_id.get(identifier)
        if entry is None:
            return None
        pool.remove(entry)
        if not pool.by_id:
            # An empty pool is forgotten, so its next first PE sets new rules.
            del self._pools[pool_handle]
        self._count -= 1
        self._timers.cancel(entry)
        self._unindex_home(entry)
        if entry.connection is not None:
            self._unindex_connection(entry)
        return entry

    def remove(self, entry: PoolElementEntry) -> bool:
        """Deregister a known entry object; False if it is no longer stored."""
        current = self.get(entry.pool_handle, entry.identifier)
        if current is not entry:
            return False
        self.deregister(entry.pool_handle, entry.identifier)
        return True

    # --- handle resolution -------------------------------------------------

    def resolve(self, pool_handle: bytes, items: int | None, now: float) -> list[PoolElementEntry]:
        """Select PEs for a Handle Resolution (protocol-facts 5.2 and 5.4).

        ``items`` None or 0 -> ``max_hr_items``; anything else (including
        0xFFFFFFFF, "as many as possible") is capped at 128. Never returns a
        PE twice. Unknown pool -> HandlespaceError(0x0009).
        """
        pool = self._pools.get(pool_handle)
        if pool is None:
            raise HandlespaceError(ErrorCause.UNKNOWN_POOL_HANDLE, "unknown or empty pool")
        if not items:
            items = self.max_hr_items
        elif items > MAX_HANDLE_RESOLUTION_ITEMS:
            items = MAX_HANDLE_RESOLUTION_ITEMS
        return pool.select(items, now)

    # --- timers ------------------------------------------------------------

    def set_timer(self, entry: PoolElementEntry, kind: TimerKind, at: float) -> None:
        """Start or restart the entry's one timer."""
        self._timers.set(entry, kind, at)

    def cancel_timer(self, entry: PoolElementEntry) -> None:
        self._timers.cancel(entry)

    def next_timer_time(self) -> float | None:
        return self._timers.next_time()

    def pop_expired(self, now: float) -> list[tuple[TimerKind, PoolElementEntry]]:
        """Timers due at ``now``, oldest first. The entries stay registered."""
        return self._timers.pop_expired(now)

    # --- connections and homes ---------------------------------------------

    def _index_connection(self, entry: PoolElementEntry) -> None:
        conn = entry.connection
        assert conn is not None
        bucket = self._by_connection.get(conn)
        if bucket is None:
            self._by_connection[conn] = {entry: None}
        else:
            bucket[entry] = None

    def _unindex_connection(self, entry: PoolElementEntry) -> None:
        conn = entry.connection
        bucket = self._by_connection[conn]
        del bucket[entry]
        if not bucket:
            del self._by_connection[conn]

    def _index_home(self, entry: PoolElementEntry) -> None:
        home = entry.home_registrar_id
        bucket = self._by_home.get(home)
        if bucket is None:
            self._by_home[home] = {entry: None}
        else:
            bucket[entry] = None
        self._checksums.add(home, entry.checksum_part)

    def _unindex_home(self, entry: PoolElementEntry) -> None:
        home = entry.home_registrar_id
        bucket = self._by_home[home]
        del bucket[entry]
        if not bucket:
            del self._by_home[home]
        self._checksums.remove(home, entry.checksum_part)

    def entries_of_connection(self, connection: Hashable) -> list[PoolElementEntry]:
        return list(self._by_connection.get(connection, ()))

    def entries_of_home(self, registrar_id: int) -> list[PoolElementEntry]:
        return list(self._by_home.get(registrar_id, ()))

    def count_of_home(self, registrar_id: int) -> int:
        """How many PEs have ``registrar_id`` as their home (O(1))."""
        bucket = self._by_home.get(registrar_id)
        return 0 if bucket is None else len(bucket)

    def homes(self) -> list[int]:
        """Registrar ids that own at least one PE."""
        return list(self._by_home)

    def rehome(self, entry: PoolElementEntry, new_home_id: int) -> None:
        """Make ``new_home_id`` the entry's home registrar (takeover)."""
        if entry.home_registrar_id == new_home_id:
            return
        self._unindex_home(entry)
        entry.home_registrar_id = new_home_id
        self._index_home(entry)

    def ownership_checksum(self, registrar_id: int) -> int:
        """PE Checksum over the PEs whose home is ``registrar_id`` (0xFFFF if none)."""
        return self._checksums.checksum(registrar_id)

    # --- lookups -----------------------------------------------------------

    def get(self, pool_handle: bytes, identifier: int) -> PoolElementEntry | None:
        pool = self._pools.get(pool_handle)
        if pool is None:
            return None
        return pool.by_id.get(identifier)

    def pools(self) -> list[bytes]:
        return list(self._pools)

    def pool_size(self, pool_handle: bytes) -> int:
        pool = self._pools.get(pool_handle)
        return 0 if pool is None else len(pool.by_id)

    def pool_policy_type(self, pool_handle: bytes) -> int | None:
        pool = self._pools.get(pool_handle)
        return None if pool is None else pool.policy_type

    def pool_entries(self, pool_handle: bytes) -> list[PoolElementEntry]:
        """A pool's PEs in selection order (sorted policies) or slot order."""
        pool = self._pools.get(pool_handle)
        return [] if pool is None else pool.ordered()

    def entries(self) -> Iterator[PoolElementEntry]:
        """Every PE, pool by pool, in registration order within a pool."""
        for pool in list(self._pools.values()):
            yield from list(pool.by_id.values())

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        handle, identifier = key
        return isinstance(handle, bytes) and self.get(handle, identifier) is not None

    # --- self check (tests) ------------------------------------------------

    def check_invariants(self) -> None:
        """Recompute every index from the pools and compare; AssertionError if not equal."""
        all_entries: list[PoolElementEntry] = []
        for handle, pool in self._pools.items():
            if not pool.by_id:
                raise AssertionError(f"empty pool {handle!r} kept")
            stored = pool.engine.check()
            if len(stored) != len(pool.by_id) or {id(e) for e in stored} != {
                id(e) for e in pool.by_id.values()
            }:
                raise AssertionError(f"pool {handle!r}: engine and id index disagree")
            for identifier, entry in pool.by_id.items():
                if entry.identifier != identifier or entry.pool_handle != handle:
                    raise AssertionError(f"{entry!r} filed under the wrong key")
                if entry.policy.policy_type != pool.policy_type:
                    raise AssertionError(f"{entry!r} breaks the pool policy")
            all_entries.extend(pool.by_id.values())
        if len(all_entries) != self._count:
            raise AssertionError(f"count {self._count} != {len(all_entries)} stored")

        by_conn: dict[Hashable, set[int]] = {}
        by_home: dict[int, set[int]] = {}
        for entry in all_entries:
            if entry.connection is not None:
                by_conn.setdefault(entry.connection, set()).add(id(entry))
            by_home.setdefault(entry.home_registrar_id, set()).add(id(entry))
        if {k: {id(e) for e in v} for k, v in self._by_connection.items()} != by_conn:
            raise AssertionError("connection index disagrees with the pools")
        if {k: {id(e) for e in v} for k, v in self._by_home.items()} != by_home:
            raise AssertionError("home index disagrees with the pools")

        sums = self._checksums.raw_sums()
        if set(sums) != set(by_home):
            raise AssertionError("checksum homes disagree with the home index")
        for home, bucket in self._by_home.items():
            expected = ownership_checksum((e.pool_handle, e.identifier) for e in bucket)
            if self._checksums.checksum(home) != expected:
                raise AssertionError(f"ownership checksum of {home:#x} is stale")
        self._timers.check(all_entries)
