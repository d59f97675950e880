"""Test helper: build packets and write pcap/pcapng files with chosen link types.

Written independently of the reader under test (its own struct layouts), so a
test compares the reader against the formats' definitions, not against itself.
Checksums are left 0: the reader does not verify them.
"""

from __future__ import annotations

import ipaddress
import itertools
import struct
from collections.abc import Sequence

# Link types
NULL = 0
ETHERNET = 1
RAW = 101
LOOP = 108
LINUX_SLL = 113
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

Frame = tuple[float, bytes]  # (epoch seconds, link-layer frame)


def _addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# --------------------------------------------------------------------------- transport


def udp(src_port: int, dst_port: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload


def tcp(
    src_port: int,
    dst_port: int,
    seq: int,
    payload: bytes = b"",
    *,
    flags: int = ACK | PSH,
    ack: int = 0,
    options: bytes = b"",
) -> bytes:
    assert len(options) % 4 == 0
    offset = (20 + len(options)) // 4
    header = struct.pack(
        "!HHIIBBHHH", src_port, dst_port, seq % 2**32, ack, offset << 4, flags, 65535, 0, 0
    )
    return header + options + payload


def chunk(chunk_type: int, flags: int, body: bytes) -> bytes:
    raw = struct.pack("!BBH", chunk_type, flags, 4 + len(body)) + body
    return raw + b"\0" * (-len(raw) % 4)


def data_chunk(
    tsn: int, ppid: int, payload: bytes, *, stream: int = 0, ssn: int = 0, flags: int = 0x03
) -> bytes:
    """SCTP DATA chunk; flags 0x03 = B and E (unfragmented)."""
    return chunk(0, flags, struct.pack("!IHHI", tsn, stream, ssn, ppid) + payload)


def idata_chunk(
    tsn: int, mid: int, ppid_or_fsn: int, payload: bytes, *, stream: int = 0, flags: int = 0x03
) -> bytes:
    """SCTP I-DATA chunk (RFC 8260): PPID in the B fragment, FSN in the others."""
    return chunk(64, flags, struct.pack("!IHHII", tsn, stream, 0, mid, ppid_or_fsn) + payload)


def sack_chunk(cum_tsn: int) -> bytes:
    return chunk(3, 0, struct.pack("!IIHH", cum_tsn, 65536, 0, 0))


def sctp(src_port: int, dst_port: int, vtag: int, chunks: Sequence[bytes]) -> bytes:
    return struct.pack("!HHII", src_port, dst_port, vtag, 0) + b"".join(chunks)


# --------------------------------------------------------------------------- network


def ipv4(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    options: bytes = b"",
    fragment_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    frag = (0x2000 if more_fragments else 0) | (fragment_offset // 8)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(payload),
        0x1234,
        frag,
        64,
        protocol,
        0,
        _addr(src).packed,
        _addr(dst).packed,
    )
    return header + options + payload


def ipv6(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes,
    *,
    extensions: Sequence[int] = (),
) -> bytes:
    """IPv6 packet; ``extensions`` lists extension header types put before the
    transport header (each 8 bytes, e.g. 0 hop-by-hop, 60 destination options,
    44 an atomic fragment header)."""
    chain = [*extensions, protocol]
    ext_bytes = b""
    for current, following in itertools.pairwise(chain):
        if current == 44:
            ext_bytes += struct.pack("!BBHI", following, 0, 0, 0x55)
        else:
            # Next header, length 0 (= 8 bytes), PadN option filling the rest.
            ext_bytes += struct.pack("!BBBB4s", following, 0, 1, 4, b"\0" * 4)
    body = ext_bytes + payload
    first = chain[0]
    header = struct.pack(
        "!IHBB16s16s", 6 << 28, len(body), first, 64, _addr(src).packed, _addr(dst).packed
    )
    return header + body


def ip(src: str, dst: str, protocol: int, payload: bytes) -> bytes:
    """IPv4 or IPv6, whichever the addresses are."""
    if _addr(src).version == 6:
        return ipv6(src, dst, protocol, payload)
    return ipv4(src, dst, protocol, payload)


# --------------------------------------------------------------------------- link


def link(link_type: int, packet: bytes, *, vlan: Sequence[int] = (), pad_to: int = 0) -> bytes:
    """Wrap an IP packet in a link-layer header of ``link_type``."""
    version = packet[0] >> 4
    ethertype = 0x0800 if version == 4 else 0x86DD
    if link_type == ETHERNET:
        header = bytes.fromhex("020000000001 020000000002")
        for tag in vlan:
            header += struct.pack("!HH", 0x8100, tag)
        frame = header + struct.pack("!H", ethertype) + packet
        return frame + b"\0" * max(0, pad_to - len(frame))
    if link_type == LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, ethertype) + packet
    if link_type == LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\0" * 8) + packet
    if link_type == NULL:
        # Host byte order of the capturing machine: little-endian here.
        return struct.pack("<I", 2 if version == 4 else 24) + packet
    if link_type == LOOP:
        return struct.pack("!I", 2 if version == 4 else 30) + packet
    if link_type in (RAW, IPV4, IPV6):
        return packet
    raise ValueError(f"no writer for link type {link_type}")


# --------------------------------------------------------------------------- files


def write_pcap(
    frames: Sequence[Frame], link_type: int, *, big_endian: bool = False, nanoseconds: bool = False
) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    scale = 1_000_000_000 if nanoseconds else 1_000_000
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, link_type)]
    for time, data in frames:
        ticks = round(time * scale)
        seconds, fraction = divmod(ticks, scale)
        out.append(struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data)
    return b"".join(out)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng_section(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def pcapng_interface(
    order: str, link_type: int, *, tsresol: int | None = None, tsoffset: int = 0
) -> bytes:
    options = b""
    if tsresol is not None:
        options += _option(order, 9, bytes([tsresol]))
    if tsoffset:
        options += _option(order, 14, struct.pack(order + "q", tsoffset))
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return _block(order, 1, struct.pack(order + "HHI", link_type, 0, 262144) + options)


def _ticks_per_second(tsresol: int | None) -> int:
    if tsresol is None:
        return 1_000_000
    if tsresol & 0x80:
        return int(2 ** (tsresol & 0x7F))
    return int(10**tsresol)


def pcapng_packet(
    order: str, time: float, data: bytes, *, interface: int = 0, tsresol: int | None = None
) -> bytes:
    ticks = round(time * _ticks_per_second(tsresol))
    fixed = struct.pack(
        order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(order, 6, fixed + data)


def pcapng_simple_packet(order: str, data: bytes) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(data)) + data)


def pcapng_other_block(order: str) -> bytes:
    """A Name Resolution block with no records, which readers must skip."""
    return _block(order, 4, struct.pack(order + "HH", 0, 0))


def write_pcapng(
    frames: Sequence[Frame],
    link_type: int,
    *,
    big_endian: bool = False,
    tsresol: int | None = None,
    tsoffset: int = 0,
    simple: bool = False,
) -> bytes:
    """One section, one interface; ``simple`` writes Simple Packet Blocks (no time).

    With ``tsoffset`` the stored timestamps are ``time - tsoffset``.
    """
    order = ">" if big_endian else "<"
    out = [
        pcapng_section(order),
        pcapng_other_block(order),
        pcapng_interface(order, link_type, tsresol=tsresol, tsoffset=tsoffset),
    ]
    for time, data in frames:
        if simple:
            out.append(pcapng_simple_packet(order, data))
        else:
            out.append(pcapng_packet(order, time - tsoffset, data, tsresol=tsresol))
    return b"".join(out)
