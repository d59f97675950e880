"""The registrar's hottest answer, a Handle Resolution Response, without re-encoding PEs.

The response (RFC 5352, section 2.2.6) is the pool handle, the first selected PE's
policy and the selected PEs' Pool Element parameters. The handlespace keeps PEs as
mutable entries, so every resolution would build new parameter values and encode them
again, which would dominate the cost. Instead the registrar keeps one parameter value
per PE while its entry is unchanged (the same entry object, update time, home, policy
and distance) and takes its encoding from a set of encoded PE TLVs of its own
(:class:`rsplib.wire.codec.EncodedPoolElements`): each PE is encoded once per change.
The wire codec encodes the pool handle and the message header. The registrar drops a
PE's value and TLV when the PE is removed.
"""

from __future__ import annotations

import struct

from rsplib.handlespace import PoolElementEntry
from rsplib.handlespace.entry import PeKey
from rsplib.wire.codec import EncodedPoolElements, encode_message, encode_pool_handle
from rsplib.wire.constants import AsapType
from rsplib.wire.params import PolicyParam, PoolElementParam

_U32 = struct.Struct("!I")
_HANDLE_RESOLUTION_RESPONSE = int(AsapType.HANDLE_RESOLUTION_RESPONSE)

#: entry, updated_at, home id, policy object, distance -> the PE parameter they make
_Snapshot = tuple[PoolElementEntry, float, int, PolicyParam, int, PoolElementParam]


class ResolutionEncoder:
    __slots__ = ("_encoded", "_params")

    def __init__(self) -> None:
        self._params: dict[PeKey, _Snapshot] = {}
        # As many as the handlespace holds: a resolution may pick any of them.
        self._encoded = EncodedPoolElements(capacity=None)

    def __len__(self) -> int:
        return len(self._params)

    def _renewed(self, entry: PoolElementEntry) -> PoolElementParam:
        """A new parameter value for a PE that is new or has changed."""
        key = (entry.pool_handle, entry.identifier)
        known = self._params.get(key)
        if known is not None:
            self._encoded.forget(known[5])
        param = entry.to_param(False)
        self._params[key] = (
            entry,
            entry.updated_at,
            entry.home_registrar_id,
            entry.policy,
            entry.distance,
            param,
        )
        return param

    def handle_resolution_response(
        self, pool_handle: bytes, entries: list[PoolElementEntry]
    ) -> bytes:
        """The encoded response with ``entries`` (the first one's policy), no error."""
        params = self._params
        tlv = self._encoded.tlv
        tlvs: list[bytes] = []
        first: PoolElementParam | None = None
        for entry in entries:
            # The registrar's hottest loop: the unchanged-PE check is written out here.
            known = params.get((entry.pool_handle, entry.identifier))
            if (
                known is not None
                and known[0] is entry
                and known[1] == entry.updated_at
                and known[2] == entry.home_registrar_id
                and known[3] is entry.policy
                and known[4] == entry.distance
            ):
                param = known[5]
            else:
                param = self._renewed(entry)
            if first is None:
                first = param
            tlvs.append(tlv(param))
        handle = encode_pool_handle(pool_handle)
        if first is None:  # an empty pool: no policy, no PEs
            return encode_message(_HANDLE_RESOLUTION_RESPONSE, 0, handle)
        body = b"".join([handle, self._encoded.policy_tlv(first), *tlvs])
        return encode_message(_HANDLE_RESOLUTION_RESPONSE, 0, body)

    def forget(self, pool_handle: bytes, identifier: int) -> None:
        known = self._params.pop((pool_handle, identifier), None)
        if known is not None:
            self._encoded.forget(known[5])


def readdress(message: bytes, receiver_server_id: int) -> bytes:
    """An encoded ENRP message with another Receiver Server ID (bytes 8-11)."""
    return message[:8] + _U32.pack(receiver_server_id) + message[12:]
