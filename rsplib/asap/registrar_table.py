"""Known registrars of a PE/PU: static ones and those heard in Server Announces.

Announced entries expire ``announce_timeout`` seconds after the last announce
(rsplib: 5 s); static ones never do. Candidates for a hunt come out in a
rotating order: an address that just failed goes to the back, so successive
hunts try different registrars.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rsplib.addressing import PeerAddress
from rsplib.wire.asap import ServerAnnounce
from rsplib.wire.params import SctpTransport, TcpTransport, Transport


@dataclass(slots=True)
class RegistrarEntry:
    address: PeerAddress
    server_id: int  # 0 = not known (static entries until a Keep-Alive names it)
    static: bool
    expires_at: float | None  # None for static entries


def announce_addresses(
    announce: ServerAnnounce, source: PeerAddress, transport: str
) -> list[PeerAddress]:
    """Where to connect to the registrar that sent ``announce``.

    Without transport parameters (rsplib's announces) it is the datagram's source address
    and port (docs/protocol-notes.md#registrar-discovery). Otherwise every address of
    each transport parameter of our kind (TCP for the TCP mapping, SCTP for SCTP); a
    wildcard address stands for the source address. Announces whose transports are all of
    another kind give no address.
    """
    if not announce.transports:
        return [source]
    wanted: type[Transport] = TcpTransport if transport == "tcp-mapping" else SctpTransport
    found: list[PeerAddress] = []
    for item in announce.transports:
        if not isinstance(item, wanted) or item.port == 0:
            continue
        for addr in item.addresses or (ipaddress.ip_address(source.host),):
            host = source.host if addr.is_unspecified else str(addr)
            candidate = PeerAddress(host, item.port)
            if candidate not in found:
                found.append(candidate)
    return found


class RegistrarTable:
    """Static and announced registrars, in hunt order."""

    def __init__(self, announce_timeout: float) -> None:
        self.announce_timeout = announce_timeout
        # Insertion order is the hunt order (dicts keep it; failures move to the end).
        self._entries: dict[PeerAddress, RegistrarEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        return address in self._entries

    def add_static(self, address: PeerAddress) -> None:
        entry = self._entries.get(address)
        if entry is None:
            self._entries[address] = RegistrarEntry(address, 0, True, None)
        else:
            entry.static = True
            entry.expires_at = None

    def heard(self, address: PeerAddress, server_id: int, now: float) -> bool:
        """An announce named ``address``; True if the address is new to the table."""
        entry = self._entries.get(address)
        if entry is None:
            expires = now + self.announce_timeout
            self._entries[address] = RegistrarEntry(address, server_id, False, expires)
            return True
        if server_id:
            entry.server_id = server_id
        if not entry.static:
            entry.expires_at = now + self.announce_timeout
        return False

    def learn_id(self, address: PeerAddress, server_id: int) -> None:
        entry = self._entries.get(address)
        if entry is not None and server_id:
            entry.server_id = server_id

    def server_id(self, address: PeerAddress) -> int:
        entry = self._entries.get(address)
        return 0 if entry is None else entry.server_id

    def expire(self, now: float) -> list[PeerAddress]:
        """Forget announced registrars not heard for the announce timeout."""
        gone = [
            a for a, e in self._entries.items() if e.expires_at is not None and e.expires_at <= now
        ]
        for address in gone:
            del self._entries[address]
        return gone

    def next_expiry(self) -> float | None:
        times = [e.expires_at for e in self._entries.values() if e.expires_at is not None]
        return min(times) if times else None

    def candidates(
        self, exclude: set[PeerAddress] | frozenset[PeerAddress] = frozenset()
    ) -> list[PeerAddress]:
        """Addresses in hunt order, one per known server id (ids 0 count as distinct)."""
        seen_ids: set[int] = set()
        result: list[PeerAddress] = []
        for address, entry in self._entries.items():
            if address in exclude:
                continue
            if entry.server_id:
                if entry.server_id in seen_ids:
                    continue
                seen_ids.add(entry.server_id)
            result.append(address)
        return result

    def demote(self, address: PeerAddress) -> None:
        """Move ``address`` to the back of the hunt order (it just failed)."""
        entry = self._entries.pop(address, None)
        if entry is not None:
            self._entries[address] = entry

    def entries(self) -> list[RegistrarEntry]:
        return list(self._entries.values())
