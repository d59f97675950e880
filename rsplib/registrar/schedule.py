"""Named one-shot timers of the registrar core (announces, presences, peers, takeovers).

Per-PE timers live in the handlespace's own schedule; this one holds the few dozen
registrar-level timers. A heap with lazy deletion: restarting a key leaves its old item
behind, recognised as stale by its sequence number.
"""

from __future__ import annotations

from collections.abc import Hashable
from heapq import heappop, heappush


class Schedule:
    """At most one pending deadline per key."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._current: dict[Hashable, tuple[float, int]] = {}
        self._seq = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._current

    def __len__(self) -> int:
        return len(self._current)

    def set(self, key: Hashable, at: float) -> None:
        self._seq += 1
        self._current[key] = (at, self._seq)
        heappush(self._heap, (at, self._seq, key))
        if len(self._heap) > 2 * len(self._current) + 64:
            self._heap = [(t, s, k) for k, (t, s) in self._current.items()]
            self._heap.sort()

    def cancel(self, key: Hashable) -> None:
        self._current.pop(key, None)

    def deadline(self, key: Hashable) -> float | None:
        item = self._current.get(key)
        return None if item is None else item[0]

    def next_time(self) -> float | None:
        heap = self._heap
        while heap:
            at, seq, key = heap[0]
            if self._current.get(key, (0.0, -1))[1] == seq:
                return at
            heappop(heap)
        return None

    def pop_due(self, now: float) -> list[Hashable]:
        """Keys whose deadline is at or before ``now``, in deadline order; they stop."""
        due: list[Hashable] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, key = heappop(heap)
            if self._current.get(key, (0.0, -1))[1] == seq:
                del self._current[key]
                due.append(key)
        return due

    def clear(self) -> None:
        self._heap.clear()
        self._current.clear()
