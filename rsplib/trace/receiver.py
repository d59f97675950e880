"""The receiving side of the trace channel (the control center, ``rsp-decode --trace``).

:class:`TraceParser` is sans-IO: it takes datagrams (or saved lines), returns valid
records, keeps per-sender sequence state so gaps show up as ``lost`` records, and counts
what it had to reject. A bad datagram is dropped whole and logged once per source
address, so one broken or hostile sender cannot flood the log or affect the others. The
state it keeps per sender is bounded (``max_senders``, oldest forgotten first).

:func:`open_trace_receiver` is the thin asyncio adapter: a UDP endpoint feeding a parser
and passing the records to a callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from rsplib.trace.record import TraceFormatError, TraceRecord, decode_datagram, decode_line

log = logging.getLogger("rsplib.trace")

MAX_SENDERS = 4096
MAX_WARNED_SOURCES = 1024


@dataclass
class SenderState:
    next_seq: int = 0
    records: int = 0
    #: Records missing from the sequence (dropped by the sender or lost on the way).
    lost: int = 0
    #: Records the sender itself said it dropped (its "drop" fields).
    dropped: int = 0


@dataclass
class TraceParser:
    max_senders: int = MAX_SENDERS
    senders: OrderedDict[int, SenderState] = field(default_factory=OrderedDict)
    records: int = 0
    bad_datagrams: int = 0
    _warned: set[str] = field(default_factory=set)

    def feed(self, datagram: bytes, source: str = "?") -> list[TraceRecord]:
        """The records of one datagram; an empty list (counted, logged once) if it is bad."""
        try:
            records = decode_datagram(datagram)
        except TraceFormatError as exc:
            self._reject(source, exc)
            return []
        for record in records:
            self._account(record)
        return records

    def feed_line(self, line: bytes | str, source: str = "?") -> TraceRecord | None:
        """One saved line; None (counted, logged once per source) if it is bad."""
        try:
            record = decode_line(line)
        except TraceFormatError as exc:
            self._reject(source, exc)
            return None
        self._account(record)
        return record

    @property
    def lost(self) -> int:
        return sum(state.lost for state in self.senders.values())

    def _account(self, record: TraceRecord) -> None:
        self.records += 1
        state = self.senders.get(record.component)
        if state is None:
            if len(self.senders) >= self.max_senders:
                self.senders.popitem(last=False)
            state = self.senders[record.component] = SenderState(next_seq=record.seq)
        else:
            self.senders.move_to_end(record.component)
        if record.seq > state.next_seq:
            state.lost += record.seq - state.next_seq
        if record.seq >= state.next_seq:
            state.next_seq = record.seq + 1
        # A lower seq: reordered or a restarted sender; nothing to count.
        state.records += 1
        state.dropped += record.drop

    def _reject(self, source: str, exc: TraceFormatError) -> None:
        self.bad_datagrams += 1
        if source not in self._warned and len(self._warned) < MAX_WARNED_SOURCES:
            self._warned.add(source)
            log.warning(
                "bad trace data from %s dropped: %s (further ones are only counted)", source, exc
            )


def read_trace_lines(
    lines: Iterable[bytes | str], parser: TraceParser | None = None, source: str = "file"
) -> Iterator[TraceRecord]:
    """The valid records of saved JSON lines (bad lines are counted in ``parser``)."""
    parser = parser or TraceParser()
    for line in lines:
        text = line.strip()
        if not text:
            continue
        record = parser.feed_line(text, source)
        if record is not None:
            yield record


class _TraceProtocol(asyncio.DatagramProtocol):
    def __init__(self, parser: TraceParser, callback: Callable[[list[TraceRecord], bytes], None]):
        self.parser = parser
        self.callback = callback

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        records = self.parser.feed(data, f"{addr[0]}:{addr[1]}")
        if records:
            try:
                self.callback(records, data)
            except Exception:
                log.exception("trace record handler failed")


@dataclass
class TraceReceiver:
    """A listening trace endpoint (see :func:`open_trace_receiver`)."""

    transport: asyncio.DatagramTransport
    parser: TraceParser

    @property
    def address(self) -> tuple[str, int]:
        sockname = self.transport.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    def close(self) -> None:
        self.transport.close()


async def open_trace_receiver(
    host: str,
    port: int,
    callback: Callable[[list[TraceRecord], bytes], None],
    parser: TraceParser | None = None,
) -> TraceReceiver:
    """Listen on ``host:port`` (port 0: any) and hand each datagram's records to ``callback``.

    The callback also gets the datagram as received, so a caller can save the trace.
    """
    parser = parser or TraceParser()
    loop = asyncio.get_running_loop()
    transport, _protocol = await loop.create_datagram_endpoint(
        lambda: _TraceProtocol(parser, callback), local_addr=(host, port)
    )
    return TraceReceiver(transport, parser)
