"""Parse rsplib-style policy strings (``--policy LeastUsedDegradation:0.25``).

Names are matched case-insensitively; arguments follow colons. Fractions are
decimal numbers in 0..1 scaled to 32 bits (0xFFFFFFFF = 1.0); weights and
priorities are integers in 0..0xFFFFFFFF (a WRR weight must be >= 1).

The two rsplib policies without a wire encoding (PriorityLeastUsedDPF and
PriorityLeastUsedDegradationDPF, 0xB0002004/5) are refused: a PE could not
register them with any registrar, rsplib's included.
"""

from __future__ import annotations

from rsplib.wire.constants import FRACTION_MAX, PolicyType
from rsplib.wire.params import PolicyParam

_P = PolicyType

# name -> (policy type, argument kinds in order, optional trailing arguments)
# Argument kinds: "weight" (>= 1), "weight0" (>= 0), "priority" (>= 0) and
# the fraction fields of PolicyParam.
_FORMS: dict[str, tuple[PolicyType, tuple[str, ...], int]] = {
    "roundrobin": (_P.ROUND_ROBIN, (), 0),
    "random": (_P.RANDOM, (), 0),
    "leastused": (_P.LEAST_USED, (), 0),
    "randomizedleastused": (_P.RANDOMIZED_LEAST_USED, (), 0),
    "leastuseddegradation": (_P.LEAST_USED_DEGRADATION, ("load_degradation",), 0),
    "priorityleastused": (_P.PRIORITY_LEAST_USED, ("load_degradation",), 0),
    "priorityleastuseddegradation": (_P.PRIORITY_LEAST_USED_DEGRADATION, ("load_degradation",), 0),
    "randomizedpriorityleastused": (_P.RANDOMIZED_PRIORITY_LEAST_USED, ("load_degradation",), 1),
    "randomizedleastuseddegradation": (
        _P.RANDOMIZED_LEAST_USED_DEGRADATION,
        ("load_degradation",),
        1,
    ),
    "randomizedpriorityleastuseddegradation": (
        _P.RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION,
        ("load_degradation",),
        1,
    ),
    "leastuseddpf": (_P.LEAST_USED_DPF, ("load_dpf",), 0),
    "leastuseddegradationdpf": (_P.LEAST_USED_DEGRADATION_DPF, ("load_degradation", "load_dpf"), 0),
    "weightedroundrobin": (_P.WEIGHTED_ROUND_ROBIN, ("weight",), 0),
    "priority": (_P.PRIORITY, ("priority",), 0),
    "weightedrandom": (_P.WEIGHTED_RANDOM, ("weight0",), 0),
    "weightedrandomdpf": (_P.WEIGHTED_RANDOM_DPF, ("weight0", "weight_dpf"), 0),
}

_ARG_SYNTAX = {
    "weight": "<weight 1..4294967295>",
    "weight0": "<weight 0..4294967295>",
    "priority": "<priority 0..4294967295>",
    "load_degradation": "<degradation 0..1>",
    "load_dpf": "<dpf 0..1>",
    "weight_dpf": "<dpf 0..1>",
}

_CANONICAL = {
    "roundrobin": "RoundRobin",
    "random": "Random",
    "leastused": "LeastUsed",
    "randomizedleastused": "RandomizedLeastUsed",
    "leastuseddegradation": "LeastUsedDegradation",
    "priorityleastused": "PriorityLeastUsed",
    "priorityleastuseddegradation": "PriorityLeastUsedDegradation",
    "randomizedpriorityleastused": "RandomizedPriorityLeastUsed",
    "randomizedleastuseddegradation": "RandomizedLeastUsedDegradation",
    "randomizedpriorityleastuseddegradation": "RandomizedPriorityLeastUsedDegradation",
    "leastuseddpf": "LeastUsedDPF",
    "leastuseddegradationdpf": "LeastUsedDegradationDPF",
    "weightedroundrobin": "WeightedRoundRobin",
    "priority": "Priority",
    "weightedrandom": "WeightedRandom",
    "weightedrandomdpf": "WeightedRandomDPF",
}

_NO_WIRE_ENCODING = {
    "priorityleastuseddpf": "PriorityLeastUsedDPF",
    "priorityleastuseddegradationdpf": "PriorityLeastUsedDegradationDPF",
}


def policy_forms() -> list[str]:
    """Every accepted form, e.g. ``LeastUsedDegradation:<degradation 0..1>``."""
    out = []
    for key, (_, args, optional) in _FORMS.items():
        parts = [_CANONICAL[key]]
        for i, arg in enumerate(args):
            syntax = _ARG_SYNTAX[arg]
            parts.append(f"[{syntax}]" if i >= len(args) - optional else syntax)
        out.append(":".join(parts))
    return out


def _form(key: str) -> str:
    return next(f for f in policy_forms() if f.split(":")[0].lower() == key)


def _fraction(text: str, what: str, form: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number; expected {form}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} {text!r} is outside 0..1; expected {form}")
    return round(value * FRACTION_MAX)


def _integer(text: str, what: str, minimum: int, form: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an integer; expected {form}") from None
    if not minimum <= value <= FRACTION_MAX:
        raise ValueError(f"{what} {text!r} is outside {minimum}..{FRACTION_MAX}; expected {form}")
    return value


def parse_policy(text: str) -> PolicyParam:
    """Parse an rsplib policy string into a Policy parameter.

    Raises ValueError naming the expected form for anything else.
    """
    name, *args = text.strip().split(":")
    key = name.strip().lower()
    if key in _NO_WIRE_ENCODING:
        raise ValueError(
            f"{_NO_WIRE_ENCODING[key]} has no wire encoding (rsplib keeps it in memory only) "
            "and cannot be registered; use LeastUsedDPF or LeastUsedDegradationDPF"
        )
    spec = _FORMS.get(key)
    if spec is None:
        raise ValueError(
            f"unknown policy {name.strip()!r}; expected one of: " + ", ".join(policy_forms())
        )
    policy_type, kinds, optional = spec
    form = _form(key)
    if not len(kinds) - optional <= len(args) <= len(kinds):
        raise ValueError(f"policy {text.strip()!r} has {len(args)} argument(s); expected {form}")
    fields: dict[str, int] = {}
    for kind, arg in zip(kinds, args, strict=False):
        arg = arg.strip()
        if kind == "weight":
            fields["weight"] = _integer(arg, "weight", 1, form)
        elif kind == "weight0":
            fields["weight"] = _integer(arg, "weight", 0, form)
        elif kind == "priority":
            fields["priority"] = _integer(arg, "priority", 0, form)
        else:
            fields[kind] = _fraction(arg, kind.replace("_", " "), form)
    return PolicyParam(policy_type, **fields)


def format_policy(policy: PolicyParam) -> str:
    """The rsplib-style string of a policy (inverse of :func:`parse_policy`)."""
    for key, (policy_type, kinds, _) in _FORMS.items():
        if policy_type != policy.policy_type:
            continue
        parts = [_CANONICAL[key]]
        for kind in kinds:
            field = "weight" if kind == "weight0" else kind
            value = getattr(policy, field)
            if kind in ("weight", "weight0", "priority"):
                parts.append(str(value))
            else:
                parts.append(f"{value / FRACTION_MAX:.6g}")
        return ":".join(parts)
    raise ValueError(f"no policy string for policy type 0x{policy.policy_type:08x}")
