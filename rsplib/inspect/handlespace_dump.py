"""One registrar's handlespace as fetched with ENRP Handle Table Requests (pure).

:class:`HandlespaceDump` collects the Handle Table Responses (RFC 5353) of
one registrar, computes the ownership checksum of every home registrar from the entries
(RFC 5353: the checksum over the pool handles and identifiers of the PEs
a registrar owns), and renders the table as text or JSON. The registrar's own checksum,
from its Presence, sits beside them: equal values mean the copies agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsplib.handlespace.checksum import ownership_checksum
from rsplib.handlespace.policy_parser import format_policy
from rsplib.trace.record import escape_bytes
from rsplib.wire.constants import FRACTION_MAX
from rsplib.wire.enrp import HandleTableResponse
from rsplib.wire.jsonable import JsonValue
from rsplib.wire.params import PoolElementParam, Transport

#: Bounds of what one dump keeps (a registrar that lies cannot make us hold more).
MAX_POOLS = 10_000
MAX_PES = 100_000


class DumpLimitExceeded(Exception):
    """The registrar sent more than a dump keeps."""


def transport_text(transport: Transport | None) -> str:
    if transport is None:
        return "-"
    kind = type(transport).__name__.removesuffix("Transport").lower()
    addresses = ",".join(str(a) for a in transport.addresses) or "*"
    return f"{kind} {addresses}:{transport.port}"


def policy_text(pe: PoolElementParam) -> str:
    try:
        return format_policy(pe.policy)
    except ValueError:
        return f"0x{pe.policy.policy_type:08x}"


@dataclass
class HandlespaceDump:
    """The handlespace of registrar ``server_id`` as it answered."""

    server_id: int = 0
    address: str = ""
    #: The registrar's own ownership checksum from its Presence (None if it sent none).
    reported_checksum: int | None = None
    pools: dict[bytes, dict[int, PoolElementParam]] = field(default_factory=dict)
    responses: int = 0

    @property
    def pe_count(self) -> int:
        return sum(len(pes) for pes in self.pools.values())

    def add_response(self, response: HandleTableResponse) -> None:
        self.responses += 1
        for pool_handle, pes in response.entries:
            pool = self.pools.get(pool_handle)
            if pool is None:
                if len(self.pools) >= MAX_POOLS:
                    raise DumpLimitExceeded(f"more than {MAX_POOLS} pools")
                pool = self.pools[pool_handle] = {}
            for pe in pes:
                if pe.identifier not in pool and self.pe_count >= MAX_PES:
                    raise DumpLimitExceeded(f"more than {MAX_PES} pool elements")
                pool[pe.identifier] = pe

    def checksums(self) -> dict[int, tuple[int, int]]:
        """Home registrar id -> (ownership checksum, number of PEs it owns)."""
        owned: dict[int, list[tuple[bytes, int]]] = {}
        for pool_handle, pes in self.pools.items():
            for pe in pes.values():
                owned.setdefault(pe.home_registrar_id, []).append((pool_handle, pe.identifier))
        return {
            home: (ownership_checksum(pairs), len(pairs)) for home, pairs in sorted(owned.items())
        }

    def own_checksum(self) -> int:
        """The checksum of what this registrar owns according to its own table."""
        found = self.checksums().get(self.server_id)
        return found[0] if found is not None else ownership_checksum(())

    # ------------------------------------------------------------------ output

    def text(self) -> str:
        lines = [f"Registrar 0x{self.server_id:08x} at {self.address}"]
        if self.reported_checksum is not None:
            agree = "agrees" if self.reported_checksum == self.own_checksum() else "DIFFERS"
            lines.append(
                f"  its ownership checksum 0x{self.reported_checksum:04x} "
                f"({agree} with the table below)"
            )
        lines.append(f"  {len(self.pools)} pool(s), {self.pe_count} pool element(s)")
        for pool_handle in sorted(self.pools):
            pes = self.pools[pool_handle]
            lines.append(f'Pool "{escape_bytes(pool_handle)}": {len(pes)} PE(s)')
            for identifier in sorted(pes):
                pe = pes[identifier]
                lines.append(
                    f"  PE 0x{identifier:08x}  policy {policy_text(pe)}"
                    f"  load {pe.policy.load / FRACTION_MAX:.0%}"
                    f"  home 0x{pe.home_registrar_id:08x}"
                    f"  {transport_text(pe.user_transport)}"
                    f"  lifetime {pe.registration_life} ms"
                )
        lines.append("Ownership checksums (from this table):")
        for home, (checksum, count) in self.checksums().items():
            lines.append(f"  registrar 0x{home:08x}: 0x{checksum:04x} ({count} PE(s))")
        return "\n".join(lines)

    def to_json(self) -> dict[str, JsonValue]:
        pools: list[JsonValue] = []
        for pool_handle in sorted(self.pools):
            pes: list[JsonValue] = []
            for identifier, pe in sorted(self.pools[pool_handle].items()):
                pes.append(
                    {
                        "identifier": identifier,
                        "policy": policy_text(pe),
                        "load": pe.policy.load / FRACTION_MAX,
                        "weight": pe.policy.weight,
                        "home": pe.home_registrar_id,
                        "transport": transport_text(pe.user_transport),
                        "asap_transport": transport_text(pe.asap_transport),
                        "lifetime_ms": pe.registration_life,
                    }
                )
            pools.append({"pool_handle": escape_bytes(pool_handle), "pool_elements": pes})
        checksums: list[JsonValue] = [
            {"registrar": home, "checksum": checksum, "pe_count": count}
            for home, (checksum, count) in self.checksums().items()
        ]
        return {
            "registrar": self.server_id,
            "address": self.address,
            "reported_checksum": self.reported_checksum,
            "pools": pools,
            "checksums": checksums,
        }
