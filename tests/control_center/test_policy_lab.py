"""Policy lab core: policy texts, scenario option changes, selection counts from the trace."""

from __future__ import annotations

import pytest

from control_center.policy_lab import (
    SelectionCounter,
    policy_text,
    pool_elements,
    with_component_option,
)
from control_center.scenario_file import load_scenario
from control_center.trace_store import Exchange
from rsplib.trace.record import MessageRecord
from rsplib.wire.csp import ComponentGroup, component_id

from .test_storyboard_e2e import SCENARIOS


def test_policy_texts() -> None:
    assert policy_text("round robin") == "RoundRobin"
    assert policy_text("weighted random", 8) == "WeightedRandom:8"
    assert policy_text("priority", 3.0) == "Priority:3"
    assert policy_text("least used with degradation", 0.25) == "LeastUsedDegradation:0.25"
    with pytest.raises(ValueError):
        policy_text("weighted random")
    with pytest.raises(ValueError):
        policy_text("least used with degradation", 7)  # not a fraction
    with pytest.raises(ValueError):
        policy_text("fastest")


def test_option_change_touches_one_component() -> None:
    scenario = load_scenario(SCENARIOS / "local.toml")
    changed = with_component_option(scenario, "PE-2", "policy", "Priority:5")
    assert changed.component("PE-2").options["policy"] == "Priority:5"
    assert changed.component("PE-1").options == scenario.component("PE-1").options
    assert pool_elements(changed) == ["PE-1", "PE-2", "PE-3"]


def _record(kind: str, component: int, **fields: object) -> MessageRecord:
    return MessageRecord(
        time=1.0, component=component, seq=0, direction="tx", peer="b:1", local="a:1",
        proto="asap", type=kind, fields=fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_counter_reads_responses_and_sessions() -> None:
    registrar = component_id(ComponentGroup.REGISTRAR, 0x10001)
    pe2 = component_id(ComponentGroup.POOL_ELEMENT, 0x102)
    counter = SelectionCounter()
    exchanges = [
        Exchange(
            0,
            sent=_record(
                "HANDLE_RESOLUTION_RESPONSE", registrar, pes=(0x102, 0x101), weights=(8, 1)
            ),
        ),
        Exchange(1, sent=_record("HANDLE_RESOLUTION_RESPONSE", registrar, pes=())),
        Exchange(2, sent=_record("FGP_PARAMETER", 1)),
        Exchange(3, received=_record("HANDLE_RESOLUTION_RESPONSE", 1, pes=(0x101,))),
    ]
    assert counter.feed(exchanges, lambda e: (1, pe2))
    assert counter.picks == {0x102: 1}
    assert counter.listed == {0x102: 1, 0x101: 1}
    assert counter.sessions == {0x102: 1}
    assert counter.last is not None and counter.last.weights == (8, 1)
    counter.reset()
    assert not counter.picks and counter.last is None
