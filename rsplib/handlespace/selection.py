"""The two selection engines of a pool (docs/protocol-notes.md#selection).

``SortedSelection`` keeps the PEs ordered by their policy's sort key (a
``SortedList`` of precomputed key tuples); a request returns the head and
moves the consumed PEs behind their equals. ``RandomSelection`` keeps the
selection values in a Fenwick tree over compact slots, so a weighted pick
without duplicates costs O(log n) and never scans the pool.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sortedcontainers import SortedList

from rsplib.handlespace.entry import PoolElementEntry, SortKey


class SortedSelection:
    """Sorted-order engine: RR, WRR, Priority and the least-used family."""

    __slots__ = ("_key", "_list", "next_seq")

    def __init__(self, key: Callable[[PoolElementEntry], SortKey]) -> None:
        self._key = key
        self._list = SortedList()
        # Pool-global sequence counter; a fresh number moves a PE behind
        # every PE with the same key. Python ints do not wrap (rsplib's
        # 32-bit counter does), so the order stays total.
        self.next_seq = 1

    def __len__(self) -> int:
        return len(self._list)

    def add(self, entry: PoolElementEntry) -> None:
        entry.seq = self.next_seq
        self.next_seq += 1
        key = self._key(entry)
        entry.sort_key = key
        self._list.add(key)

    def remove(self, entry: PoolElementEntry) -> None:
        self._list.remove(entry.sort_key)
        entry.sort_key = None

    def rekey(self, entry: PoolElementEntry) -> None:
        """Re-sort an entry after its policy state changed (seq unchanged)."""
        key = self._key(entry)
        if key != entry.sort_key:
            self._list.remove(entry.sort_key)
            entry.sort_key = key
            self._list.add(key)

    def head(self) -> PoolElementEntry | None:
        lst = self._list
        if not lst:
            return None
        entry: PoolElementEntry = lst[0][3]
        return entry

    def ordered(self) -> list[PoolElementEntry]:
        return [key[3] for key in self._list]

    def select(
        self,
        n: int,
        max_increment: int,
        on_consume: Callable[[PoolElementEntry], None] | None,
        now: float,
    ) -> list[PoolElementEntry]:
        """The first ``n`` PEs; the first ``max_increment`` of them are consumed.

        Consumed PEs get a fresh sequence number, a selection count and the
        policy's update hook (once, see policy.py), and are re-sorted.
        """
        lst = self._list
        size = len(lst)
        if n > size:
            n = size
        if n == 1 and max_increment >= 1:
            # Hot path (k = 1): pop the head, update, put it back.
            entry: PoolElementEntry = lst.pop(0)[3]
            entry.seq = seq = self.next_seq
            self.next_seq = seq + 1
            entry.selection_count += 1
            entry.last_selected_at = now
            if on_consume is not None:
                on_consume(entry)
            key = self._key(entry)
            entry.sort_key = key
            lst.add(key)
            return [entry]
        chosen: list[PoolElementEntry] = [key[3] for key in lst.islice(0, n)]
        consumed = n if max_increment > n else max_increment
        if consumed:
            for _ in range(consumed):
                lst.pop(0)
            make_key = self._key
            for entry in chosen[:consumed]:
                entry.seq = seq = self.next_seq
                self.next_seq = seq + 1
                entry.selection_count += 1
                entry.last_selected_at = now
                if on_consume is not None:
                    on_consume(entry)
                key = make_key(entry)
                entry.sort_key = key
                lst.add(key)
        return chosen

    def check(self) -> list[PoolElementEntry]:
        """Verify stored keys against the entries; return entries in order."""
        out: list[PoolElementEntry] = []
        for key in self._list:
            entry: PoolElementEntry = key[3]
            if entry.sort_key is not key or self._key(entry) != key:
                raise AssertionError(f"stale sort key for {entry!r}")
            out.append(entry)
        return out


class RandomSelection:
    """Weighted-random engine: RAND, WRAND, WRAND-DPF and the RLU family.

    Slots are compact (a removal moves the last slot into the hole). The
    Fenwick tree is 1-based: node i holds the sum of values in slots
    (i - lowbit(i), i], so appending or dropping the last slot is O(log n).
    """

    __slots__ = ("_entries", "_rng", "_total", "_tree", "_value", "_values")

    def __init__(self, value: Callable[[PoolElementEntry], int], rng: random.Random) -> None:
        self._value = value
        self._rng = rng
        self._entries: list[PoolElementEntry] = []
        self._values: list[int] = []
        self._tree: list[int] = [0]
        self._total = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total(self) -> int:
        return self._total

    def _adjust(self, pos: int, delta: int) -> None:
        tree = self._tree
        size = len(tree)
        while pos < size:
            tree[pos] += delta
            pos += pos & -pos

    def add(self, entry: PoolElementEntry) -> None:
        value = self._value(entry)
        entries = self._entries
        entry.slot = len(entries)
        entries.append(entry)
        self._values.append(value)
        tree = self._tree
        pos = len(tree)
        # New node covers (pos - lowbit, pos]: its own value plus the nodes
        # that tile (pos - lowbit, pos - 1].
        total = value
        stop = pos - (pos & -pos)
        j = pos - 1
        while j > stop:
            total += tree[j]
            j -= j & -j
        tree.append(total)
        self._total += value

    def remove(self, entry: PoolElementEntry) -> None:
        entries = self._entries
        values = self._values
        slot = entry.slot
        value = values[slot]
        last = len(entries) - 1
        if slot != last:
            moved = entries[last]
            moved_value = values[last]
            self._adjust(slot + 1, moved_value - value)
            entries[slot] = moved
            values[slot] = moved_value
            moved.slot = slot
        entries.pop()
        values.pop()
        self._tree.pop()
        self._total -= value
        entry.slot = -1

    def rekey(self, entry: PoolElementEntry) -> None:
        """Recompute an entry's selection value after its policy changed."""
        value = self._value(entry)
        slot = entry.slot
        delta = value - self._values[slot]
        if delta:
            self._values[slot] = value
            self._adjust(slot + 1, delta)
            self._total += delta

    def ordered(self) -> list[PoolElementEntry]:
        return list(self._entries)

    def _find(self, target: int) -> int:
        """Slot whose cumulative interval contains ``target`` (0 <= target < total)."""
        tree = self._tree
        size = len(tree) - 1
        pos = 0
        step = 1 << (size.bit_length() - 1)
        while step:
            nxt = pos + step
            if nxt <= size and tree[nxt] <= target:
                pos = nxt
                target -= tree[nxt]
            step >>= 1
        return pos

    def select(self, n: int, now: float) -> list[PoolElementEntry]:
        """Up to ``n`` distinct PEs drawn with probability proportional to value.

        A PE with value 0 is never drawn; if every value is 0 the result is
        empty (no error, as in rsplib).
        """
        total = self._total
        if total <= 0:
            return []
        randbelow = self._rng.randrange
        entries = self._entries
        values = self._values
        if n == 1:
            entry = entries[self._find(randbelow(total))]
            entry.selection_count += 1
            entry.last_selected_at = now
            return [entry]
        # Draw with rejection of repeats first: conditioned on not repeating,
        # a draw is proportional to value among the PEs not yet chosen, which
        # is exactly the distribution of drawing after taking them out. After
        # a few repeats (a pool dominated by the chosen PEs) take the chosen
        # ones out of the tree and draw from the rest.
        find = self._find
        taken: list[int] = []
        seen: set[int] = set()
        repeats = 0
        while len(taken) < n:
            slot = find(randbelow(total))
            if slot in seen:
                repeats += 1
                if repeats > 3:
                    break
                continue
            seen.add(slot)
            taken.append(slot)
        if len(taken) < n:
            adjust = self._adjust
            left = total
            for slot in taken:
                adjust(slot + 1, -values[slot])
                left -= values[slot]
            while len(taken) < n and left > 0:
                slot = find(randbelow(left))
                value = values[slot]
                adjust(slot + 1, -value)
                left -= value
                taken.append(slot)
            for slot in taken:
                adjust(slot + 1, values[slot])
        chosen = [entries[slot] for slot in taken]
        for entry in chosen:
            entry.selection_count += 1
            entry.last_selected_at = now
        return chosen

    def check(self) -> list[PoolElementEntry]:
        """Verify slots, values and the tree; return the entries."""
        size = len(self._entries)
        if len(self._values) != size or len(self._tree) != size + 1:
            raise AssertionError("random engine arrays disagree in length")
        for slot, entry in enumerate(self._entries):
            if entry.slot != slot:
                raise AssertionError(f"slot mismatch for {entry!r}")
            if self._value(entry) != self._values[slot]:
                raise AssertionError(f"stale selection value for {entry!r}")
        for pos in range(1, size + 1):
            low = pos - (pos & -pos)
            if self._tree[pos] != sum(self._values[low:pos]):
                raise AssertionError(f"Fenwick node {pos} is wrong")
        if self._total != sum(self._values):
            raise AssertionError("random engine total is wrong")
        return list(self._entries)
