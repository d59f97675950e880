"""pcap and pcapng containers: bytes -> frames with link type and timestamp.

pcap: both byte orders, microsecond and nanosecond magic. pcapng: sections in
either byte order, interface descriptions (link type, timestamp resolution and
offset), enhanced and simple packet blocks (plus the obsolete packet block);
every other block type is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from rsplib.capture.model import CaptureFormatError

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006

OPT_END = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

#: No sane frame is larger; a bigger length means a corrupt file.
MAX_FRAME = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame. ``number`` is 1-based, as Wireshark counts."""

    number: int
    time: float | None
    link_type: int
    data: bytes


def read_frames(data: bytes) -> Iterator[Frame]:
    """Frames of a pcap or pcapng file, in file order.

    Raises ``CaptureFormatError`` for an unknown format, and for a truncated or
    corrupt record after yielding every frame before it.
    """
    if len(data) < 4:
        raise CaptureFormatError("not a pcap/pcapng file (shorter than 4 bytes)")
    head_be = int.from_bytes(data[:4], "big")
    head_le = int.from_bytes(data[:4], "little")
    if head_be == PCAPNG_SHB:
        yield from _read_pcapng(data)
    elif PCAP_MAGIC_US in (head_be, head_le) or PCAP_MAGIC_NS in (head_be, head_le):
        yield from _read_pcap(data)
    else:
        raise CaptureFormatError(f"not a pcap/pcapng file (magic 0x{head_be:08x})")


def _read_pcap(data: bytes) -> Iterator[Frame]:
    if len(data) < 24:
        raise CaptureFormatError("truncated pcap file header")
    order = ">" if int.from_bytes(data[:4], "big") in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else "<"
    magic, _major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(
        order + "IHHiIII", data, 0
    )
    divisor = 1_000_000_000 if magic == PCAP_MAGIC_NS else 1_000_000
    link_type = network & 0xFFFF  # upper bits may carry FCS information
    record = struct.Struct(order + "IIII")
    offset = 24
    number = 0
    while offset < len(data):
        if len(data) - offset < record.size:
            raise CaptureFormatError(f"truncated pcap record header at offset {offset}")
        seconds, fraction, captured, _original = record.unpack_from(data, offset)
        offset += record.size
        if captured > MAX_FRAME or captured > len(data) - offset:
            raise CaptureFormatError(
                f"truncated or corrupt pcap record at offset {offset - record.size} "
                f"({captured} bytes announced)"
            )
        number += 1
        yield Frame(
            number, seconds + fraction / divisor, link_type, data[offset : offset + captured]
        )
        offset += captured


@dataclass(slots=True)
class _Interface:
    link_type: int
    # Seconds per timestamp unit, exact, and an offset in seconds.
    unit: Fraction
    offset: int


def _read_pcapng(data: bytes) -> Iterator[Frame]:
    offset = 0
    order = ">"
    interfaces: list[_Interface] = []
    number = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise CaptureFormatError(f"truncated pcapng block at offset {offset}")
        block_type = int.from_bytes(data[offset : offset + 4], "big" if order == ">" else "little")
        if block_type == PCAPNG_SHB:
            # A new section may switch byte order; interface numbering restarts.
            magic_raw = data[offset + 8 : offset + 12]
            if int.from_bytes(magic_raw, "big") == PCAPNG_BYTE_ORDER_MAGIC:
                order = ">"
            elif int.from_bytes(magic_raw, "little") == PCAPNG_BYTE_ORDER_MAGIC:
                order = "<"
            else:
                raise CaptureFormatError(f"bad pcapng byte-order magic at offset {offset}")
            interfaces = []
        (length,) = struct.unpack_from(order + "I", data, offset + 4)
        if length < 12 or length % 4 or length > len(data) - offset:
            raise CaptureFormatError(
                f"truncated or corrupt pcapng block at offset {offset} (length {length})"
            )
        (trailer,) = struct.unpack_from(order + "I", data, offset + length - 4)
        if trailer != length:
            raise CaptureFormatError(f"pcapng block at offset {offset}: length fields disagree")
        body = data[offset + 8 : offset + length - 4]
        offset += length
        if block_type == PCAPNG_IDB:
            interfaces.append(_parse_idb(body, order))
        elif block_type in (PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB):
            number += 1
            yield _parse_packet_block(block_type, body, order, interfaces, number)


def _parse_idb(body: bytes, order: str) -> _Interface:
    if len(body) < 8:
        raise CaptureFormatError("truncated pcapng interface description")
    (link_type,) = struct.unpack_from(order + "H", body, 0)
    unit = Fraction(1, 1_000_000)
    ts_offset = 0
    for code, value in _options(body[8:], order):
        if code == OPT_IF_TSRESOL and len(value) >= 1:
            exponent = value[0] & 0x7F
            unit = Fraction(1, 2**exponent) if value[0] & 0x80 else Fraction(1, 10**exponent)
        elif code == OPT_IF_TSOFFSET and len(value) >= 8:
            (ts_offset,) = struct.unpack_from(order + "q", value, 0)
    return _Interface(link_type, unit, ts_offset)


def _options(raw: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while len(raw) - pos >= 4:
        code, length = struct.unpack_from(order + "HH", raw, pos)
        if code == OPT_END:
            return
        value = raw[pos + 4 : pos + 4 + length]
        pos += 4 + length + (-length % 4)
        yield code, value


def _parse_packet_block(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], number: int
) -> Frame:
    if block_type == PCAPNG_SPB:
        if len(body) < 4:
            raise CaptureFormatError("truncated pcapng simple packet block")
        (original,) = struct.unpack_from(order + "I", body, 0)
        interface_id, stamp, frame_data = 0, None, body[4 : 4 + original]
    else:
        if block_type == PCAPNG_EPB:
            fixed = order + "IIIII"
            if len(body) < 20:
                raise CaptureFormatError("truncated pcapng enhanced packet block")
            interface_id, high, low, captured, _orig = struct.unpack_from(fixed, body, 0)
            start = 20
        else:
            fixed = order + "HHIIII"
            if len(body) < 20:
                raise CaptureFormatError("truncated pcapng packet block")
            interface_id, _drops, high, low, captured, _orig = struct.unpack_from(fixed, body, 0)
            start = 20
        if captured > len(body) - start:
            raise CaptureFormatError(f"pcapng packet {number}: captured length exceeds block")
        stamp = (high << 32) | low
        frame_data = body[start : start + captured]
    if interface_id >= len(interfaces):
        raise CaptureFormatError(f"pcapng packet {number} names unknown interface {interface_id}")
    interface = interfaces[interface_id]
    time = None if stamp is None else float(stamp * interface.unit + interface.offset)
    return Frame(number, time, interface.link_type, frame_data)
