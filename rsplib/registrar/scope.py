"""Address scopes and the check of a PE's user transport against its connection.

rsplib keeps only the user addresses a PE really uses (those of its association) and only
those of at least the minimum scope (``-minaddressscope``, site-local by default). Over the
TCP mapping a connection has exactly one peer address, so the check becomes: the PE's user
transport must name the address it connects from, with a scope at least the configured one.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import replace

from rsplib.registrar.config import AddressScope
from rsplib.wire.params import IPAddress, Transport

#: Rank of link-local addresses: usable only when the minimum is ``loopback``.
_LINK_LOCAL_RANK = 0
_UNUSABLE_RANK = -1

_SITE_LOCAL_V4 = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT space: not global either
)
_SITE_LOCAL_V6 = (
    ipaddress.ip_network("fc00::/7"),  # unique local
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)


def normalise(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses (dual-stack sockets) become plain IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_host(host: str) -> IPAddress | None:
    """The host text as an address, or None when it is not a literal address."""
    try:
        return normalise(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def scope_rank(address: IPAddress) -> int:
    """0 loopback (and link-local), 1 site-local, 2 global, -1 never usable.

    Cached: every (re-)registration asks, from a handful of addresses, and the
    ``ipaddress`` properties behind the answer are slow.
    """
    address = normalise(address)
    if address.is_unspecified or address.is_multicast:
        return _UNUSABLE_RANK
    if address.is_loopback:
        return AddressScope.LOOPBACK.rank
    if address.is_link_local:
        return _LINK_LOCAL_RANK
    networks = _SITE_LOCAL_V4 if isinstance(address, ipaddress.IPv4Address) else _SITE_LOCAL_V6
    if any(address in net for net in networks):
        return AddressScope.SITE_LOCAL.rank
    return AddressScope.GLOBAL.rank


def usable_user_transport(
    transport: Transport,
    peer_ip: IPAddress,
    min_scope: AddressScope,
    other_peer_ips: Sequence[IPAddress] = (),
) -> Transport | None:
    """The PE's user transport reduced to the addresses it may register, or None.

    Kept: the connection's peer addresses whose scope is at least ``min_scope``: its
    one address over TCP; over SCTP also ``other_peer_ips``, the association's other
    paths (a multi-homed PE registers every address it is reachable on). A wildcard
    address (0.0.0.0 or ::) stands for "the address I connect from" and is replaced by
    the peer address. None means: reject with 0xF008.
    """
    peer_ip = normalise(peer_ip)
    if scope_rank(peer_ip) < min_scope.rank:
        return None
    allowed = {peer_ip}
    allowed.update(a for a in map(normalise, other_peer_ips) if scope_rank(a) >= min_scope.rank)
    kept: list[IPAddress] = []
    for raw in transport.addresses:
        address = normalise(raw)
        if address.is_unspecified and address.version == peer_ip.version:
            address = peer_ip
        if address in allowed and address not in kept:
            kept.append(address)
    if not kept:
        return None
    if tuple(kept) == transport.addresses:
        return transport
    return replace(transport, addresses=tuple(kept))
