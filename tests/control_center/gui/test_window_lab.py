"""Unplugging a virtual host from the window (network-namespace lab; needs root)."""

from __future__ import annotations

import random
import time

import pytest

from control_center.gui.view_model import NodeState
from control_center.launchers.netns import lab_requirements_problem

from .conftest import load_copy
from .test_window_live import lines_of, shoot, state, trigger_menu


def test_unplug_marks_the_host_and_its_components(  # type: ignore[no-untyped-def]
    qtbot, open_window, tmp_path, stall_meter, artifacts
):
    problem = lab_requirements_problem()
    if problem is not None:
        pytest.skip(problem)
    # A subnet of its own, so labs of parallel test runs cannot collide.
    subnet = f"10.{random.randint(80, 120)}.{random.randint(1, 250)}."
    window = open_window(load_copy(tmp_path, "lab.toml", **{"10.77.0.": subnet}))
    names = [c.name for c in window.scenario.components]
    stall_meter.start()
    window.start_all_action.trigger()
    qtbot.waitUntil(
        lambda: all(state(window, n) is NodeState.ACTIVE for n in names), timeout=30_000
    )
    # The components in the virtual hosts trace to the control center too.
    qtbot.waitUntil(
        lambda: any(
            e.paired and e.record.type == "REGISTRATION"
            for e in window.bridge.trace_store.snapshot()
        ),
        timeout=10_000,
    )
    victim = "PE-1"
    host = window.model.nodes[victim].host
    assert host is not None
    on_host = [n for n, node in window.model.nodes.items() if node.host == host]
    assert window.available(victim)["unplug"] and not window.available(victim)["replug"]
    # Registrars live on other hosts: local-only actions stay greyed out for nothing.
    unplugged_at = time.monotonic()
    trigger_menu(window, victim, "unplug")
    qtbot.waitUntil(
        lambda: all(state(window, n) is NodeState.UNPLUGGED for n in on_host), timeout=3_000
    )
    assert time.monotonic() - unplugged_at < 2.0
    assert window.map.nodes[victim].status == "host unplugged"
    assert all(state(window, n) is not NodeState.UNPLUGGED for n in names if n not in on_host)
    # No reports get through any more: its lines go with the monitor's timeout.
    qtbot.waitUntil(lambda: not lines_of(window, victim), timeout=4_000)
    assert any(e.text == f"host {host} unplugged" for e in window.timeline.entries)
    shoot(window, artifacts, "lab-unplugged", stall_meter)

    trigger_menu(window, victim, "replug")
    qtbot.waitUntil(lambda: state(window, victim) is NodeState.ACTIVE, timeout=10_000)
    assert window.available(victim)["unplug"]
    worst = stall_meter.stop()
    assert worst < 0.100, stall_meter.describe()
    assert not window.command_errors, window.command_errors
