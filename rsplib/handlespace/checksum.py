"""ENRP ownership checksum (PE Checksum parameter, docs/protocol-notes.md#ownership-checksum).

RFC 1071 Internet checksum over, per PE, the pool handle (padded with one
zero byte when its length is odd) followed by the PE identifier as four
big-endian bytes. Every PE starts on a fresh 16-bit boundary, so the
checksum is the complemented fold of a plain sum of per-PE partial sums:
order does not matter, and adding or removing one PE is one addition.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

EMPTY_CHECKSUM = 0xFFFF


def handle_sum(pool_handle: bytes) -> int:
    """Unfolded sum of the big-endian 16-bit words of a pool handle."""
    if len(pool_handle) & 1:
        pool_handle += b"\x00"
    return sum(struct.unpack(f">{len(pool_handle) // 2}H", pool_handle))


def pe_partial_sum(pool_handle_sum: int, identifier: int) -> int:
    """Unfolded contribution of one PE, given the sum of its pool handle."""
    return pool_handle_sum + (identifier >> 16) + (identifier & 0xFFFF)


def finish(total: int) -> int:
    """Fold carries into 16 bits and complement (RFC 1071)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ownership_checksum(pes: Iterable[tuple[bytes, int]]) -> int:
    """Checksum of (pool handle, PE identifier) pairs, computed from scratch."""
    return finish(sum(pe_partial_sum(handle_sum(h), i) for h, i in pes))


class OwnershipChecksums:
    """Running checksums per home registrar; reading one is O(1)."""

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums: dict[int, int] = {}

    def add(self, registrar_id: int, part: int) -> None:
        sums = self._sums
        sums[registrar_id] = sums.get(registrar_id, 0) + part

    def remove(self, registrar_id: int, part: int) -> None:
        sums = self._sums
        left = sums[registrar_id] - part
        if left:
            sums[registrar_id] = left
        else:
            del sums[registrar_id]

    def checksum(self, registrar_id: int) -> int:
        return finish(self._sums.get(registrar_id, 0))

    def raw_sums(self) -> dict[int, int]:
        """Copy of the unfolded sums (for invariant checks)."""
        return dict(self._sums)
