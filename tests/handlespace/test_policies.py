"""Selection semantics per policy (docs/protocol-notes.md#selection, #policy-rules)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rsplib.handlespace import Handlespace, PoolElementEntry
from rsplib.wire.constants import FRACTION_MAX, PolicyType

from .helpers import HOME, POOL, pe

P = PolicyType
QUARTER = 0x40000000


def space(*pes_: tuple[int, int, dict[str, int]], seed: int = 1, **kw: int) -> Handlespace:
    hs = Handlespace(rng=random.Random(seed), **kw)
    for identifier, policy_type, fields in pes_:
        hs.register(POOL, pe(identifier, policy_type, **fields), home_registrar_id=HOME, now=0)
    return hs


def ids(entries: list[PoolElementEntry]) -> list[int]:
    return [e.identifier for e in entries]


def pick(hs: Handlespace, items: int = 1) -> list[int]:
    return ids(hs.resolve(POOL, items, 1.0))


# --- round robin ---------------------------------------------------------------


def test_round_robin_visits_every_pe_in_n_resolutions() -> None:
    hs = space(*[(i, P.ROUND_ROBIN, {}) for i in range(1, 8)])
    for _ in range(3):
        assert sorted(pick(hs) for _ in range(7)) == [[i] for i in range(1, 8)]


def test_round_robin_advances_only_max_increment_per_request() -> None:
    hs = space(*[(i, P.ROUND_ROBIN, {}) for i in range(1, 6)])
    assert pick(hs, 3) == [1, 2, 3]
    assert pick(hs, 3) == [2, 3, 4]  # only PE 1 was consumed
    hs2 = space(*[(i, P.ROUND_ROBIN, {}) for i in range(1, 6)], max_increment=3)
    assert pick(hs2, 3) == [1, 2, 3]
    assert pick(hs2, 3) == [4, 5, 1]


def test_reregistration_keeps_round_robin_position() -> None:
    hs = space(*[(i, P.ROUND_ROBIN, {}) for i in range(1, 4)])
    assert pick(hs) == [1]
    hs.register(POOL, pe(2, P.ROUND_ROBIN), home_registrar_id=HOME, now=2)
    assert pick(hs, 3) == [2, 3, 1]


# --- weighted round robin ---------------------------------------------------------


def test_weighted_round_robin_counts_follow_weights() -> None:
    weights = {1: 1, 2: 2, 3: 5}
    hs = space(*[(i, P.WEIGHTED_ROUND_ROBIN, {"weight": w}) for i, w in weights.items()])
    rounds = 50
    counts = Counter(pick(hs)[0] for _ in range(rounds * sum(weights.values())))
    assert counts == {i: rounds * w for i, w in weights.items()}
    hs.check_invariants()


def test_weighted_round_robin_newcomer_joins_current_round() -> None:
    hs = space(
        (1, P.WEIGHTED_ROUND_ROBIN, {"weight": 2}), (2, P.WEIGHTED_ROUND_ROBIN, {"weight": 2})
    )
    for _ in range(8):
        pick(hs)
    hs.register(POOL, pe(3, P.WEIGHTED_ROUND_ROBIN, weight=2), home_registrar_id=HOME, now=1)
    counts = Counter(pick(hs)[0] for _ in range(12))
    assert counts == {1: 4, 2: 4, 3: 4}


# --- priority -----------------------------------------------------------------------


def test_priority_prefers_highest_and_rotates_equals() -> None:
    hs = space(
        (1, P.PRIORITY, {"priority": 3}),
        (2, P.PRIORITY, {"priority": 9}),
        (3, P.PRIORITY, {"priority": 9}),
        (4, P.PRIORITY, {"priority": 1}),
    )
    assert [pick(hs)[0] for _ in range(6)] == [2, 3, 2, 3, 2, 3]
    hs.deregister(POOL, 2)
    hs.deregister(POOL, 3)
    assert [pick(hs)[0] for _ in range(2)] == [1, 1]


# --- least used family ---------------------------------------------------------------


def test_least_used_picks_least_loaded() -> None:
    hs = space(
        (1, P.LEAST_USED, {"load": 300}),
        (2, P.LEAST_USED, {"load": 100}),
        (3, P.LEAST_USED, {"load": 200}),
    )
    assert pick(hs, 3) == [2, 3, 1]
    hs.register(POOL, pe(2, P.LEAST_USED, load=900), home_registrar_id=HOME, now=1)
    assert pick(hs, 3) == [3, 1, 2]


def test_least_used_ties_break_by_least_recently_selected() -> None:
    # Registered 5, 4, 3: ties go to the earliest registered first, then rotate
    # by selection, never by PE id.
    hs = space(*[(i, P.LEAST_USED, {"load": 7}) for i in (5, 4, 3)])
    assert [pick(hs)[0] for _ in range(6)] == [5, 4, 3, 5, 4, 3]


def test_least_used_with_degradation_degrades_per_selection_and_resets() -> None:
    lud = {"load": 0, "load_degradation": QUARTER}
    hs = space((1, P.LEAST_USED_DEGRADATION, lud), (2, P.LEAST_USED_DEGRADATION, lud))
    one = hs.get(POOL, 1)
    assert one is not None and one.degradation == 0  # RFC semantics: no bump on insert
    assert pick(hs) == [1]
    assert one.degradation == QUARTER
    assert pick(hs) == [2]
    assert pick(hs) == [1]
    assert one.degradation == 2 * QUARTER
    # Re-registration resets the degradation, so PE 1 is preferred again.
    hs.register(POOL, pe(1, P.LEAST_USED_DEGRADATION, **lud), home_registrar_id=HOME, now=2)
    assert one.degradation == 0
    assert pick(hs) == [1]
    hs.check_invariants()


def test_degradation_saturates() -> None:
    lud = {"load": FRACTION_MAX - 5, "load_degradation": FRACTION_MAX}
    hs = space((1, P.LEAST_USED_DEGRADATION, lud))
    for _ in range(3):
        pick(hs)
    entry = hs.get(POOL, 1)
    assert entry is not None and entry.degradation == FRACTION_MAX
    hs.check_invariants()


def test_priority_least_used_adds_static_degradation() -> None:
    hs = space(
        (1, P.PRIORITY_LEAST_USED, {"load": 100, "load_degradation": 1000}),
        (2, P.PRIORITY_LEAST_USED, {"load": 500, "load_degradation": 0}),
    )
    assert [pick(hs)[0] for _ in range(3)] == [2, 2, 2]  # no counter: stays best


def test_priority_least_used_degradation_grows() -> None:
    fields = {"load": 0, "load_degradation": 10}
    hs = space(
        (1, P.PRIORITY_LEAST_USED_DEGRADATION, fields),
        (2, P.PRIORITY_LEAST_USED_DEGRADATION, {"load": 15, "load_degradation": 0}),
    )
    # keys: PE1 10 + 10/selection, PE2 15 -> 1, 2, 2 ... until PE1 catches up
    assert [pick(hs)[0] for _ in range(3)] == [1, 2, 2]


def test_dpf_prefers_near_pes_by_the_factor() -> None:
    dpf = FRACTION_MAX // 100  # 1 % of load per ms of distance
    hs = Handlespace()
    near = pe(1, P.LEAST_USED_DPF, load=QUARTER, load_dpf=dpf)
    far = pe(2, P.LEAST_USED_DPF, load=0, load_dpf=dpf)
    hs.register(POOL, near, home_registrar_id=HOME, now=0, distance=0)
    hs.register(POOL, far, home_registrar_id=HOME, now=0, distance=50)
    # far: 0 + 50 % > near: 25 %
    assert pick(hs, 2) == [1, 2]
    hs.register(POOL, far, home_registrar_id=HOME, now=1, distance=20)
    # far: 20 % < near: 25 %
    assert pick(hs, 2) == [2, 1]
    entry = hs.get(POOL, 2)
    assert entry is not None and entry.to_param(False).policy.distance == 20


def test_lud_dpf_combines_distance_and_degradation() -> None:
    fields = {"load": 0, "load_degradation": QUARTER, "load_dpf": FRACTION_MAX // 100}
    hs = Handlespace()
    hs.register(POOL, pe(1, P.LEAST_USED_DEGRADATION_DPF, **fields), home_registrar_id=HOME, now=0)
    hs.register(
        POOL,
        pe(2, P.LEAST_USED_DEGRADATION_DPF, **fields),
        home_registrar_id=HOME,
        now=0,
        distance=30,
    )
    # PE1 key 0, then 25 %, 50 %; PE2 key 30 %.
    assert [pick(hs)[0] for _ in range(3)] == [1, 1, 2]


# --- random engine -------------------------------------------------------------------

# 99.9 % quantiles of chi-square with 4 and 5 degrees of freedom.
CHI2_999 = {4: 18.467, 5: 20.515}
DRAWS = 100_000


def chi_square(counts: Counter[int], expected: dict[int, float]) -> float:
    return sum((counts[k] - e) ** 2 / e for k, e in expected.items())


def test_random_is_uniform() -> None:
    hs = space(*[(i, P.RANDOM, {}) for i in range(1, 7)], seed=7)
    counts = Counter(pick(hs)[0] for _ in range(DRAWS))
    stat = chi_square(counts, {i: DRAWS / 6 for i in range(1, 7)})
    assert stat < CHI2_999[5], stat


def test_weighted_random_follows_weights_and_skips_zero() -> None:
    weights = {1: 1, 2: 2, 3: 3, 4: 4, 5: 10, 6: 0}
    hs = space(*[(i, P.WEIGHTED_RANDOM, {"weight": w}) for i, w in weights.items()], seed=11)
    counts = Counter(pick(hs)[0] for _ in range(DRAWS))
    assert counts[6] == 0
    total = sum(weights.values())
    expected = {i: DRAWS * w / total for i, w in weights.items() if w}
    assert chi_square(counts, expected) < CHI2_999[4]


def test_weighted_random_first_pick_of_three_follows_weights() -> None:
    # The first PE of a k = 3 answer is drawn proportionally to weight too.
    weights = {1: 1, 2: 2, 3: 3, 4: 4, 5: 10}
    hs = space(*[(i, P.WEIGHTED_RANDOM, {"weight": w}) for i, w in weights.items()], seed=13)
    counts = Counter(pick(hs, 3)[0] for _ in range(DRAWS // 2))
    total = sum(weights.values())
    expected = {i: DRAWS / 2 * w / total for i, w in weights.items()}
    assert chi_square(counts, expected) < CHI2_999[4]


def test_all_zero_weights_return_nothing_without_error() -> None:
    hs = space(*[(i, P.WEIGHTED_RANDOM, {"weight": 0}) for i in range(1, 4)])
    assert pick(hs, 3) == []


def test_weighted_random_dpf_discounts_far_pes() -> None:
    half = 0x80000000
    hs = Handlespace(rng=random.Random(5))
    hs.register(
        POOL,
        pe(1, P.WEIGHTED_RANDOM_DPF, weight=1000, weight_dpf=half // 50),
        home_registrar_id=HOME,
        now=0,
    )
    hs.register(
        POOL,
        pe(2, P.WEIGHTED_RANDOM_DPF, weight=1000, weight_dpf=half // 50),
        home_registrar_id=HOME,
        now=0,
        distance=50,
    )
    # PE2's value: 1000 - rint(1000 x 50 x (1/100)) = 500 -> about 2:1
    counts = Counter(pick(hs)[0] for _ in range(30_000))
    assert chi_square(counts, {1: 20_000, 2: 10_000}) < 10.83  # 99.9 %, 1 dof


def test_randomized_least_used_prefers_low_load() -> None:
    hs = space(
        (1, P.RANDOMIZED_LEAST_USED, {"load": 0}),
        (2, P.RANDOMIZED_LEAST_USED, {"load": 3 * QUARTER}),
        seed=3,
    )
    counts = Counter(pick(hs)[0] for _ in range(20_000))
    # values MAX and MAX/4: 4:1
    assert chi_square(counts, {1: 16_000, 2: 4_000}) < 10.83


@pytest.mark.parametrize(
    ("policy_type", "fields"),
    [
        (P.ROUND_ROBIN, {}),
        (P.WEIGHTED_ROUND_ROBIN, {"weight": 2}),
        (P.PRIORITY, {"priority": 1}),
        (P.LEAST_USED, {"load": 5}),
        (P.LEAST_USED_DEGRADATION, {"load_degradation": QUARTER}),
        (P.PRIORITY_LEAST_USED, {"load_degradation": 9}),
        (P.PRIORITY_LEAST_USED_DEGRADATION, {"load_degradation": 9}),
        (P.LEAST_USED_DPF, {"load_dpf": 3}),
        (P.LEAST_USED_DEGRADATION_DPF, {"load_dpf": 3, "load_degradation": 5}),
        (P.RANDOM, {}),
        (P.WEIGHTED_RANDOM, {"weight": 3}),
        (P.WEIGHTED_RANDOM_DPF, {"weight": 3, "weight_dpf": 9}),
        (P.RANDOMIZED_LEAST_USED, {"load": 9}),
        (P.RANDOMIZED_LEAST_USED_DEGRADATION, {"load": 9}),
        (P.RANDOMIZED_PRIORITY_LEAST_USED, {"load_degradation": 9}),
        (P.RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION, {"load_degradation": 9}),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 5, 200])
def test_resolution_never_returns_a_pe_twice(
    policy_type: int, fields: dict[str, int], size: int
) -> None:
    hs = space(*[(i, policy_type, fields) for i in range(1, size + 1)], seed=size)
    for items in (1, 2, 3, 7, 128, 0xFFFFFFFF):
        for _ in range(5):
            got = pick(hs, items)
            assert len(got) == len(set(got)) == min(items, size, 128)
    hs.check_invariants()
