"""What the window shows, from synthetic monitor and launcher events (no processes)."""

from __future__ import annotations

import dataclasses

import pytest

from control_center.gui.view_model import InjectedFault, NodeState, ViewModel, format_duration
from control_center.launchers.base import (
    ExitStatus,
    HostChanged,
    ProcessExited,
    ProcessHung,
    ProcessResumed,
    ProcessStarted,
    SignalSent,
)
from control_center.monitor import (
    ComponentActive,
    ComponentChanged,
    ComponentDiscovered,
    ComponentState,
    Link,
)
from control_center.scenario import Scenario
from control_center.scenario_file import loads_scenario
from control_center.trace_events import PuFailover, TraceFormatError, failover_of
from rsplib.wire.constants import PPID
from rsplib.wire.csp import ComponentGroup, component_id

SCENARIO = """
[scenario]
name = "vm test"
[hosts.h1]
kind = "netns"
address = "10.9.0.1/24"
[hosts.h2]
kind = "netns"
address = "10.9.0.2/24"
[[components]]
name = "PR-1"
kind = "registrar"
identifier = 0x10001
[[components]]
name = "PR-2"
kind = "registrar"
identifier = 0x10002
asap_port = 3864
enrp_port = 9902
[[components]]
name = "PE-1"
kind = "fractal-pe"
host = "h1"
identifier = 0x101
options = { max_threads = 4 }
[[components]]
name = "PE-2"
kind = "fractal-pe"
host = "h2"
identifier = 0x102
[[components]]
name = "PU-1"
kind = "fractal-pu"
identifier = 0x1
"""

PR1 = component_id(ComponentGroup.REGISTRAR, 0x10001)
PR2 = component_id(ComponentGroup.REGISTRAR, 0x10002)
PE1 = component_id(ComponentGroup.POOL_ELEMENT, 0x101)
PE2 = component_id(ComponentGroup.POOL_ELEMENT, 0x102)
PU1 = component_id(ComponentGroup.POOL_USER, 0x1)


def scenario() -> Scenario:
    return loads_scenario(SCENARIO)


def link(source: int, receiver: int, ppid: int, duration: float | None = 3.0) -> Link:
    return Link(source, receiver, ppid, 6, duration)


def report(
    model: ViewModel, name: str, csp_id: int, links: tuple[Link, ...], now: float, **kw: object
) -> None:
    """One status report of ``name`` as the monitor announces it."""
    previous = model.states.get(name)
    state = ComponentState(
        csp_id=csp_id,
        name=name,
        discovered=False,
        timeout_multiplier=5.0,
        active=True,
        links=links,
        status=str(kw.get("status", "ok")),
        reports=(previous.reports + 1) if previous else 1,
        workload=kw.get("workload"),  # type: ignore[arg-type]
    )
    if previous is None or not previous.active:
        model.apply_monitor(ComponentActive(state), now)
    fields = frozenset({"links", "reports"} if previous is None or previous.links != links else {})
    model.apply_monitor(ComponentChanged(state, fields), now)


def test_one_line_per_registrar_pair_and_sessions_merged() -> None:
    model = ViewModel(scenario())
    report(model, "PR-1", PR1, (link(PR1, PR2, PPID.ENRP, None),), 1.0)
    report(model, "PR-2", PR2, (link(PR2, PR1, PPID.ENRP, None),), 1.0)
    pu_links = (
        link(PU1, PR1, PPID.ASAP),
        link(PU1, PE1, PPID.FGP, 2.0),
        link(PU1, PE1, PPID.FGP, 5.0),
    )
    report(model, "PU-1", PU1, pu_links, 1.0)
    lines = {(m.category, frozenset((m.source, m.target))): m for m in model.links()}
    assert len(lines) == 3
    enrp = lines[("enrp", frozenset({"PR-1", "PR-2"}))]
    assert enrp.both_ways and enrp.duration is None
    fgp = lines[("application", frozenset({"PU-1", "PE-1"}))]
    assert (fgp.source, fgp.target, fgp.count, fgp.duration) == ("PU-1", "PE-1", 2, 5.0)
    assert "2 associations" in fgp.describe()
    # Receivers that are not known components draw nothing.
    report(model, "PE-2", PE2, (link(PE2, component_id(1, 0), PPID.ASAP),), 1.0)
    assert not [m for m in model.links() if "PE-2" in (m.source, m.target)]


