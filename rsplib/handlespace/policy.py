"""Pool policies: which engine selects, the sort key or selection value, hooks.

Per-policy rules follow docs/protocol-notes.md#policy-rules (rsplib's semantics). One
deliberate difference (5.2 "Quirk"): rsplib applies a policy's update hook
when a PE is inserted and twice per consumed PE. Here the hook runs exactly
once per consumption, as RFC 5356 describes: a LUD-family PE's degradation
starts at 0 and grows by LoadDegradation per selection, and a WRR virtual
counter steps once per selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rsplib.handlespace.entry import PoolElementEntry, SortKey
from rsplib.wire.constants import FRACTION_MAX, PolicyType

MAX = FRACTION_MAX


class Engine(Enum):
    SORTED = "sorted"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class PolicyKind:
    """How one policy type selects.

    ``sort_key`` (sorted engine) builds the full key stored in the pool's
    sorted index; ``value`` (random engine) gives the PE's selection weight;
    ``on_consume`` updates the policy state of a consumed PE; ``degrades``
    says the sort key depends on the degradation counter.
    """

    policy_type: int
    name: str
    engine: Engine
    default_max_increment: int
    sort_key: Callable[[PoolElementEntry], SortKey] | None = None
    value: Callable[[PoolElementEntry], int] | None = None
    on_consume: Callable[[PoolElementEntry], None] | None = None
    degrades: bool = False


# --- sorted engine: keys --------------------------------------------------


def _key_rr(e: PoolElementEntry) -> SortKey:
    return (0, 0, e.seq, e)


def _key_wrr(e: PoolElementEntry) -> SortKey:
    return (e.wrr_round, e.wrr_virtual, e.seq, e)


def _key_priority(e: PoolElementEntry) -> SortKey:
    # Higher priority wins (rsplib sorts descending), equals rotate by seq.
    return (-e.policy.priority, 0, e.seq, e)


def _key_lu(e: PoolElementEntry) -> SortKey:
    return (e.policy.load, 0, e.seq, e)


def _key_lud(e: PoolElementEntry) -> SortKey:
    return (min(MAX, e.policy.load + e.degradation), 0, e.seq, e)


def _key_plu(e: PoolElementEntry) -> SortKey:
    p = e.policy
    return (min(MAX, p.load + p.load_degradation), 0, e.seq, e)


def _key_plud(e: PoolElementEntry) -> SortKey:
    p = e.policy
    return (min(MAX, p.load + p.load_degradation + e.degradation), 0, e.seq, e)


# dpf x MAX = distance x (LoadDPF / MAX) x MAX = distance x LoadDPF: exact in
# integers, so rsplib's rint() is not needed.
def _key_lu_dpf(e: PoolElementEntry) -> SortKey:
    p = e.policy
    return (min(MAX, p.load + e.distance * p.load_dpf), 0, e.seq, e)


def _key_lud_dpf(e: PoolElementEntry) -> SortKey:
    p = e.policy
    return (min(MAX, p.load + e.degradation + e.distance * p.load_dpf), 0, e.seq, e)


# --- sorted engine: update hooks ------------------------------------------


def _consume_wrr(e: PoolElementEntry) -> None:
    if e.wrr_virtual > 1:
        e.wrr_virtual -= 1
    else:
        e.wrr_round += 1
        e.wrr_virtual = e.policy.weight


def _consume_degrade(e: PoolElementEntry) -> None:
    d = e.degradation + e.policy.load_degradation
    e.degradation = d if d < MAX else MAX


# --- random engine: selection values --------------------------------------


def _value_rand(e: PoolElementEntry) -> int:
    return 1


def _value_wrand(e: PoolElementEntry) -> int:
    return e.policy.weight


def _value_wrand_dpf(e: PoolElementEntry) -> int:
    weight = e.policy.weight
    value = weight - round(weight * e.distance * e.policy.weight_dpf / MAX)
    if value < 0:
        return 1  # rsplib: a negative result becomes 1 (exactly 0 stays 0)
    return value if value < MAX else MAX


def _clamp_value(value: int) -> int:
    if value < 1:
        return 1
    return value if value < MAX else MAX


def _value_rlu(e: PoolElementEntry) -> int:
    # Degradation never grows for RLUD (no hook), so this is RLU for both.
    return _clamp_value(MAX - e.policy.load - e.degradation)


def _value_rplu(e: PoolElementEntry) -> int:
    p = e.policy
    return _clamp_value(MAX - p.load - p.load_degradation - e.degradation)


_S = Engine.SORTED
_R = Engine.RANDOM

POLICY_KINDS: dict[int, PolicyKind] = {
    k.policy_type: k
    for k in (
        PolicyKind(PolicyType.ROUND_ROBIN, "RoundRobin", _S, 1, sort_key=_key_rr),
        PolicyKind(
            PolicyType.WEIGHTED_ROUND_ROBIN,
            "WeightedRoundRobin",
            _S,
            1,
            sort_key=_key_wrr,
            on_consume=_consume_wrr,
        ),
        PolicyKind(PolicyType.PRIORITY, "Priority", _S, 1, sort_key=_key_priority),
        PolicyKind(PolicyType.LEAST_USED, "LeastUsed", _S, 1, sort_key=_key_lu),
        PolicyKind(
            PolicyType.LEAST_USED_DEGRADATION,
            "LeastUsedDegradation",
            _S,
            1,
            sort_key=_key_lud,
            on_consume=_consume_degrade,
            degrades=True,
        ),
        PolicyKind(PolicyType.PRIORITY_LEAST_USED, "PriorityLeastUsed", _S, 1, sort_key=_key_plu),
        PolicyKind(
            PolicyType.PRIORITY_LEAST_USED_DEGRADATION,
            "PriorityLeastUsedDegradation",
            _S,
            1,
            sort_key=_key_plud,
            on_consume=_consume_degrade,
            degrades=True,
        ),
        PolicyKind(PolicyType.LEAST_USED_DPF, "LeastUsedDPF", _S, 1, sort_key=_key_lu_dpf),
        PolicyKind(
            PolicyType.LEAST_USED_DEGRADATION_DPF,
            "LeastUsedDegradationDPF",
            _S,
            1,
            sort_key=_key_lud_dpf,
            on_consume=_consume_degrade,
            degrades=True,
        ),
        PolicyKind(PolicyType.RANDOM, "Random", _R, 0, value=_value_rand),
        PolicyKind(PolicyType.WEIGHTED_RANDOM, "WeightedRandom", _R, 0, value=_value_wrand),
        PolicyKind(
            PolicyType.WEIGHTED_RANDOM_DPF, "WeightedRandomDPF", _R, 0, value=_value_wrand_dpf
        ),
        PolicyKind(
            PolicyType.RANDOMIZED_LEAST_USED, "RandomizedLeastUsed", _R, 1, value=_value_rlu
        ),
        PolicyKind(
            PolicyType.RANDOMIZED_LEAST_USED_DEGRADATION,
            "RandomizedLeastUsedDegradation",
            _R,
            1,
            value=_value_rlu,
        ),
        PolicyKind(
            PolicyType.RANDOMIZED_PRIORITY_LEAST_USED,
            "RandomizedPriorityLeastUsed",
            _R,
            1,
            value=_value_rplu,
        ),
        PolicyKind(
            PolicyType.RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
            "RandomizedPriorityLeastUsedDegradation",
            _R,
            1,
            value=_value_rplu,
        ),
    )
}


def policy_kind(policy_type: int) -> PolicyKind | None:
    """The selection rules of a policy type, or None if it is not supported."""
    return POLICY_KINDS.get(policy_type)
