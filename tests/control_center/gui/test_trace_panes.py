"""The live trace in the window: dots on the map and the sequence chart, on a real run.

A local scenario (2 registrars, 3 fractal PEs, the PU) runs in the window. Its components
trace to the control center, so the chart fills with registration, resolution, ENRP and
FGP arrows between the components' lanes, a click shows a message's fields, the chart
exports as SVG and PNG, and dots cross the map (in slow motion for the screenshot).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from control_center.gui.main_window import MainWindow
from control_center.gui.message_dots import DotsItem, MessageDots
from control_center.gui.screenshot import save_image, save_widget
from control_center.gui.sequence_chart import HEADER, ROW
from control_center.trace_store import Exchange, TraceStore
from rsplib.trace.record import MessageRecord

from .conftest import StallMeter, load_copy

MAX_STALL_S = 0.100


def _types(window: MainWindow) -> set[str]:
    return {e.record.type for e in window.trace_view.sequence.chart.rows}


def test_trace_panes_on_a_live_run(  # type: ignore[no-untyped-def]
    qtbot, open_window, tmp_path: Path, stall_meter: StallMeter, artifacts: Path
):
    window = open_window(load_copy(tmp_path))
    view = window.trace_view
    chart = view.sequence.chart
    stall_meter.start()
    stall_meter.phase = "start all"
    window.start_all_action.trigger()
    qtbot.waitUntil(
        lambda: {"REGISTRATION", "HANDLE_RESOLUTION", "PRESENCE", "FGP_DATA"} <= _types(window),
        timeout=30_000,
    )
    # Both ends of the messages are known components, drawn on their own lanes.
    names = {c.name for c in window.scenario.components}
    paired = [e for e in chart.rows if e.paired]
    assert paired, "no message was traced by both ends"
    for exchange in paired[:200]:
        source, target = view.store.ends(exchange)
        assert source is not None and target is not None
        assert view.name_of(source) in names and view.name_of(target) in names
    registrations = [e for e in chart.rows if e.record.type == "REGISTRATION"]
    assert {view.name_of(view.store.ends(e)[1] or 0) for e in registrations} <= {"PR-1", "PR-2"}
    # Dots travel on the map.
    stall_meter.phase = "dots"
    qtbot.waitUntil(lambda: view.dots.shown > 0, timeout=10_000)

    stall_meter.phase = "plots"
    # The Plots pane draws pixels per second per PE from the PEs' data messages.
    window.plots_dock.raise_()
    qtbot.waitUntil(lambda: "<polyline" in window.plots.rates.svg, timeout=10_000)
    assert "PE-" in window.plots.rates.svg
    stall_meter.pause()
    save_widget(window.plots, artifacts / "plots.png")
    stall_meter.resume()

    # Slow motion: messages in flight for the screenshot.
    stall_meter.phase = "slow motion"
    view.speed_box.setCurrentIndex(3)  # 0.1x
    qtbot.waitUntil(lambda: view.dots.in_flight >= 3, timeout=10_000)
    stall_meter.pause()
    save_image(window.map.render_image(1400), artifacts / "map-messages-in-flight.png")
    QTest.qWait(200)
    stall_meter.resume()

    # Pause: nothing moves.
    view.pause_box.setChecked(True)
    QTest.qWait(100)
    before = [(p.x(), p.y()) for p, _ in view.dots.positions()]
    QTest.qWait(300)
    assert [(p.x(), p.y()) for p, _ in view.dots.positions()] == before
    view.pause_box.setChecked(False)

    # The chart: pause the live view, filter, click a message, export.
    stall_meter.phase = "chart"
    window.messages_dock.raise_()
    view.sequence.live_box.setChecked(False)
    view.sequence.filter_edit.setText("registration")
    qtbot.waitUntil(lambda: bool(chart.rows), timeout=5_000)
    assert all("REGISTRATION" in e.record.type for e in chart.rows)
    QTest.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(200, HEADER + ROW // 2))
    details = view.sequence.details.toPlainText()
    assert '"type": "REGISTRATION' in details and '"ph": "FractalGeneratorPool"' in details
    view.sequence.filter_edit.setText("")
    stall_meter.phase = "chart export"
    chart.export_svg(tmp_path / "chart.svg")
    chart.export_png(tmp_path / "chart.png")
    assert b"<svg" in (tmp_path / "chart.svg").read_bytes()[:400]
    assert (tmp_path / "chart.png").stat().st_size > 5_000
    stall_meter.pause()
    save_widget(view.panel, artifacts / "sequence-chart.png")
    stall_meter.resume()

    # The Handlespace pane: both registrars' tables, checksums side by side.
    stall_meter.phase = "handlespace"
    window.handlespace_dock.raise_()
    pane = window.handlespace
    pane.refresh()

    def agreed(pes: int) -> bool:
        tables = [t for t in pane.tables if t.dump is not None]
        if len(tables) != 2 or any(t.dump.pe_count != pes for t in tables if t.dump):
            pane.refresh()
            return False
        checks = [t.dump.checksums() for t in tables if t.dump is not None]
        return bool(checks[0] == checks[1])

    qtbot.waitUntil(lambda: agreed(3), timeout=15_000)
    assert pane.checksums.rowCount() == 2 and pane.checksums.columnCount() == 2
    assert pane.tree.topLevelItemCount() == 2
    stall_meter.pause()
    save_widget(pane, artifacts / "handlespace.png")
    stall_meter.resume()
    # A PE dies: its home drops it, the other registrar follows (Handle Update).
    stall_meter.phase = "kill"
    victim = window.model.pool_elements()[0]
    window.act("kill", victim)
    qtbot.waitUntil(lambda: agreed(2), timeout=20_000)

    worst = stall_meter.stop()
    assert worst <= MAX_STALL_S, stall_meter.describe()

    # The run's trace was saved; rsp-decode --trace reads it back.
    saved = window.bridge.orchestrator.run_dir / "trace.jsonl"
    replay = subprocess.run(
        [str(Path(sys.executable).parent / "rsp-decode"), "--trace", "--summary", str(saved)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "REGISTRATION" in replay and "FGP_DATA" in replay and "(error)" not in replay


def _exchange(index: int, t: float, kind: str = "REGISTRATION") -> Exchange:
    record = MessageRecord(
        time=t, component=1, seq=index, direction="tx", peer="b:1", local="a:1",
        proto="asap", type=kind,
    )  # fmt: skip
    return Exchange(index, sent=record)


def test_dots_follow_speed_pause_and_filters(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QPointF

    places = {1: QPointF(0, 0), 2: QPointF(100, 0)}
    dots = MessageDots(DotsItem(), places.get, lambda e: (1, 2))
    dots.feed([_exchange(0, 10.0), _exchange(1, 10.2)])
    dots.advance(0.0)
    assert dots.in_flight == 1  # the second starts 0.2 s later
    dots.advance(0.2)
    assert dots.in_flight == 2
    x = dots.positions()[0][0].x()
    assert 0 < x < 100
    dots.advance(1.0)
    assert dots.in_flight == 0  # arrived
    dots.set_enabled("registration", False)
    dots.feed([_exchange(2, 12.0)])
    dots.advance(5.0)
    assert dots.shown == 2
    # Unknown ends draw nothing.
    lost = MessageDots(DotsItem(), places.get, lambda e: (1, None))
    lost.feed([_exchange(3, 1.0)])
    lost.advance(1.0)
    assert lost.shown == 0


def test_store_pairs_both_ends() -> None:
    store = TraceStore()
    tx = MessageRecord(time=1.0, component=1, seq=0, direction="tx", peer="b:2", local="a:1",
                       proto="asap", type="REGISTRATION")  # fmt: skip
    rx = MessageRecord(time=1.001, component=2, seq=0, direction="rx", peer="a:1", local="b:2",
                       proto="asap", type="REGISTRATION")  # fmt: skip
    reply = MessageRecord(time=1.002, component=2, seq=1, direction="tx", peer="a:1",
                          local="b:2", proto="asap", type="REGISTRATION_RESPONSE")  # fmt: skip
    store.add([rx, tx, reply])  # the receiver's record may come first
    new, _ = store.drain()
    assert len(new) == 2
    first, second = new
    assert first.paired and store.ends(first) == (1, 2)
    assert not second.paired and store.ends(second) == (2, 1)  # found by address
    assert second.category == "registration"


def test_tour_caption_on_the_map_and_space_goes_on(  # type: ignore[no-untyped-def]
    qtbot, open_window, tmp_path: Path, artifacts: Path
):
    window = open_window(load_copy(tmp_path))
    tour = window.tour

    async def story_part() -> str:
        tour.show_caption("A pool element registers with its home registrar.")
        tour.set_message_speed(0.1)
        await tour.wait_for_key()
        return "went on"

    future = window.bridge.call(story_part)
    qtbot.waitUntil(lambda: tour.item.isVisible() and tour.waiting, timeout=5_000)
    assert tour.item.text.startswith("A pool element registers")
    assert window.trace_view.dots.speed == 0.1
    assert window.trace_view.speed_box.currentData() == 0.1
    # The caption is part of the map image, so it shows in presentation mode too.
    save_image(window.map.render_image(1200), artifacts / "map-tour-caption.png")
    QTest.qWait(200)
    assert not future.done()
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(future.done, timeout=5_000)
    assert future.result() == "went on"
    qtbot.waitUntil(lambda: not tour.item.waiting, timeout=2_000)
