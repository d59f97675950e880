"""Byte-level shortcuts for the registrar's hottest answers.

A Handle Resolution Response is the pool handle, the first PE's policy and the selected
PEs' parameters. Encoding those PE parameters again for every resolution dominates the
cost, so the encoded Pool Element (and policy) TLVs are cached per PE and the response is
assembled from them. The result is byte-identical to ``encode_asap`` (a test checks this).
A cached encoding is valid while the entry object, its update time, home, policy and
distance are unchanged; the registrar drops it when the PE is removed.
"""

from __future__ import annotations

import struct

from rsplib.handlespace import PoolElementEntry
from rsplib.wire.constants import AsapType
from rsplib.wire.params import PolicyParam
from rsplib.wire.tlv import encode_policy, encode_pool_element, encode_pool_handle

_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")

PeKey = tuple[bytes, int]
#: entry, updated_at, home id, policy object, distance -> (PE TLV, policy TLV)
_Cached = tuple[PoolElementEntry, float, int, PolicyParam, int, bytes, bytes]


class ResolutionEncoder:
    __slots__ = ("_cache", "_handles")

    def __init__(self) -> None:
        self._cache: dict[PeKey, _Cached] = {}
        self._handles: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def _encoded(self, entry: PoolElementEntry) -> _Cached:
        key = (entry.pool_handle, entry.identifier)
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached[0] is entry
            and cached[1] == entry.updated_at
            and cached[2] == entry.home_registrar_id
            and cached[3] is entry.policy
            and cached[4] == entry.distance
        ):
            return cached
        param = entry.to_param(False)
        cached = (
            entry,
            entry.updated_at,
            entry.home_registrar_id,
            entry.policy,
            entry.distance,
            encode_pool_element(param),
            encode_policy(param.policy),
        )
        self._cache[key] = cached
        return cached

    def handle_resolution_response(
        self, pool_handle: bytes, entries: list[PoolElementEntry]
    ) -> bytes:
        """The encoded response with ``entries`` (the first one's policy), no error."""
        handle_tlv = self._handles.get(pool_handle)
        if handle_tlv is None:
            if len(self._handles) > 4096:
                self._handles.clear()
            handle_tlv = self._handles[pool_handle] = encode_pool_handle(pool_handle)
        parts = [b"", handle_tlv]
        if entries:
            first = self._encoded(entries[0])
            parts.append(first[6])
            parts.append(first[5])
            parts.extend(self._encoded(entry)[5] for entry in entries[1:])
        body_length = sum(len(p) for p in parts) + _HEADER.size
        parts[0] = _HEADER.pack(AsapType.HANDLE_RESOLUTION_RESPONSE, 0, body_length)
        return b"".join(parts)

    def forget(self, pool_handle: bytes, identifier: int) -> None:
        self._cache.pop((pool_handle, identifier), None)


def readdress(message: bytes, receiver_server_id: int) -> bytes:
    """An encoded ENRP message with another Receiver Server ID (bytes 8-11)."""
    return message[:8] + _U32.pack(receiver_server_id) + message[12:]
