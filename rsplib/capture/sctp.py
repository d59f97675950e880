"""SCTP packets in captures (native, and over UDP per RFC 6951).

Every DATA chunk (and I-DATA chunk, RFC 8260) becomes one message with its
PPID; other chunks are ignored. Fragmented user messages are reassembled per
association direction: DATA fragments by consecutive TSNs from the B to the E
fragment, I-DATA fragments by message identifier and fragment sequence number.
Retransmitted chunks (a TSN seen before) are dropped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rsplib.capture.model import CapturedMessage, FrameError, IPAddress, Packet, endpoint

CHUNK_DATA = 0
CHUNK_IDATA = 64

FLAG_END = 0x01
FLAG_BEGIN = 0x02
FLAG_UNORDERED = 0x04

_TSN_MOD = 1 << 32
#: Fragments held per direction before old ones are dropped (bounded memory).
MAX_FRAGMENTS = 4096

_COMMON = struct.Struct("!HHII")
_DATA = struct.Struct("!IHHI")  # TSN, stream, SSN, PPID
_IDATA = struct.Struct("!IHHII")  # TSN, stream, reserved, MID, PPID-or-FSN


@dataclass(slots=True)
class _Fragment:
    flags: int
    stream: int
    ppid: int
    data: bytes


@dataclass(slots=True)
class _Direction:
    seen_tsns: set[int] = field(default_factory=set)
    fragments: dict[int, _Fragment] = field(default_factory=dict)
    # I-DATA: (stream, unordered, MID) -> {FSN: data}, PPID, last FSN
    i_fragments: dict[tuple[int, bool, int], dict[int, bytes]] = field(default_factory=dict)
    i_ppid: dict[tuple[int, bool, int], int] = field(default_factory=dict)
    i_last: dict[tuple[int, bool, int], int] = field(default_factory=dict)


class SctpReassembler:
    """Extracts user messages from SCTP packets, across packets where fragmented."""

    def __init__(self) -> None:
        self._directions: dict[tuple[str, str, str, int], _Direction] = {}

    def packet(
        self,
        frame: int,
        time: float | None,
        src_addr: IPAddress,
        dst_addr: IPAddress,
        data: bytes,
        transport: str,
    ) -> list[Packet]:
        if len(data) < _COMMON.size:
            raise FrameError(f"truncated SCTP common header ({len(data)} bytes)")
        src_port, dst_port, vtag, _checksum = _COMMON.unpack_from(data, 0)
        src = endpoint(src_addr, src_port)
        dst = endpoint(dst_addr, dst_port)
        state = self._directions.setdefault((transport, src, dst, vtag), _Direction())
        out: list[Packet] = []
        offset = _COMMON.size
        while len(data) - offset >= 4:
            chunk_type, flags, length = struct.unpack_from("!BBH", data, offset)
            if length < 4 or length > len(data) - offset:
                # Report what was found before the bad chunk, then the problem.
                raise ChunkError(out, f"bad SCTP chunk length {length} at offset {offset}")
            body = data[offset + 4 : offset + length]
            offset += length + (-length % 4)
            try:
                if chunk_type == CHUNK_DATA:
                    message = self._data(state, flags, body)
                elif chunk_type == CHUNK_IDATA:
                    message = self._idata(state, flags, body)
                else:
                    continue
            except FrameError as exc:
                raise ChunkError(out, str(exc)) from None
            if message is not None:
                stream, ppid, payload = message
                out.append(
                    CapturedMessage(frame, time, src, dst, transport, ppid, payload, stream=stream)
                )
        return out

    def _data(self, state: _Direction, flags: int, body: bytes) -> tuple[int, int, bytes] | None:
        if len(body) < _DATA.size:
            raise FrameError(f"truncated SCTP DATA chunk ({len(body) + 4} bytes)")
        tsn, stream, _ssn, ppid = _DATA.unpack_from(body, 0)
        if tsn in state.seen_tsns:
            return None  # retransmission
        state.seen_tsns.add(tsn)
        payload = body[_DATA.size :]
        if flags & (FLAG_BEGIN | FLAG_END) == FLAG_BEGIN | FLAG_END:
            return stream, ppid, payload
        if len(state.fragments) >= MAX_FRAGMENTS:
            state.fragments.pop(next(iter(state.fragments)))
        state.fragments[tsn] = _Fragment(flags, stream, ppid, payload)
        return self._assemble(state, tsn)

    @staticmethod
    def _assemble(state: _Direction, tsn: int) -> tuple[int, int, bytes] | None:
        fragments = state.fragments
        first = tsn
        while not fragments[first].flags & FLAG_BEGIN:
            first = (first - 1) % _TSN_MOD
            if first not in fragments:
                return None
        last = tsn
        while not fragments[last].flags & FLAG_END:
            last = (last + 1) % _TSN_MOD
            if last not in fragments:
                return None
        begin = fragments[first]
        parts = []
        current = first
        while True:
            parts.append(fragments.pop(current).data)
            if current == last:
                break
            current = (current + 1) % _TSN_MOD
        return begin.stream, begin.ppid, b"".join(parts)

    def _idata(self, state: _Direction, flags: int, body: bytes) -> tuple[int, int, bytes] | None:
        if len(body) < _IDATA.size:
            raise FrameError(f"truncated SCTP I-DATA chunk ({len(body) + 4} bytes)")
        tsn, stream, _reserved, mid, ppid_or_fsn = _IDATA.unpack_from(body, 0)
        if tsn in state.seen_tsns:
            return None
        state.seen_tsns.add(tsn)
        payload = body[_IDATA.size :]
        if flags & (FLAG_BEGIN | FLAG_END) == FLAG_BEGIN | FLAG_END:
            return stream, ppid_or_fsn, payload
        key = (stream, bool(flags & FLAG_UNORDERED), mid)
        parts = state.i_fragments.setdefault(key, {})
        if flags & FLAG_BEGIN:
            # The first fragment carries the PPID; its FSN is 0 by definition.
            state.i_ppid[key] = ppid_or_fsn
            parts[0] = payload
        else:
            parts[ppid_or_fsn] = payload
            if flags & FLAG_END:
                state.i_last[key] = ppid_or_fsn
        last = state.i_last.get(key)
        if last is None or key not in state.i_ppid or len(parts) != last + 1:
            return None
        if any(index not in parts for index in range(last + 1)):
            return None
        ppid = state.i_ppid.pop(key)
        del state.i_last[key], state.i_fragments[key]
        return stream, ppid, b"".join(parts[index] for index in range(last + 1))


class ChunkError(FrameError):
    """A chunk-level problem after some messages of the packet were read."""

    def __init__(self, found: list[Packet], message: str) -> None:
        super().__init__(message)
        self.found = found
