"""TCP stream reassembly for captures, feeding TCP-mapping record decoders.

Each direction of each connection is rebuilt from sequence numbers: segments
may arrive out of order, be retransmitted, or overlap; bytes are delivered
once, in order. A SYN fixes the start of the stream; without one (capture
started mid-connection) the first data segment does.

A direction whose very first record header is invalid is taken as some other
TCP protocol and ignored with a note; a framing error after good records gives
one error and stops decoding that direction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rsplib.capture.model import (
    SEVERITY_ERROR,
    SEVERITY_NOTE,
    TRANSPORT_TCP_MAPPING,
    CapturedMessage,
    CaptureProblem,
    FrameError,
    Packet,
)
from rsplib.wire.errors import ProtocolError
from rsplib.wire.tcpmap import HEADER_SIZE, Record, RecordDecoder, RecordType

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04

_SEQ_MOD = 1 << 32
_HALF = 1 << 31
#: Out-of-order bytes held per direction before the stream is given up.
MAX_PENDING = 16 * 1024 * 1024

_HEADER = struct.Struct("!HHIIBB")


@dataclass(frozen=True, slots=True)
class TcpSegment:
    src_port: int
    dst_port: int
    seq: int
    flags: int
    payload: bytes


def parse_tcp(data: bytes) -> TcpSegment:
    if len(data) < 20:
        raise FrameError(f"truncated TCP header ({len(data)} bytes)")
    src_port, dst_port, seq, _ack, offset_byte, flags = _HEADER.unpack_from(data, 0)
    header_length = (offset_byte >> 4) * 4
    if header_length < 20 or header_length > len(data):
        raise FrameError(f"bad TCP header length {header_length}")
    return TcpSegment(src_port, dst_port, seq, flags, data[header_length:])


@dataclass(slots=True)
class _Direction:
    src: str
    dst: str
    base_seq: int  # sequence number of stream offset 0
    next_offset: int = 0
    pending: dict[int, bytes] = field(default_factory=dict)
    pending_bytes: int = 0
    decoder: RecordDecoder = field(default_factory=RecordDecoder)
    records: int = 0
    stopped: bool = False
    syn_seq: int | None = None
    # Bytes fed to the decoder that are not part of a returned record yet.
    unconsumed: bytes = b""


class TcpMappingReassembler:
    """Turns TCP segments of a capture into TCP-mapping records."""

    def __init__(self) -> None:
        self._directions: dict[tuple[str, str], _Direction] = {}

    def segment(
        self, frame: int, time: float | None, src: str, dst: str, seg: TcpSegment
    ) -> list[Packet]:
        key = (src, dst)
        state = self._directions.get(key)
        if seg.flags & TCP_SYN:
            if state is not None and state.syn_seq == seg.seq:
                return []  # retransmitted SYN
            # A new SYN on a known address pair starts a new connection.
            state = _Direction(src, dst, (seg.seq + 1) % _SEQ_MOD, syn_seq=seg.seq)
            self._directions[key] = state
            start = (seg.seq + 1) % _SEQ_MOD
        else:
            start = seg.seq
        if not seg.payload:
            return []
        if state is None:
            state = _Direction(src, dst, seg.seq)
            self._directions[key] = state
        if state.stopped:
            return []
        self._store(state, start, seg.payload)
        if state.pending_bytes > MAX_PENDING:
            state.stopped = True
            return [
                CaptureProblem(
                    frame,
                    time,
                    SEVERITY_ERROR,
                    f"TCP stream {src} -> {dst}: more than {MAX_PENDING} bytes out of order; "
                    "stopped",
                    src,
                    dst,
                )
            ]
        return self._deliver(state, frame, time)

    def _store(self, state: _Direction, seq: int, payload: bytes) -> None:
        expected_seq = (state.base_seq + state.next_offset) % _SEQ_MOD
        delta = (seq - expected_seq) % _SEQ_MOD
        if delta >= _HALF:
            delta -= _SEQ_MOD
        offset = state.next_offset + delta
        end = offset + len(payload)
        if end <= state.next_offset:
            return  # pure retransmission of delivered bytes
        if offset < state.next_offset:
            payload = payload[state.next_offset - offset :]
            offset = state.next_offset
        previous = state.pending.get(offset)
        if previous is None or len(previous) < len(payload):
            state.pending_bytes += len(payload) - (len(previous) if previous else 0)
            state.pending[offset] = payload

    def _deliver(self, state: _Direction, frame: int, time: float | None) -> list[Packet]:
        chunks: list[bytes] = []
        while True:
            ready = [o for o in state.pending if o <= state.next_offset]
            if not ready:
                break
            for offset in ready:
                data = state.pending.pop(offset)
                state.pending_bytes -= len(data)
                skip = state.next_offset - offset
                if skip < len(data):
                    chunks.append(data[skip:])
                    state.next_offset += len(data) - skip
        if not chunks:
            return []
        data = b"".join(chunks)
        unconsumed = state.unconsumed + data
        try:
            records = state.decoder.feed(data)
        except ProtocolError as exc:
            state.stopped = True
            # The decoder drops the good records of a chunk that ends in an
            # error; replay the chunk record by record to keep them.
            records = _records_before_error(unconsumed)
            state.records += len(records)
            found = self._messages(state, records, frame, time)
            if state.records == 0:
                return [
                    *found,
                    CaptureProblem(
                        frame,
                        time,
                        SEVERITY_NOTE,
                        f"TCP stream {state.src} -> {state.dst} does not start with a "
                        f"TCP-mapping record ({exc}); ignored",
                        state.src,
                        state.dst,
                    ),
                ]
            return [
                *found,
                CaptureProblem(
                    frame,
                    time,
                    SEVERITY_ERROR,
                    f"TCP-mapping framing error in stream {state.src} -> {state.dst}: {exc}; "
                    "rest of this direction not decoded",
                    state.src,
                    state.dst,
                    exc.cause,
                ),
            ]
        state.records += len(records)
        consumed = sum(HEADER_SIZE + len(r.payload) for r in records)
        state.unconsumed = unconsumed[consumed:]
        return self._messages(state, records, frame, time)

    @staticmethod
    def _messages(
        state: _Direction, records: list[Record], frame: int, time: float | None
    ) -> list[Packet]:
        out: list[Packet] = []
        for record in records:
            heartbeat = record.type is not RecordType.DATA
            out.append(
                CapturedMessage(
                    frame=frame,
                    time=time,
                    src=state.src,
                    dst=state.dst,
                    transport=TRANSPORT_TCP_MAPPING,
                    ppid=record.ppid,
                    payload=record.payload,
                    protocol="tcpmap" if heartbeat else None,
                    record_type=int(record.type),
                    stream=record.stream,
                )
            )
        return out

    def finish(self) -> list[Packet]:
        """Notes for streams that end with bytes the capture never completed."""
        notes: list[Packet] = []
        for state in self._directions.values():
            if state.stopped:
                continue
            waiting = state.decoder.pending + state.pending_bytes
            if waiting and state.records:
                notes.append(
                    CaptureProblem(
                        0,
                        None,
                        SEVERITY_NOTE,
                        f"TCP stream {state.src} -> {state.dst} ends with {waiting} bytes of "
                        "an incomplete record or missing segments",
                        state.src,
                        state.dst,
                    )
                )
        return notes


def _records_before_error(data: bytes) -> list[Record]:
    """The complete, valid records at the start of ``data`` (which has an error later)."""
    decoder = RecordDecoder()
    records: list[Record] = []
    pos = 0
    try:
        while len(data) - pos >= HEADER_SIZE:
            decoder.feed(data[pos : pos + HEADER_SIZE])  # validates the header
            length = int.from_bytes(data[pos + 4 : pos + 8], "big")
            records += decoder.feed(data[pos + HEADER_SIZE : pos + length])
            pos += length
    except ProtocolError:
        pass
    return records
