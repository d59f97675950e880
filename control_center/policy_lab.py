"""The policy lab: change a pool's policy by restarting its PEs, and count the selections.

A pool policy lives in each pool element's registration (RFC 5356): to change it the PE
registers again with the new one, so the lab restarts the pool's PEs one after the other
with ``--policy`` (the pool stays served meanwhile). Weights, priorities and load
degradation are per PE, set the same way.

:class:`SelectionCounter` reads the live trace: every Handle Resolution Response a
registrar sends lists PEs in the order its policy chose them (first = picked), with their
policy values; every FGP parameter message a pool user sends opens a session on a PE.
Nothing is inferred: both counts are messages the components traced.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from control_center.scenario import ComponentKind, Scenario
from control_center.trace_store import Exchange
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.trace.record import MessageRecord

#: Policy families the lab offers: label -> (rsplib name, what the value means or None).
FAMILIES: Final[dict[str, tuple[str, str | None]]] = {
    "round robin": ("RoundRobin", None),
    "weighted round robin": ("WeightedRoundRobin", "weight"),
    "least used": ("LeastUsed", None),
    "least used with degradation": ("LeastUsedDegradation", "degradation (0..1)"),
    "random": ("Random", None),
    "weighted random": ("WeightedRandom", "weight"),
    "priority": ("Priority", "priority"),
}

PE_ID_MASK: Final = (1 << 56) - 1


def policy_text(family: str, value: float | None = None) -> str:
    """The ``--policy`` text of a family and its value; ValueError if rsplib refuses it."""
    if family not in FAMILIES:
        raise ValueError(f"unknown policy family {family!r}")
    name, meaning = FAMILIES[family]
    text = name
    if meaning is not None:
        if value is None:
            raise ValueError(f"{family} needs a {meaning}")
        text += f":{value:g}" if "0..1" in meaning else f":{int(value)}"
    parse_policy(text)  # the PE would refuse anything this refuses
    return text


def with_component_option(scenario: Scenario, name: str, key: str, value: str) -> Scenario:
    """``scenario`` with one option of component ``name`` set (for its next start)."""
    components = []
    for component in scenario.components:
        if component.name == name:
            options = dict(component.options)
            options[key] = value
            component = dataclasses.replace(component, options=options)
        components.append(component)
    return dataclasses.replace(scenario, components=tuple(components))


def pool_elements(scenario: Scenario) -> list[str]:
    pe_kinds = (ComponentKind.FRACTAL_PE, ComponentKind.ECHO_PE)
    return [c.name for c in scenario.components if c.kind in pe_kinds]


@dataclass(frozen=True, slots=True)
class Resolution:
    """One Handle Resolution Response: which PEs, in policy order, and their values."""

    time: float
    registrar: int
    pes: tuple[int, ...]
    loads: tuple[int, ...] = ()
    weights: tuple[int, ...] = ()
    priorities: tuple[int, ...] = ()


def _ints(value: object) -> tuple[int, ...]:
    if isinstance(value, tuple):
        return tuple(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return ()


@dataclass
class SelectionCounter:
    """Counts per PE identifier (see the module docstring)."""

    picks: Counter[int] = field(default_factory=Counter)
    listed: Counter[int] = field(default_factory=Counter)
    sessions: Counter[int] = field(default_factory=Counter)
    last: Resolution | None = None

    def reset(self) -> None:
        self.picks.clear()
        self.listed.clear()
        self.sessions.clear()
        self.last = None

    def feed(
        self,
        exchanges: Iterable[Exchange],
        ends: Callable[[Exchange], tuple[int | None, int | None]],
    ) -> bool:
        """Count what is new; True if anything counted."""
        changed = False
        for exchange in exchanges:
            record = exchange.sent
            if record is None:
                continue  # counted from the sender's record only
            if record.type == "HANDLE_RESOLUTION_RESPONSE":
                changed |= self._resolution(record)
            elif record.type == "FGP_PARAMETER":
                _source, target = ends(exchange)
                if target is not None:
                    self.sessions[target & PE_ID_MASK] += 1
                    changed = True
        return changed

    def _resolution(self, record: MessageRecord) -> bool:
        pes = _ints(record.fields.get("pes"))
        if not pes:
            return False
        self.picks[pes[0]] += 1
        self.listed.update(pes)
        self.last = Resolution(
            record.time,
            record.component,
            pes,
            _ints(record.fields.get("loads")),
            _ints(record.fields.get("weights")),
            _ints(record.fields.get("priorities")),
        )
        return True
