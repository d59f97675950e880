"""What the window shows, from synthetic monitor and launcher events (no processes)."""

from __future__ import annotations

import dataclasses

from control_center.gui.view_model import NodeState, ViewModel, format_duration
from control_center.launchers.base import (
    ExitStatus,
    HostChanged,
    ProcessExited,
    ProcessHung,
    ProcessResumed,
    ProcessStarted,
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


def test_failover_when_sessions_move_after_a_fault() -> None:
    model = ViewModel(scenario())
    report(model, "PE-1", PE1, (), 0.5)
    report(model, "PE-2", PE2, (), 0.5)
    two_on_pe1 = (link(PU1, PE1, PPID.FGP), link(PU1, PE1, PPID.FGP))
    report(model, "PU-1", PU1, two_on_pe1, 1.0)
    assert model.serving("PU-1") == {"PE-1": 2}
    assert model.workload("PE-1") is not None
    assert model.workload("PE-1").text == "50%"  # type: ignore[union-attr]
    model.record_fault("PE-1", at=1.1)
    report(model, "PU-1", PU1, (link(PU1, PE1, PPID.FGP),), 1.2)  # one session lost
    report(model, "PU-1", PU1, (link(PU1, PE1, PPID.FGP), link(PU1, PE2, PPID.FGP)), 1.5)
    assert model.failovers == 1
    failover = [e for e in model.timeline if e.kind == "failover"]
    assert [e.text for e in failover] == ["PU-1 failover: session of PE-1 → PE-2"]


def test_a_finished_session_is_not_a_failover() -> None:
    model = ViewModel(scenario())
    report(model, "PE-1", PE1, (), 0.5)
    report(model, "PE-2", PE2, (), 0.5)
    report(model, "PU-1", PU1, (link(PU1, PE1, PPID.FGP),), 1.0)
    report(model, "PU-1", PU1, (), 2.0)  # cell done; PE-1 healthy
    report(model, "PU-1", PU1, (link(PU1, PE2, PPID.FGP),), 2.5)  # next image
    assert model.failovers == 0
    assert not [e for e in model.timeline if e.kind == "failover"]


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
