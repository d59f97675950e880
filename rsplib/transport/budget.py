"""A memory budget shared by the channels of a process: receive buffers and send queues.

Each channel reports how many bytes it holds (an unfinished record, received messages not
yet consumed, data queued for the kernel). When the sum passes the budget, the channel
holding the most is closed: one peer that never reads, or many that each send half a record,
cannot make the process grow without bound.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

logger = logging.getLogger("rsplib.transport")

#: Evictions are logged one by one at most this often; the others are counted in the next line.
_LOG_INTERVAL = 10.0


class BudgetHolder(Protocol):
    peer_address: tuple[str, int]

    def abort(self) -> None: ...


class BufferBudget:
    """Bytes held by channels, at most ``limit`` in total."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the memory budget must be positive")
        self.limit = limit
        self.total = 0
        self._held: dict[BudgetHolder, int] = {}
        #: Channels closed because the budget was exceeded (for status and tests).
        self.evictions = 0
        self._logged_at: float | None = None
        self._unlogged = 0

    def update(self, holder: BudgetHolder, held: int) -> None:
        """``holder`` now holds ``held`` bytes; evicts the largest holder when over budget."""
        before = self._held.get(holder, 0)
        if held == before:
            return
        if held:
            self._held[holder] = held
        else:
            self._held.pop(holder, None)
        self.total += held - before
        if self.total > self.limit:
            self._evict()

    def release(self, holder: BudgetHolder) -> None:
        self.total -= self._held.pop(holder, 0)

    def _evict(self) -> None:
        while self.total > self.limit and self._held:
            holder, held = max(self._held.items(), key=lambda item: item[1])
            self.release(holder)
            self.evictions += 1
            self._log(holder, held)
            holder.abort()

    def _log(self, holder: BudgetHolder, held: int) -> None:
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < _LOG_INTERVAL:
            self._unlogged += 1
            return
        also = f" ({self._unlogged} more closed since the last such line)" if self._unlogged else ""
        self._logged_at = now
        self._unlogged = 0
        logger.warning(
            "memory budget of %d KiB for connection buffers exceeded: closing the connection "
            "from %s:%d, which holds %d KiB%s",
            self.limit // 1024,
            *holder.peer_address,
            held // 1024,
            also,
        )
