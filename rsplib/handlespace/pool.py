"""A pool: its consistency settings, PE-id index and selection engine."""

from __future__ import annotations

import random

from rsplib.handlespace.checksum import handle_sum
from rsplib.handlespace.entry import PoolElementEntry
from rsplib.handlespace.errors import HandlespaceError
from rsplib.handlespace.policy import Engine, PolicyKind, policy_kind
from rsplib.handlespace.selection import RandomSelection, SortedSelection
from rsplib.wire.constants import ErrorCause, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, Transport


def transport_use_of(transport: Transport) -> int | None:
    """Transport Use of an SCTP/TCP transport; None for the others."""
    use: int | None = getattr(transport, "transport_use", None)
    return use


def kind_for(policy: PolicyParam) -> PolicyKind:
    kind = policy_kind(policy.policy_type)
    if kind is None:
        raise HandlespaceError(
            ErrorCause.INVALID_POLICY, f"unsupported policy type 0x{policy.policy_type:08x}"
        )
    return kind


class Pool:
    """PEs sharing one pool handle.

    The first PE fixes the policy type, the transport protocol and the
    transport use; later PEs must match (rsplib's pool consistency rule).
    """

    __slots__ = (
        "by_id",
        "engine",
        "handle",
        "handle_sum",
        "is_wrr",
        "kind",
        "max_increment",
        "on_consume",
        "policy_type",
        "transport_class",
        "transport_use",
    )

    def __init__(
        self,
        handle: bytes,
        first: PoolElementParam,
        *,
        max_increment: int,
        rng: random.Random,
    ) -> None:
        kind = kind_for(first.policy)
        self.handle = handle
        self.handle_sum = handle_sum(handle)
        self.kind = kind
        self.policy_type = first.policy.policy_type
        self.is_wrr = self.policy_type == PolicyType.WEIGHTED_ROUND_ROBIN
        self.transport_class = type(first.user_transport)
        self.transport_use = transport_use_of(first.user_transport)
        self.by_id: dict[int, PoolElementEntry] = {}
        self.on_consume = kind.on_consume
        self.max_increment = max_increment or kind.default_max_increment
        self.engine: SortedSelection | RandomSelection
        if kind.engine is Engine.SORTED:
            assert kind.sort_key is not None
            self.engine = SortedSelection(kind.sort_key)
        else:
            assert kind.value is not None
            self.engine = RandomSelection(kind.value, rng)

    def __len__(self) -> int:
        return len(self.by_id)

    def check_consistent(self, pe: PoolElementParam) -> None:
        """Raise the cause rsplib sends when a PE does not fit this pool."""
        if pe.policy.policy_type != self.policy_type:
            raise HandlespaceError(
                ErrorCause.INCONSISTENT_POOLING_POLICY,
                f"pool policy is 0x{self.policy_type:08x}, "
                f"PE asks for 0x{pe.policy.policy_type:08x}",
            )
        if type(pe.user_transport) is not self.transport_class:
            raise HandlespaceError(
                ErrorCause.INCONSISTENT_TRANSPORT_TYPE,
                f"pool uses {self.transport_class.__name__}, "
                f"PE offers {type(pe.user_transport).__name__}",
            )
        if transport_use_of(pe.user_transport) != self.transport_use:
            raise HandlespaceError(
                ErrorCause.INCONSISTENT_DATA_CONTROL_CONFIGURATION,
                f"pool transport use is {self.transport_use}, "
                f"PE asks for {transport_use_of(pe.user_transport)}",
            )

    def insert(self, entry: PoolElementEntry) -> None:
        if self.is_wrr:
            # A new WRR PE joins the round the head is in, with a full budget.
            engine = self.engine
            assert isinstance(engine, SortedSelection)
            head = engine.head()
            entry.wrr_round = head.wrr_round if head is not None else 0
            entry.wrr_virtual = entry.policy.weight
        self.by_id[entry.identifier] = entry
        self.engine.add(entry)

    def remove(self, entry: PoolElementEntry) -> None:
        del self.by_id[entry.identifier]
        self.engine.remove(entry)

    def update_policy(self, entry: PoolElementEntry, policy: PolicyParam, distance: int) -> None:
        """Apply a re-registration's policy and distance (docs/protocol-notes.md#policy-rules).

        Degradation goes back to 0; the sequence number is kept, so an
        update does not move a round-robin PE. A changed WRR weight restarts
        the PE's budget in its current round.
        """
        changed = policy != entry.policy or distance != entry.distance
        if not changed and not entry.degradation:
            return
        entry.policy = policy
        entry.distance = distance
        entry.degradation = 0
        if changed and self.is_wrr:
            entry.wrr_virtual = policy.weight
        self.engine.rekey(entry)

    def select(self, n: int, now: float) -> list[PoolElementEntry]:
        engine = self.engine
        if isinstance(engine, SortedSelection):
            return engine.select(n, self.max_increment, self.on_consume, now)
        return engine.select(n, now)

    def ordered(self) -> list[PoolElementEntry]:
        """PEs in selection order (sorted engine) or slot order (random)."""
        return self.engine.ordered()