def failover_report(**overrides: object) -> PuFailover:
    fields: dict[str, object] = {
        "session": 2,
        "reason": "heartbeat-timeout",
        "old_pe": 0x101,
        "new_pe": 0x102,
        "cookie": True,
        "last_rx": 1000.0,
        "detected": 1000.75,
        "resumed": 1000.875,
        "cells": [1, 3],
        "image": 4,
    }
    fields.update(overrides)
    report = failover_of("failover", PU1, 7, 1000.9, fields)
    assert report is not None
    return report


def test_sessions_moving_after_a_fault_are_no_failover_without_the_pu_saying_so() -> None:
    model = ViewModel(scenario())
    report(model, "PE-1", PE1, (), 0.5)
    report(model, "PE-2", PE2, (), 0.5)
    two_on_pe1 = (link(PU1, PE1, PPID.FGP), link(PU1, PE1, PPID.FGP))
    report(model, "PU-1", PU1, two_on_pe1, 1.0)
    assert model.serving("PU-1") == {"PE-1": 2}
    assert model.workload("PE-1") is not None
    assert model.workload("PE-1").text == "50%"  # type: ignore[union-attr]
    model.record_fault("PE-1", "Kill (SIGKILL)", at=1.1)
    # Sessions move at every image boundary after a restart or resume: never a failover
    # by themselves (the control center used to guess here and showed false ones).
    for step in range(10):
        report(model, "PU-1", PU1, (link(PU1, PE1, PPID.FGP),), 1.2 + step)
        report(model, "PU-1", PU1, (link(PU1, PE2, PPID.FGP),), 1.5 + step)
        report(model, "PU-1", PU1, (), 1.7 + step)
    assert model.failovers == 0
    assert not [e for e in model.timeline if e.kind == "failover"]
    assert model.serving("PU-1") == {}


def test_a_reported_failover_is_shown_with_both_figures() -> None:
    model = ViewModel(scenario())
    # Our fault 0.25 s before the PU's detection (wall clock) is named with its time.
    model._faults["PE-1"] = InjectedFault("PE-1", "Hang (SIGSTOP)", 1000.5)
    changes = model.apply_failover(failover_report())
    assert model.failovers == 1 and "PU-1" in changes.nodes
    (entry,) = [e for e in changes.entries if e.kind == "failover"]
    assert entry.component == "PU-1"
    assert entry.text == (
        "PU-1 failover: PE-1 → PE-2 (heartbeat-timeout), image 4, cells 2, 4; "
        "detected→resumed 125 ms · fault→resumed 375 ms"
    )
    (view,) = model.failovers_of["PU-1"]
    assert view.fault is not None and view.fault_to_resume == 0.375
    assert view.report.silence_before_detection == 0.75


def test_a_failover_without_our_fault_has_only_the_pu_figure() -> None:
    model = ViewModel(scenario())
    # No fault at all, and one that is too old to have caused this failover.
    model.apply_failover(failover_report(cookie=False, cells=[0], old_pe=None))
    model._faults["PE-1"] = InjectedFault("PE-1", "Kill (SIGKILL)", 1000.75 - 61.0)
    model.apply_failover(failover_report())
    first, second = [e.text for e in model.timeline if e.kind == "failover"]
    assert first == (
        "PU-1 failover: ? → PE-2 (heartbeat-timeout, no cookie: cell restarted), image 4, "
        "cell 1; detected→resumed 125 ms"
    )
    assert "fault→resumed" not in second
    # A PE the scenario does not know keeps its identifier; an unknown sender shows nothing.
    model.apply_failover(failover_report(new_pe=0x999))
    assert "→ $00000999" in model.timeline[-1].text
    stranger = dataclasses.replace(
        failover_report(), sender=component_id(ComponentGroup.POOL_USER, 0x77)
    )
    assert not model.apply_failover(stranger).entries and model.failovers == 3


