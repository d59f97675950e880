"""The sender side of the trace channel, without I/O: rate limit, bounded queue, packing.

``admit(now)`` decides first, before the caller builds a record, whether one more record
fits the rate: a token bucket of ``rate`` records per second holding up to ``burst``. A
refused record still takes a sequence number, so the receiver sees the gap; it is counted
in ``dropped`` and reported in the ``"drop"`` field of the next datagram. Admitted records
are queued as encoded lines (at most ``max_queue``; more are dropped and counted the same
way) and :meth:`pop_datagrams` packs them into datagrams of at most ``MAX_DATAGRAM`` bytes.
Whoever owns the socket calls it; nothing here blocks or touches the clock.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from rsplib.trace.record import MAX_DATAGRAM

DEFAULT_RATE: Final = 1000.0
DEFAULT_BURST: Final = 300
DEFAULT_MAX_QUEUE: Final = 1000
#: Component events (a pool user's failover) have a budget of their own, so a flood of
#: message records never crowds them out; it is small, since events are rare.
EVENT_RATE: Final = 20.0
EVENT_BURST: Final = 100


class TraceBuffer:
    """Rate limit, sequence numbers, drop counting and datagram packing for one sender."""

    __slots__ = (
        "_burst",
        "_event_last",
        "_event_tokens",
        "_last",
        "_lines",
        "_queued_bytes",
        "_rate",
        "_tokens",
        "_unreported",
        "closed_until",
        "dropped",
        "max_queue",
        "next_seq",
        "sent_records",
    )

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        if rate <= 0 or burst < 1 or max_queue < 1:
            raise ValueError("trace rate, burst and queue size must be positive")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None
        self._event_tokens = float(EVENT_BURST)
        self._event_last: float | None = None
        self._lines: deque[bytes] = deque()
        self._queued_bytes = 0
        self._unreported = 0
        #: Until this time no token can be there: callers may refuse without asking
        #: (and report those refusals with :meth:`skip`).
        self.closed_until = float("-inf")
        self.max_queue = max_queue
        self.next_seq = 0
        #: Records refused (rate or queue) or lost in a failed send, since the start.
        self.dropped = 0
        self.sent_records = 0

    def __len__(self) -> int:
        return len(self._lines)

    def admit(self, now: float) -> int | None:
        """The sequence number for one more record, or None (counted drop) past the rate."""
        seq = self.next_seq
        self.next_seq = seq + 1
        last = self._last
        self._last = now
        if last is not None and now > last:
            self._tokens = min(self._burst, self._tokens + (now - last) * self._rate)
        if self._tokens < 1.0 or len(self._lines) >= self.max_queue:
            self.closed_until = now + (1.0 - self._tokens) / self._rate
            self._drop(1)
            return None
        self._tokens -= 1.0
        return seq

    def admit_event(self, now: float) -> int | None:
        """Like :meth:`admit`, for a component event: its own token bucket, and room in
        the queue beyond ``max_queue`` (messages cannot fill it up for events)."""
        seq = self.next_seq
        self.next_seq = seq + 1
        last = self._event_last
        self._event_last = now
        if last is not None and now > last:
            self._event_tokens = min(
                float(EVENT_BURST), self._event_tokens + (now - last) * EVENT_RATE
            )
        if self._event_tokens < 1.0 or len(self._lines) >= self.max_queue + EVENT_BURST:
            self._drop(1)
            return None
        self._event_tokens -= 1.0
        return seq

    def skip(self, count: int) -> None:
        """``count`` records refused before :meth:`admit` was asked (see ``closed_until``)."""
        self.next_seq += count
        self._drop(count)

    def push(self, line: bytes) -> bool:
        """Queue one encoded record line (admitted before); False if it cannot be sent."""
        if len(line) + 1 > MAX_DATAGRAM or b"\n" in line:
            self._drop(1)
            return False
        self._lines.append(line)
        self._queued_bytes += len(line) + 1
        return True

    def full_datagram_ready(self) -> bool:
        """True once the queue holds at least one datagram's worth of records."""
        return self._queued_bytes >= MAX_DATAGRAM

    def pop_datagrams(self, *, only_full: bool = False) -> list[bytes]:
        """Queued records packed into datagrams (with ``only_full``, just the full ones)."""
        out: list[bytes] = []
        lines = self._lines
        while lines and (not only_full or self._queued_bytes >= MAX_DATAGRAM):
            parts: list[bytes] = []
            size = 0
            first = lines[0]
            if self._unreported:
                # The first record of the datagram carries the drops since the previous one.
                first = b'{"drop":%d,' % self._unreported + first[1:]
            if len(first) + 1 > MAX_DATAGRAM:
                first = lines[0]  # no room for the drop count: the seq gap still shows it
            else:
                self._unreported = 0
            while lines:
                line = first if not parts else lines[0]
                if size + len(line) + 1 > MAX_DATAGRAM:
                    break
                parts.append(line)
                size += len(line) + 1
                self._queued_bytes -= len(lines.popleft()) + 1
            out.append(b"\n".join(parts) + b"\n")
            self.sent_records += len(parts)
        return out

    def lost_in_send(self, datagram: bytes) -> None:
        """A datagram that the socket refused: its records count as dropped."""
        count = datagram.count(b"\n")
        self.sent_records -= count
        self._drop(count)

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._unreported += count
