"""The Policy lab pane on a real run: counts from the trace, a policy change restarts PEs."""

from __future__ import annotations

from pathlib import Path

from control_center.gui.screenshot import save_widget

from .conftest import load_copy


def test_policy_lab_on_a_live_run(  # type: ignore[no-untyped-def]
    qtbot, open_window, tmp_path: Path, artifacts: Path
):
    window = open_window(load_copy(tmp_path))
    lab = window.policy_lab
    window.start_all_action.trigger()
    qtbot.waitUntil(lambda: sum(lab.counter.picks.values()) >= 1, timeout=30_000)
    qtbot.waitUntil(lambda: sum(lab.counter.sessions.values()) >= 1, timeout=30_000)
    assert set(lab.counter.picks) <= {0x101, 0x102, 0x103}

    # Weighted random, PE-3 heaviest: the PEs restart with it, and the responses say so.
    window.policy_lab_dock.raise_()
    lab.family_box.setCurrentText("weighted random")
    lab.value_box.setValue(1)
    lab.apply_to_pool()
    qtbot.waitUntil(lambda: bool(lab.done), timeout=60_000)
    assert "now use weighted random" in lab.done[-1]
    orchestrator = window.bridge.orchestrator
    assert orchestrator is not None
    assert orchestrator.scenario.component("PE-3").options["policy"] == "WeightedRandom:1"
    lab.pe_values["PE-3"].setValue(8)
    lab.apply_to(["PE-3"])
    qtbot.waitUntil(lambda: len(lab.done) == 2, timeout=60_000)
    assert lab.done[-1].startswith("PE-3 now uses")
    assert orchestrator.scenario.component("PE-3").options["policy"] == "WeightedRandom:8"
    lab.reset()
    qtbot.waitUntil(
        lambda: lab.counter.last is not None and 8 in lab.counter.last.weights, timeout=40_000
    )
    assert "weight 8" in lab.last_label.text()
    save_widget(lab, artifacts / "policy-lab.png")
