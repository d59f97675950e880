"""One pool element as the handlespace stores it.

A plain ``__slots__`` class rather than a dataclass: entries are mutated on
every selection and re-registration, and attribute access on the hot paths
must stay cheap. Entries compare by identity.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from enum import IntEnum

from rsplib.wire.constants import PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, Transport

#: A pool element's key everywhere: (pool handle, PE identifier).
PeKey = tuple[bytes, int]

#: Policy types whose ``distance`` field is filled in by the registrar.
DPF_POLICY_TYPES = frozenset(
    {
        PolicyType.WEIGHTED_RANDOM_DPF,
        PolicyType.LEAST_USED_DPF,
        PolicyType.LEAST_USED_DEGRADATION_DPF,
    }
)


class TimerKind(IntEnum):
    """What a pool element's single timer is waiting for."""

    KEEPALIVE_TRANSMISSION = 1  # send the next Endpoint Keep-Alive
    KEEPALIVE_TIMEOUT = 2  # no Keep-Alive Ack arrived in time
    EXPIRY = 3  # registration life of a PE learned from a peer ran out


#: Sort key stored in a pool's sorted index: (primary, secondary, sequence
#: number, entry). Sequence numbers are unique within a pool, so tuple
#: comparison never reaches the entry.
SortKey = tuple[int, int, int, "PoolElementEntry"]


class PoolElementEntry:
    """A registered pool element plus its selection and timer state."""

    __slots__ = (
        "asap_transport",
        "checksum_part",
        "connection",
        "degradation",
        "distance",
        "home_registrar_id",
        "identifier",
        "last_selected_at",
        "policy",
        "pool_handle",
        "registered_at",
        "registration_life",
        "selection_count",
        "seq",
        "slot",
        "sort_key",
        "timer_at",
        "timer_kind",
        "timer_seq",
        "updated_at",
        "user_transport",
        "wrr_round",
        "wrr_virtual",
    )

    def __init__(
        self,
        pool_handle: bytes,
        pe: PoolElementParam,
        home_registrar_id: int,
        now: float,
        connection: Hashable | None,
        asap_transport: Transport | None,
        distance: int,
        checksum_part: int,
    ) -> None:
        self.pool_handle = pool_handle
        self.identifier = pe.identifier
        self.home_registrar_id = home_registrar_id
        self.registration_life = pe.registration_life
        self.user_transport: Transport = pe.user_transport
        self.policy: PolicyParam = pe.policy
        self.asap_transport = asap_transport
        self.connection = connection
        self.distance = distance
        self.registered_at = now
        self.updated_at = now
        self.last_selected_at: float | None = None
        self.selection_count = 0
        # Policy state: per-pool sequence number (the tie-breaker of every
        # sorted policy), degradation of the LUD family, WRR counters.
        self.seq = 0
        self.degradation = 0
        self.wrr_round = 0
        self.wrr_virtual = 0
        # Index state owned by the pool's selection engine.
        self.sort_key: SortKey | None = None
        self.slot = -1
        # Partial RFC 1071 sum of this PE for the ownership checksum
        # (checksum.pe_partial_sum, computed by the caller from the pool).
        self.checksum_part = checksum_part
        # Timer state owned by the handlespace's timer schedule.
        self.timer_kind: TimerKind | None = None
        self.timer_at = 0.0
        self.timer_seq = 0

    @property
    def sequence_number(self) -> int:
        return self.seq

    def to_param(self, include_asap_transport: bool) -> PoolElementParam:
        """The Pool Element parameter describing this entry.

        ASAP messages carry it without the ASAP transport, ENRP messages with
        it. DPF policies carry the distance the registrar measured.
        """
        policy = self.policy
        if policy.policy_type in DPF_POLICY_TYPES and policy.distance != self.distance:
            policy = replace(policy, distance=self.distance)
        return PoolElementParam(
            identifier=self.identifier,
            home_registrar_id=self.home_registrar_id,
            registration_life=self.registration_life,
            user_transport=self.user_transport,
            policy=policy,
            asap_transport=self.asap_transport if include_asap_transport else None,
        )

    def __repr__(self) -> str:
        return (
            f"PoolElementEntry(pool={self.pool_handle!r}, id=0x{self.identifier:08x}, "
            f"home=0x{self.home_registrar_id:08x}, policy=0x{self.policy.policy_type:08x})"
        )
