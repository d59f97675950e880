"""The window against real registrar, PE and PU processes (offscreen).

One scenario run covers the whole first demo: start all, every node turns
active and the ASAP, ENRP and application lines appear; a PE killed from its
context menu goes inactive within 1.5 s and its lines vanish while the pool
user fails over and keeps computing; hang/resume and restart; the presenter's
hotkeys select and stop a PE. A 10 ms timer measures the event loop the whole
time: it must never stall for more than 100 ms while commands run.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from control_center.gui.main_window import MainWindow
from control_center.gui.screenshot import save_image, save_widget
from control_center.gui.view_model import NodeState

from .conftest import StallMeter, load_copy

MAX_STALL_S = 0.100


def lines_of(window: MainWindow, name: str) -> list[str]:
    return [
        f"{link.source}-{link.target}:{link.category}"
        for link in window.map.visible_links()
        if name in (link.source, link.target)
    ]


def state(window: MainWindow, name: str) -> NodeState:
    return window.map.nodes[name].state


def trigger_menu(window: MainWindow, name: str, key: str) -> None:
    """What a right-click on the node and a click on the entry do."""
    menu = window.node_menu(name)
    actions = {a.objectName(): a for a in menu.actions() if a.objectName()}
    assert actions[key].isEnabled(), f"{key} is greyed out for {name}"
    actions[key].trigger()


def shoot(window: MainWindow, artifacts: Path, stem: str, meter: StallMeter) -> None:
    """Screenshots (the test's own work blocks the loop here, so it is not measured)."""
    meter.pause()
    save_widget(window, artifacts / f"window-{stem}.png")
    save_image(window.map.render_image(1200), artifacts / f"map-{stem}.png")
    # Let the window catch up with what queued meanwhile before measuring again.
    QTest.qWait(300)
    meter.resume()


def test_first_demo_in_the_window(qtbot, open_window, tmp_path, stall_meter, artifacts):  # type: ignore[no-untyped-def]
    window = open_window(load_copy(tmp_path))
    names = [c.name for c in window.scenario.components]
    stall_meter.start()

    stall_meter.phase = "start all"
    # -- start all: every node active, all three kinds of lines
    started = time.monotonic()
    window.start_all_action.trigger()
    qtbot.waitUntil(
        lambda: all(state(window, n) is NodeState.ACTIVE for n in names), timeout=20_000
    )
    qtbot.waitUntil(
        lambda: (
            {link.category for link in window.map.visible_links()}
            >= {"asap", "enrp", "application"}
        ),
        timeout=10_000,
    )
    up_after = time.monotonic() - started
    assert up_after < 15, up_after
    enrp = [link for link in window.map.visible_links() if link.category == "enrp"]
    assert len(enrp) == 1 and enrp[0].both_ways, enrp  # one line per registrar pair
    # The pool user started once the registrars knew every PE, and its picture shows in
    # its pane and, small, on its node.
    texts = window.timeline.texts()
    assert any("once the registrars knew all 3 pool elements" in x for x in texts), texts
    started_at = {e.component: e.at for e in window.model.timeline if "started on" in e.text}
    registered = [
        e.at for e in window.model.timeline if e.text.startswith("PE-") and "active" in e.text
    ]
    assert started_at["PU-1"] >= max(registered)
    pane = window.pictures["PU-1"]
    qtbot.waitUntil(lambda: pane.pictures > 0, timeout=10_000)
    assert window.map.nodes["PU-1"].thumbnail is not None
    assert pane.view.image is not None and pane.view.image.width() > 0
    shoot(window, artifacts, "1-started", stall_meter)

    stall_meter.phase = "kill"
    # -- kill the PE serving the pool user, from its context menu
    serving = window.model.serving("PU-1")
    assert serving, "PU-1 has no sessions"
    victim = max(serving, key=lambda pe: serving[pe])
    killed_at = time.monotonic()
    trigger_menu(window, victim, "kill")
    qtbot.waitUntil(lambda: state(window, victim) is NodeState.INACTIVE, timeout=3_000)
    assert time.monotonic() - killed_at <= 1.5
    qtbot.waitUntil(lambda: not lines_of(window, victim), timeout=3_000)
    assert "killed by SIGKILL" in window.map.nodes[victim].status

    # The pool user keeps computing with the other PEs, and the timeline shows the
    # failover as the pool user reported it, with the time of our kill beside its own.
    def reported() -> list[str]:
        return [e.text for e in window.timeline.entries if e.kind == "failover"]

    qtbot.waitUntil(lambda: any(f"{victim} →" in x for x in reported()), timeout=15_000)
    assert all("fault→resumed" in x for x in reported() if f"{victim} →" in x), reported()
    qtbot.waitUntil(lambda: bool(window.model.serving("PU-1")), timeout=10_000)
    assert victim not in window.model.serving("PU-1")
    assert state(window, "PU-1") is NodeState.ACTIVE
    shoot(window, artifacts, "2-after-kill", stall_meter)

    stall_meter.phase = "hang"
    # -- hang another PE from the toolbar, resume it from its menu
    others = [n for n in window.model.pool_elements() if n != victim]
    hung = others[0]
    window.set_current(hung)
    assert window.component_actions["hang"].isEnabled()
    window.component_actions["hang"].trigger()
    qtbot.waitUntil(lambda: state(window, hung) is NodeState.HUNG, timeout=2_000)
    # A hung process sends no reports: the monitor drops it, the node stays "hung".
    qtbot.waitUntil(lambda: not window.model.states[hung].active, timeout=4_000)
    assert state(window, hung) is NodeState.HUNG
    shoot(window, artifacts, "3-hung", stall_meter)
    trigger_menu(window, hung, "resume")
    qtbot.waitUntil(lambda: state(window, hung) is NodeState.ACTIVE, timeout=5_000)

    stall_meter.phase = "restart"
    # -- restart the killed PE
    trigger_menu(window, victim, "restart")
    qtbot.waitUntil(lambda: state(window, victim) is NodeState.ACTIVE, timeout=15_000)

    stall_meter.phase = "log"
    # -- its log follows in the log pane
    trigger_menu(window, victim, "log")
    qtbot.waitUntil(lambda: "start:" in window.log_pane.contents(), timeout=5_000)

    stall_meter.phase = "presenter"
    # -- presentation mode: 1-9 select a PE, S stops it (FINAL report: inactive at once)
    # Switching to full screen relays out and repaints the whole window once; that
    # is a mode switch, not a command, so the meter skips it like the screenshots.
    stall_meter.pause()
    window.presenter.enter()
    qtbot.waitUntil(lambda: window.map.presenting, timeout=2_000)
    QTest.qWait(300)
    stall_meter.resume()
    target_index = window.model.pool_elements().index(others[-1]) + 1
    QTest.keyClick(window, Qt.Key(Qt.Key.Key_0 + target_index))
    assert window.current == others[-1]
    stopped_at = time.monotonic()
    QTest.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: state(window, others[-1]) is NodeState.INACTIVE, timeout=8_000)
    assert window.model.states[others[-1]].inactive_reason.value == "final"
    assert time.monotonic() - stopped_at < 6.0
    shoot(window, artifacts, "4-presenter", stall_meter)
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presenter.active

    worst = stall_meter.stop()
    assert stall_meter.ticks > 100
    assert worst < MAX_STALL_S, stall_meter.describe()
    assert not window.command_errors, window.command_errors
