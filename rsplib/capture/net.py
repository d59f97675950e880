"""Link and network layers of captured frames: link header -> IPv4/IPv6 packet.

Link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked capture v1 and
v2, BSD loopback (NULL, host byte order, and LOOP, network order) and raw IP.
IPv4 options are skipped and fragments are left out with a note; IPv6
extension headers are walked to the transport header.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from rsplib.capture.model import FrameError, FrameSkipped, IPAddress

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})

# BSD address families for IPv4/IPv6 on the various systems that write NULL/LOOP.
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})

# IPv6 extension headers that are skipped to reach the transport header.
_IPV6_HOP_BY_HOP = 0
_IPV6_ROUTING = 43
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
_IPV6_DEST_OPTS = 60
_IPV6_NO_NEXT = 59
_IPV6_SIMPLE_EXTENSIONS = frozenset({_IPV6_HOP_BY_HOP, _IPV6_ROUTING, _IPV6_DEST_OPTS, 135, 139})

SUPPORTED_LINK_TYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)


@dataclass(frozen=True, slots=True)
class IpPacket:
    """The part of an IP packet the transports need."""

    src: IPAddress
    dst: IPAddress
    protocol: int
    payload: bytes


def ip_from_link(link_type: int, frame: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, or ``None`` for non-IP frames.

    Raises ``FrameError`` for a truncated header and ``FrameSkipped`` for an
    unsupported link type.
    """
    if link_type == LINKTYPE_ETHERNET:
        return _ethernet(frame)
    if link_type == LINKTYPE_LINUX_SLL:
        _need(frame, 16, "Linux cooked header")
        return _by_ethertype(int.from_bytes(frame[14:16], "big"), frame[16:])
    if link_type == LINKTYPE_LINUX_SLL2:
        _need(frame, 20, "Linux cooked v2 header")
        return _by_ethertype(int.from_bytes(frame[0:2], "big"), frame[20:])
    if link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        _need(frame, 4, "loopback header")
        family = int.from_bytes(frame[:4], "big")
        if link_type == LINKTYPE_NULL and family > 0xFFFF:
            # NULL stores the family in the capturing host's byte order.
            family = int.from_bytes(frame[:4], "little")
        if family == _AF_INET or family in _AF_INET6:
            return frame[4:]
        return None
    if link_type in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return frame
    raise FrameSkipped(f"unsupported link type {link_type}")


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise FrameError(f"truncated {what} ({len(data)} of {size} bytes)")


def _ethernet(frame: bytes) -> bytes | None:
    _need(frame, 14, "Ethernet header")
    ethertype = int.from_bytes(frame[12:14], "big")
    offset = 14
    while ethertype in _VLAN_TAGS:
        _need(frame, offset + 4, "VLAN tag")
        ethertype = int.from_bytes(frame[offset + 2 : offset + 4], "big")
        offset += 4
    return _by_ethertype(ethertype, frame[offset:])


def _by_ethertype(ethertype: int, payload: bytes) -> bytes | None:
    if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
        return payload
    return None


def parse_ip(packet: bytes) -> IpPacket:
    """Addresses, transport protocol and transport bytes of an IPv4/IPv6 packet."""
    _need(packet, 1, "IP header")
    version = packet[0] >> 4
    if version == 4:
        return _ipv4(packet)
    if version == 6:
        return _ipv6(packet)
    raise FrameError(f"not an IPv4/IPv6 packet (version {version})")


def _ipv4(packet: bytes) -> IpPacket:
    _need(packet, 20, "IPv4 header")
    header_length = (packet[0] & 0x0F) * 4
    total_length, fragment_field = struct.unpack_from("!H2xH", packet, 2)
    if header_length < 20 or header_length > len(packet):
        raise FrameError(f"bad IPv4 header length {header_length}")
    if total_length < header_length:
        raise FrameError(f"bad IPv4 total length {total_length}")
    src = ipaddress.IPv4Address(packet[12:16])
    dst = ipaddress.IPv4Address(packet[16:20])
    more_fragments = fragment_field & 0x2000
    fragment_offset = fragment_field & 0x1FFF
    if more_fragments or fragment_offset:
        raise FrameSkipped(
            f"IPv4 fragment {src} -> {dst} (offset {fragment_offset * 8}) not decoded: "
            "IP reassembly is not supported"
        )
    # Frames may carry link padding after the IP packet; the total length rules.
    return IpPacket(src, dst, packet[9], packet[header_length:total_length])


def _ipv6(packet: bytes) -> IpPacket:
    _need(packet, 40, "IPv6 header")
    payload_length = int.from_bytes(packet[4:6], "big")
    next_header = packet[6]
    src = ipaddress.IPv6Address(packet[8:24])
    dst = ipaddress.IPv6Address(packet[24:40])
    # Payload length 0 with a hop-by-hop option means a jumbogram; use the rest.
    end = 40 + payload_length if payload_length else len(packet)
    body = packet[40:end]
    while True:
        if next_header in _IPV6_SIMPLE_EXTENSIONS:
            _need(body, 8, "IPv6 extension header")
            following, size = body[0], (body[1] + 1) * 8
        elif next_header == _IPV6_AH:
            _need(body, 8, "IPv6 authentication header")
            following, size = body[0], (body[1] + 2) * 4
        elif next_header == _IPV6_FRAGMENT:
            _need(body, 8, "IPv6 fragment header")
            offset_field = int.from_bytes(body[2:4], "big")
            if offset_field & 0xFFF9:  # offset bits or M flag
                raise FrameSkipped(
                    f"IPv6 fragment {src} -> {dst} not decoded: IP reassembly is not supported"
                )
            following, size = body[0], 8
        elif next_header == _IPV6_NO_NEXT:
            raise FrameSkipped("IPv6 packet without a transport header")
        else:
            return IpPacket(src, dst, next_header, body)
        if size > len(body):
            raise FrameError("truncated IPv6 extension header")
        next_header, body = following, body[size:]
