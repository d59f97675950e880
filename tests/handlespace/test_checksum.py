"""Ownership checksum, kept incrementally.

The worked examples are those of docs/protocol-notes.md#ownership-checksum.
"""

from __future__ import annotations

import struct

import pytest

from rsplib.handlespace import Handlespace, ownership_checksum
from rsplib.wire.constants import PolicyType

from .helpers import POOL, pe

A, B = 0x0000A001, 0x0000B002


def rfc1071(data: bytes) -> int:
    """Independent reference: checksum of one contiguous, even-length buffer."""
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize(
    ("pes", "wire"),
    [
        ([], b"\xff\xff"),
        ([(POOL, 0x12345678)], b"\xb3\x31"),
        ([(POOL, 0x12345678), (POOL, 0x9ABCDEF0)], b"\x55\x62"),
        ([(b"abc", 0x00000001)], b"\x3b\x9c"),
    ],
)
def test_worked_examples(pes: list[tuple[bytes, int]], wire: bytes) -> None:
    assert ownership_checksum(pes).to_bytes(2, "big") == wire
    hs = Handlespace()
    for handle, identifier in pes:
        hs.register(handle, pe(identifier, PolicyType.ROUND_ROBIN), home_registrar_id=A, now=0)
    assert hs.ownership_checksum(A).to_bytes(2, "big") == wire


def test_matches_rfc1071_over_concatenated_blocks() -> None:
    pairs = [(b"abc", 7), (b"pool-x", 0xDEADBEEF), (b"q", 0xFFFFFFFF)]
    blob = b"".join(h + b"\0" * (len(h) & 1) + i.to_bytes(4, "big") for h, i in pairs)
    assert ownership_checksum(pairs) == rfc1071(blob)


def test_checksum_is_per_home_and_follows_changes() -> None:
    hs = Handlespace()
    hs.register(POOL, pe(0x12345678, PolicyType.ROUND_ROBIN), home_registrar_id=A, now=0)
    hs.register(POOL, pe(0x9ABCDEF0, PolicyType.ROUND_ROBIN), home_registrar_id=B, now=0)
    assert hs.ownership_checksum(A) == 0xB331
    assert hs.ownership_checksum(B) == ownership_checksum([(POOL, 0x9ABCDEF0)])
    assert hs.ownership_checksum(0x777) == 0xFFFF

    entry = hs.get(POOL, 0x9ABCDEF0)
    assert entry is not None
    hs.rehome(entry, A)
    assert hs.ownership_checksum(A) == 0x5562
    assert hs.ownership_checksum(B) == 0xFFFF

    # A re-registration naming another home moves the PE too.
    hs.register(POOL, pe(0x12345678, PolicyType.ROUND_ROBIN), home_registrar_id=B, now=1)
    assert hs.ownership_checksum(A) == ownership_checksum([(POOL, 0x9ABCDEF0)])
    assert hs.ownership_checksum(B) == 0xB331

    hs.deregister(POOL, 0x12345678)
    assert hs.ownership_checksum(B) == 0xFFFF
    hs.check_invariants()
