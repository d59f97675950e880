"""Registrar configuration: one dataclass whose defaults are those of rsplib's registrar.

Times are seconds (floats) here; the command line takes milliseconds and converts.
The service fills in the addresses it actually bound (``asap_endpoints``,
``enrp_endpoint``) before it builds the core, because ports may be ephemeral.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# PeerAddress used to live here; re-exported so older imports keep working.
from rsplib.addressing import PeerAddress as PeerAddress


class AddressScope(Enum):
    """Minimum scope a PE's user address must have (rsplib ``-minaddressscope``).

    Ordered: an address is accepted when its scope is at least the configured one.
    """

    LOOPBACK = "loopback"
    SITE_LOCAL = "site-local"
    GLOBAL = "global"

    @property
    def rank(self) -> int:
        return _SCOPE_RANK[self]

    @classmethod
    def parse(cls, text: str) -> AddressScope:
        """Accepts ``loopback``, ``site-local`` (also rsplib's ``sitelocal``), ``global``."""
        normalised = text.strip().lower().replace("_", "-")
        if normalised == "sitelocal":
            normalised = "site-local"
        for scope in cls:
            if scope.value == normalised:
                return scope
        raise ValueError(f"address scope must be loopback, site-local or global, not {text!r}")


_SCOPE_RANK = {AddressScope.LOOPBACK: 0, AddressScope.SITE_LOCAL: 1, AddressScope.GLOBAL: 2}

#: Transport names used by the service and the core.
TRANSPORT_TCP_MAPPING = "tcp-mapping"
TRANSPORT_SCTP = "sctp"


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    """Every knob of the registrar core. Defaults equal rsplib 3.5's registrar."""

    # --- ASAP side -------------------------------------------------------------------------
    #: Period of multicast Server Announces (jittered +-12.5 %).
    server_announce_cycle: float = 1.0
    #: Time from registration / last Keep-Alive Ack to the next Endpoint Keep-Alive.
    endpoint_keepalive_interval: float = 5.0
    #: No Keep-Alive Ack within this time -> the PE is removed.
    endpoint_keepalive_timeout: float = 5.0
    #: Endpoint Unreachable reports (from any PU, cumulative) that remove a PE.
    max_bad_pe_reports: int = 3
    #: Handle Resolution answer size without (or with a zero) 0x803F option.
    max_hr_items: int = 3
    #: PEs "consumed" per resolution (0 = the policy's own: 1 for the sorted ones).
    max_increment: int = 0
    #: Minimum scope of a PE's user transport addresses.
    min_address_scope: AddressScope = AddressScope.SITE_LOCAL
    #: Handle resolutions per second per (connection, pool); None = unlimited (rsplib -1).
    max_hr_rate: float | None = None
    #: Endpoint Unreachable reports per second per (connection, pool, PE); None = unlimited.
    max_eu_rate: float | None = None
    #: Longest pool handle accepted in a Registration (rsplib: 32 bytes).
    max_pool_handle_length: int = 32
    #: PEs one ASAP connection may register (rsplib: unlimited; we bound it).
    max_pes_per_connection: int = 4096
    #: Open ASAP connections accepted (beyond this the core closes new ones).
    max_asap_connections: int = 10_000
    #: Open ENRP connections accepted.
    max_enrp_connections: int = 256
    #: PEs in the handlespace at most (registrations and peers' PEs beyond are refused).
    max_pool_elements: int = 100_000

    # --- ENRP side -------------------------------------------------------------------------
    #: Presence period to peers and multicast (rsplib 2 444 444 us), jittered +-12.5 %.
    peer_heartbeat_cycle: float = 2.444444
    #: No Presence from a peer for this long -> probe it with Presence(R).
    peer_max_time_last_heard: float = 5.0
    #: No answer to the probe within this -> takeover (if it owns PEs) or drop.
    peer_max_time_no_response: float = 5.0
    #: End of the start-up phase when no mentor sync completed earlier.
    mentor_discovery_timeout: float = 5.0
    #: Time to collect Init Takeover Acks before a takeover is abandoned.
    takeover_expiry: float = 5.0
    #: PEs per Handle Table Response (rsplib MaxElementsPerHTRequest).
    max_elements_per_ht_request: int = 128
    #: Byte budget of one Handle Table Response (rsplib's buffer size).
    max_ht_response_bytes: int = 1400
    #: Set the T flag in Handle Updates (draft-dreibholz-rserpool-enrp-takeover).
    takeover_suggestion: bool = False
    #: Statically configured peers (``--peer``), connected to at start.
    static_peers: tuple[PeerAddress, ...] = ()
    #: If set, only ENRP peers whose address host is in this set are accepted.
    peer_allow_list: frozenset[str] | None = None
    #: ENRP peers known at most (beyond, new ones are ignored: a Presence flood is bounded).
    max_enrp_peers: int = 64
    #: PEs of one other home registrar stored at most (see docs/trust-model.md).
    max_pes_per_peer: int = 10_000
    #: PE changes (Handle Update PEs and Handle Table Response PEs) per second and peer,
    #: and how many of them may come at once; the excess is dropped (the audit repairs).
    max_peer_pe_rate: float = 5_000.0
    max_peer_pe_burst: float = 20_000.0
    #: First and longest delay between reconnection attempts to a lost static peer.
    peer_reconnect_min: float = 1.0
    peer_reconnect_max: float = 30.0

    # --- own endpoints (filled in by the service after binding) -----------------------------
    #: ASAP endpoints put into Server Announces (wildcard hosts are left out; receivers then
    #: use the datagram's source address and port, as for rsplib's announces).
    asap_endpoints: tuple[PeerAddress, ...] = ()
    #: ENRP endpoint put into Presence's Server Information.
    enrp_endpoint: PeerAddress = field(default_factory=lambda: PeerAddress("0.0.0.0", 9901))
    #: "tcp-mapping" or "sctp": which transport parameter kind our endpoints advertise.
    transport: str = TRANSPORT_TCP_MAPPING
    #: Send ASAP Server Announces / ENRP Presences by multicast (the service sends them).
    asap_announce: bool = True
    enrp_announce: bool = True

    def __post_init__(self) -> None:
        positive = (
            "server_announce_cycle",
            "endpoint_keepalive_interval",
            "endpoint_keepalive_timeout",
            "peer_heartbeat_cycle",
            "peer_max_time_last_heard",
            "peer_max_time_no_response",
            "mentor_discovery_timeout",
            "takeover_expiry",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        at_least_one = (
            "max_bad_pe_reports",
            "max_hr_items",
            "max_elements_per_ht_request",
            "max_pool_handle_length",
            "max_pes_per_connection",
            "max_asap_connections",
            "max_enrp_connections",
            "max_pool_elements",
            "max_enrp_peers",
            "max_pes_per_peer",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_increment < 0:
            raise ValueError("max_increment must not be negative")
        if self.max_ht_response_bytes < 256:
            raise ValueError("max_ht_response_bytes must be at least 256")
        if not self.max_peer_pe_rate > 0 or self.max_peer_pe_burst < 1:
            raise ValueError("max_peer_pe_rate must be positive and max_peer_pe_burst >= 1")
        for name in ("max_hr_rate", "max_eu_rate"):
            rate = getattr(self, name)
            if rate is not None and rate <= 0:
                raise ValueError(f"{name} must be positive or None (unlimited)")
        if self.transport not in (TRANSPORT_TCP_MAPPING, TRANSPORT_SCTP):
            raise ValueError(f"transport must be tcp-mapping or sctp, not {self.transport!r}")
