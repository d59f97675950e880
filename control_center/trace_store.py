"""What the control center knows from the live trace: messages as exchanges, and events.

Both ends of a connection trace the same message: the sender a ``tx`` record, the receiver
an ``rx`` record. The store pairs them into one :class:`Exchange` (one arrow in the
sequence chart, one dot on the map): the sender's ``local`` address is the receiver's
``peer`` and the other way round, and the type matches. A message whose other end does not
trace (or whose record was dropped) stays a one-sided exchange; its other end is found
from the addresses that component used in other records, when possible.

Records arrive on the engine thread; the GUI takes what is new with :meth:`drain`. All
state is bounded: the last ``capacity`` exchanges and events, a bounded address table, and
unpaired records wait at most ``PAIR_WINDOW`` seconds and ``MAX_PENDING`` per connection.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from rsplib.trace.record import TX, EventRecord, MessageRecord, TraceRecord

PAIR_WINDOW: Final = 5.0
MAX_PENDING: Final = 64
MAX_ENDPOINTS: Final = 10_000
DEFAULT_CAPACITY: Final = 20_000

#: Message categories (colours and filters of the map and the chart), in legend order.
CATEGORIES: Final = (
    "registration",
    "keep-alive",
    "resolution",
    "handle-update",
    "enrp",
    "cookie",
    "data",
    "other",
)

_ASAP_CATEGORY = {
    "REGISTRATION": "registration",
    "REGISTRATION_RESPONSE": "registration",
    "DEREGISTRATION": "registration",
    "DEREGISTRATION_RESPONSE": "registration",
    "ENDPOINT_KEEP_ALIVE": "keep-alive",
    "ENDPOINT_KEEP_ALIVE_ACK": "keep-alive",
    "HANDLE_RESOLUTION": "resolution",
    "HANDLE_RESOLUTION_RESPONSE": "resolution",
    "ENDPOINT_UNREACHABLE": "resolution",
    "SERVER_ANNOUNCE": "other",
    "COOKIE": "cookie",
    "COOKIE_ECHO": "cookie",
    "BUSINESS_CARD": "cookie",
}


def category(proto: str, message_type: str) -> str:
    """The category of a message (one of :data:`CATEGORIES`)."""
    if proto == "asap":
        return _ASAP_CATEGORY.get(message_type, "other")
    if proto == "enrp":
        return "handle-update" if message_type == "HANDLE_UPDATE" else "enrp"
    if proto in ("fgp", "data"):
        return "data"
    return "other"


@dataclass(eq=False, slots=True)
class Exchange:
    """One message, as its sender and/or its receiver traced it."""

    index: int
    sent: MessageRecord | None = None
    received: MessageRecord | None = None

    @property
    def record(self) -> MessageRecord:
        """The record to show (the sender's if there is one)."""
        record = self.sent or self.received
        assert record is not None
        return record

    @property
    def time(self) -> float:
        return self.record.time

    @property
    def arrival(self) -> float:
        return self.received.time if self.received is not None else self.time

    @property
    def category(self) -> str:
        record = self.record
        return category(record.proto, record.type)

    @property
    def paired(self) -> bool:
        return self.sent is not None and self.received is not None


@dataclass
class TraceStore:
    """Exchanges and events of the running scenario (thread-safe; see the module docstring)."""

    capacity: int = DEFAULT_CAPACITY
    exchanges: deque[Exchange] = field(init=False)
    events: deque[EventRecord] = field(init=False)
    records: int = 0
    _endpoints: dict[str, int] = field(default_factory=dict)
    _pending_tx: dict[tuple[str, str, str], deque[Exchange]] = field(default_factory=dict)
    _pending_rx: dict[tuple[str, str, str], deque[Exchange]] = field(default_factory=dict)
    _new: list[Exchange] = field(default_factory=list)
    _new_events: list[EventRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_index: int = 0
    listeners: list[Callable[[list[TraceRecord]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.exchanges = deque(maxlen=self.capacity)
        self.events = deque(maxlen=self.capacity)

    # ------------------------------------------------------------------ input

    def add(self, records: Iterable[TraceRecord]) -> None:
        batch = list(records)
        with self._lock:
            for record in batch:
                self.records += 1
                if isinstance(record, MessageRecord):
                    self._add_message(record)
                else:
                    self.events.append(record)
                    self._new_events.append(record)
        for listener in self.listeners:
            listener(batch)

    def _add_message(self, record: MessageRecord) -> None:
        if record.local is not None and len(self._endpoints) < MAX_ENDPOINTS:
            self._endpoints[record.local] = record.component
        local = record.local or "?"
        sending = record.direction == TX
        mine, theirs = (
            (self._pending_tx, self._pending_rx)
            if sending
            else (self._pending_rx, self._pending_tx)
        )
        # The other side's record of the same message waits under (its local, its peer, type).
        other_key = (record.peer, local, record.type)
        waiting = theirs.get(other_key)
        while waiting:
            candidate = waiting.popleft()
            if abs(candidate.time - record.time) > PAIR_WINDOW:
                continue  # too old to be the same message: forget it
            if sending:
                candidate.sent = record
            else:
                candidate.received = record
            break
        else:
            candidate = None
        if waiting is not None and not waiting:
            del theirs[other_key]
        if candidate is not None:
            return
        exchange = Exchange(self._next_index)
        self._next_index += 1
        if sending:
            exchange.sent = record
        else:
            exchange.received = record
        key = (local, record.peer, record.type)
        queue = mine.get(key)
        if queue is None:
            if len(mine) >= MAX_ENDPOINTS:
                mine.clear()  # forget stale halves rather than grow
            queue = mine[key] = deque(maxlen=MAX_PENDING)
        queue.append(exchange)
        self.exchanges.append(exchange)
        self._new.append(exchange)

    # ------------------------------------------------------------------ output

    def drain(self) -> tuple[list[Exchange], list[EventRecord]]:
        """Exchanges and events added since the previous call."""
        with self._lock:
            new, self._new = self._new, []
            events, self._new_events = self._new_events, []
        return new, events

    def component_at(self, address: str) -> int | None:
        """The component that used ``address`` as its own end of a connection."""
        return self._endpoints.get(address)

    def ends(self, exchange: Exchange) -> tuple[int | None, int | None]:
        """(sender, receiver) component ids of ``exchange``; None where unknown."""
        sent, received = exchange.sent, exchange.received
        if sent is not None:
            source: int | None = sent.component
        else:
            assert received is not None
            source = self._endpoints.get(received.peer)
        if received is not None:
            target: int | None = received.component
        else:
            assert sent is not None
            target = self._endpoints.get(sent.peer)
        return source, target

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def event_snapshot(self) -> list[EventRecord]:
        with self._lock:
            return list(self.events)
