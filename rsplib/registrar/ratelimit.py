"""Request-rate limits per key (rsplib's MaxHRRate / MaxEURate, protocol-facts 11.2).

Like rsplib, the rate of a key is estimated from its last few request times:
(entries - 1) / (newest - oldest). The table is bounded: the least recently used key is
forgotten when it is full, so a flood of distinct keys cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allows requests of one key up to ``max_rate`` per second."""

    def __init__(self, max_rate: float, *, history: int = 16, max_keys: int = 4096) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        if history < 2:
            raise ValueError("history must be at least 2")
        self.max_rate = max_rate
        self._history = history
        self._max_keys = max_keys
        self._times: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def allow(self, key: Hashable, now: float) -> bool:
        """Record a request of ``key`` at ``now``; False if its rate is over the limit."""
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= self._max_keys:
                self._times.popitem(last=False)
            times = deque(maxlen=self._history)
            self._times[key] = times
        else:
            self._times.move_to_end(key)
        times.append(now)
        if len(times) < self._history:
            # Too few samples for a meaningful rate: a short burst is always fine.
            return True
        span = times[-1] - times[0]
        if span <= 0:
            return False
        return (len(times) - 1) / span <= self.max_rate

    def forget(self, matches: Callable[[Hashable], bool]) -> None:
        """Drop every key for which ``matches(key)`` is true (e.g. of a closed connection)."""
        for key in [k for k in self._times if matches(k)]:
            del self._times[key]