def test_failover_fields_from_the_network_are_checked() -> None:
    good = failover_report()
    assert (good.old_pe, good.new_pe, good.cells, good.cookie) == (0x101, 0x102, (1, 3), True)
    assert failover_of("cookie-echo", PU1, 1, 1.0, {}) is None  # another event: not ours
    for bad in (
        {"new_pe": None},
        {"new_pe": 0},
        {"old_pe": "0x101"},
        {"cookie": 1},
        {"detected": float("inf")},
        {"resumed": True},
        {"cells": [1, -1]},
        {"cells": list(range(600))},
        {"cells": "1,2"},
        {"reason": ""},
        {"session": -1},
    ):
        with pytest.raises(TraceFormatError):
            failover_report(**bad)
    # Text shown on screen is cut short and has no control characters.
    shown = failover_report(reason="x\x1b[2J" + "y" * 100).reason
    assert "\x1b" not in shown and len(shown) <= 40


def test_node_states_from_processes_and_hosts() -> None:
    model = ViewModel(scenario())
    assert model.node_state("PE-1") is NodeState.INACTIVE
    assert model.status_text("PE-1") == "not started"
    model.apply_launcher(ProcessStarted("PE-1", "h1", 42, 1.0))
    assert model.status_text("PE-1") == "starting"
    report(model, "PE-1", PE1, (link(PE1, PR1, PPID.ASAP),), 2.0, status="0 Sessions")
    assert model.node_state("PE-1") is NodeState.ACTIVE
    assert model.status_text("PE-1") == "0 Sessions"
    model.apply_launcher(ProcessHung("PE-1", "h1", 3.0))
    assert model.node_state("PE-1") is NodeState.HUNG
    model.apply_launcher(ProcessResumed("PE-1", "h1", 4.0))
    assert model.node_state("PE-1") is NodeState.ACTIVE
    changes = model.apply_launcher(HostChanged("h1", "unplugged", 5.0))
    assert changes.nodes == {"PE-1"}
    assert model.node_state("PE-1") is NodeState.UNPLUGGED
    assert model.node_state("PE-2") is NodeState.INACTIVE  # other host untouched
    model.apply_launcher(HostChanged("h1", "replugged", 6.0))
    assert model.node_state("PE-1") is NodeState.ACTIVE
    # A process that exited is inactive at once, lines and badge gone, exit shown.
    model.apply_launcher(ProcessExited("PE-1", "h1", ExitStatus(signal=9), False, 7.0))
    assert model.node_state("PE-1") is NodeState.INACTIVE
    assert model.status_text("PE-1") == "killed by SIGKILL"
    assert model.links() == []
    assert model.workload("PE-1") is None
    kinds = [e.kind for e in model.timeline]
    assert {"process", "fault", "host", "error"} <= set(kinds)


def test_discovered_components_get_a_node_on_the_shelf() -> None:
    model = ViewModel(scenario())
    stranger = component_id(ComponentGroup.POOL_ELEMENT, 0x999)
    state = ComponentState(stranger, "PE 200000000000999", True, 5.0)
    changes = model.apply_monitor(ComponentDiscovered(state), 1.0)
    name = changes.added[0]
    node = model.nodes[name]
    assert node.discovered and node.kind == "pool-element" and node.position[1] > 80
    active = dataclasses.replace(state, active=True, reports=1)
    model.apply_monitor(ComponentActive(active), 1.1)
    assert model.node_state(name) is NodeState.ACTIVE
    assert any(row.name == name for handle, rows in model.pools() for row in rows)


def test_reported_workload_wins_and_durations_format() -> None:
    model = ViewModel(scenario())
    report(model, "PE-2", PE2, (), 1.0, workload=0.8)
    workload = model.workload("PE-2")
    assert workload is not None and workload.text == "80%"
    assert format_duration(187.9) == "3:07"
    assert format_duration(3723) == "1:02:03"


def test_a_kill_by_anyone_of_ours_is_the_fault_a_later_failover_names() -> None:
    import time

    model = ViewModel(scenario())
    # The launcher says when it sends the signal (for the window's and a storyboard's kills).
    model.apply_launcher(SignalSent("PE-1", "h1", "SIGKILL", time.monotonic()))
    now = time.time()
    model.apply_failover(failover_report(last_rx=now, detected=now + 0.1, resumed=now + 0.3))
    (view,) = model.failovers_of["PU-1"]
    assert view.fault is not None and view.fault.what == "SIGKILL"
    assert view.fault_to_resume is not None and 0.25 < view.fault_to_resume < 0.6
    # A crash (not ours) is no injected fault.
    model.apply_launcher(
        ProcessExited("PE-2", "h2", ExitStatus(code=1), expected=False, at=time.monotonic())
    )
    assert "PE-2" not in model._faults
