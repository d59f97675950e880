"""rsplib-style policy strings."""

from __future__ import annotations

import pytest

from rsplib.handlespace import format_policy, parse_policy, policy_forms
from rsplib.wire.constants import FRACTION_MAX, PolicyType
from rsplib.wire.params import PolicyParam

P = PolicyType


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RoundRobin", PolicyParam(P.ROUND_ROBIN)),
        ("random", PolicyParam(P.RANDOM)),
        ("LeastUsed", PolicyParam(P.LEAST_USED)),
        ("RandomizedLeastUsed", PolicyParam(P.RANDOMIZED_LEAST_USED)),
        (
            "LeastUsedDegradation:0.25",
            PolicyParam(P.LEAST_USED_DEGRADATION, load_degradation=0x40000000),
        ),
        ("PriorityLeastUsed:1", PolicyParam(P.PRIORITY_LEAST_USED, load_degradation=FRACTION_MAX)),
        (
            "PriorityLeastUsedDegradation:0",
            PolicyParam(P.PRIORITY_LEAST_USED_DEGRADATION),
        ),
        ("RandomizedPriorityLeastUsed", PolicyParam(P.RANDOMIZED_PRIORITY_LEAST_USED)),
        (
            "RandomizedPriorityLeastUsed:0.5",
            PolicyParam(P.RANDOMIZED_PRIORITY_LEAST_USED, load_degradation=0x80000000),
        ),
        ("LeastUsedDPF:0.5", PolicyParam(P.LEAST_USED_DPF, load_dpf=0x80000000)),
        (
            "LeastUsedDegradationDPF:0.25:0.5",
            PolicyParam(
                P.LEAST_USED_DEGRADATION_DPF, load_degradation=0x40000000, load_dpf=0x80000000
            ),
        ),
        ("WeightedRoundRobin:3", PolicyParam(P.WEIGHTED_ROUND_ROBIN, weight=3)),
        ("Priority:7", PolicyParam(P.PRIORITY, priority=7)),
        ("WeightedRandom:0", PolicyParam(P.WEIGHTED_RANDOM, weight=0)),
        (
            "WeightedRandomDPF:5:0.5",
            PolicyParam(P.WEIGHTED_RANDOM_DPF, weight=5, weight_dpf=0x80000000),
        ),
        ("  weightedroundrobin : 0x10 ", PolicyParam(P.WEIGHTED_ROUND_ROBIN, weight=16)),
    ],
)
def test_parses(text: str, expected: PolicyParam) -> None:
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Roundrobbin", "unknown policy"),
        ("", "unknown policy"),
        ("LeastUsedDegradation", "expected LeastUsedDegradation:<degradation 0..1>"),
        ("LeastUsedDegradation:1.5", "outside 0..1"),
        ("LeastUsedDegradation:abc", "not a number"),
        ("WeightedRoundRobin:0", "outside 1..4294967295"),
        ("WeightedRoundRobin:2.5", "not an integer"),
        ("Priority:4294967296", "outside 0..4294967295"),
        ("RoundRobin:3", "expected RoundRobin"),
        ("WeightedRandomDPF:5", "expected WeightedRandomDPF:<weight 0..4294967295>:<dpf 0..1>"),
        ("PriorityLeastUsedDegradationDPF:0.1:0.2", "no wire encoding"),
        ("PriorityLeastUsedDPF:0.1:0.2", "no wire encoding"),
    ],
)
def test_rejects_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.").replace("[", r"\[")):
        parse_policy(text)


def test_every_form_round_trips_through_format() -> None:
    for form in policy_forms():
        name = form.split(":")[0]
        args = ["3" if "weight" in a or "priority" in a else "0.5" for a in form.split(":")[1:]]
        text = ":".join([name, *[a for a in args]])
        policy = parse_policy(text)
        assert parse_policy(format_policy(policy)) == policy
