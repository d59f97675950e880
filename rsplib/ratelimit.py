"""Rate limits per key: a token bucket that limits from the first request.

Used by the registrar (MaxHRRate, MaxEURate, ENRP peers' PE changes) and by the transports
(connections accepted per host).

rsplib's MaxHRRate / MaxEURate estimate a rate from the last 16 request times and so let any
burst shorter than that through. Here every key gets a bucket of ``burst`` tokens refilled
at ``max_rate`` per second; a request takes ``cost`` tokens or is refused. With the default
burst of one, a second request sooner than ``1 / max_rate`` after the first is refused.

The table is bounded: the least recently used key is forgotten when it is full, so a flood
of distinct keys cannot grow memory (a forgotten key starts again with a full bucket).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allows requests of one key up to ``max_rate`` per second, ``burst`` at once."""

    def __init__(self, max_rate: float, *, burst: float = 1.0, max_keys: int = 4096) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.max_rate = max_rate
        self.burst = burst
        self._max_keys = max_keys
        #: key -> [tokens, time of the last refill]
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: Hashable, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket at ``now``; False if there are too few."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
            bucket = [self.burst, now]
            self._buckets[key] = bucket
        else:
            self._buckets.move_to_end(key)
            elapsed = now - bucket[1]
            if elapsed > 0:
                bucket[0] = min(self.burst, bucket[0] + elapsed * self.max_rate)
                bucket[1] = now
        if bucket[0] < cost:
            return False
        bucket[0] -= cost
        return True

    def forget(self, matches: Callable[[Hashable], bool]) -> None:
        """Drop every key for which ``matches(key)`` is true (e.g. of a closed connection)."""
        for key in [k for k in self._buckets if matches(k)]:
            del self._buckets[key]
