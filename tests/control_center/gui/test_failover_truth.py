"""Failovers shown are exactly those the pool user reports: none invented at image boundaries.

The control center used to guess failovers from session changes after any fault
it injected, and showed one at every image boundary for half a minute after a PE
was restarted or resumed. Here the pool user computes small images one after the
other; a serving PE is killed and restarted, another hung and resumed; each
fault must show the pool user's own failover reports, and the 10 image
boundaries after each recovery must add none.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from control_center.gui.main_window import MainWindow
from control_center.gui.view_model import NodeState
from control_center.scenario_file import load_scenario

from .conftest import pace, scenario_copy

BOUNDARIES = 10


def quick_images(tmp_path: Path) -> Path:
    """local.toml with small, quick images one after the other."""
    path = scenario_copy(tmp_path)
    text = path.read_text()
    for key, value in (
        ("width", "96"),
        ("height", "64"),
        ("sessions", "3"),
        ("pause_s", "0"),
    ):
        text = re.sub(rf"(?m)^{key} = [0-9.]+", f"{key} = {value}", text)
    path.write_text(text)
    return path


def images_done(window: MainWindow) -> int:
    """The number of the pool user's newest finished image (from its own report)."""
    orch = window.bridge.orchestrator
    assert orch is not None
    try:
        report = json.loads(Path(orch.files("PU-1")["report"]).read_text())
    except (OSError, ValueError):
        return 0
    images = report.get("images") or []
    return max((int(i["index"]) for i in images), default=0)


def shown_failovers(window: MainWindow) -> list[str]:
    return [e.text for e in window.timeline.entries if e.kind == "failover"]


def test_no_failover_is_shown_across_image_boundaries_after_a_restart_or_resume(  # type: ignore[no-untyped-def]
    qtbot, open_window, tmp_path
):
    # Paced (the PEs pause 30 ms per block); the pool user computes until stopped.
    paced = pace(load_scenario(quick_images(tmp_path)))
    endless = [
        replace(c, options={**c.options, "images": 0}) if c.name == "PU-1" else c
        for c in paced.components
    ]
    scenario = replace(paced, components=tuple(endless))
    window = open_window(scenario)
    window.start_all_action.trigger()
    qtbot.waitUntil(lambda: images_done(window) >= 2, timeout=60_000)
    assert shown_failovers(window) == []

    def recover_and_count(fault: str, recover: str) -> None:
        qtbot.waitUntil(lambda: window.serving_pool_element() is not None, timeout=10_000)
        victim = window.serving_pool_element()
        assert victim is not None
        before = len(shown_failovers(window))
        # Strike while the victim computes a cell: a fault between two cells (images take
        # 0.2 s, and the images_done wait above ends right at a boundary) is no failover.
        orch = window.bridge.orchestrator
        assert orch is not None
        log = Path(orch.log_file(victim))
        offset = log.stat().st_size
        qtbot.waitUntil(
            lambda: b"rectangle, algorithm" in log.read_bytes()[offset:], timeout=10_000
        )
        window.act(fault, victim)
        # The fault makes the pool user fail over: it says so itself.
        qtbot.waitUntil(
            lambda: any(f"{victim} →" in x for x in shown_failovers(window)[before:]),
            timeout=15_000,
        )
        window.act(recover, victim)
        qtbot.waitUntil(lambda: window.map.nodes[victim].state is NodeState.ACTIVE, timeout=20_000)
        # Let failovers of cells still in flight at the recovery arrive; then count.
        start = images_done(window) + 1
        qtbot.waitUntil(lambda: images_done(window) >= start, timeout=30_000)
        settled = len(shown_failovers(window))
        qtbot.waitUntil(lambda: images_done(window) >= start + BOUNDARIES, timeout=90_000)
        assert len(shown_failovers(window)) == settled, shown_failovers(window)[settled:]
        # The pool user agrees: no failover in those images.
        orch = window.bridge.orchestrator
        assert orch is not None
        report = json.loads(Path(orch.files("PU-1")["report"]).read_text())
        assert all(i["failovers"] == 0 for i in report["images"]), report["images"]

    recover_and_count("kill", "restart")
    recover_and_count("hang", "resume")
    assert not window.command_errors, window.command_errors
