"""The pool users' pictures and failovers in the window (no processes: fed as the engine would)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtTest import QTest

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.gui.view_model import InjectedFault
from control_center.scenario_file import load_scenario
from control_center.trace_events import failover_of
from fractal_pu.png import encode_png
from rsplib.wire.csp import ComponentGroup, component_id

from .conftest import scenario_copy

PU1 = component_id(ComponentGroup.POOL_USER, 0x1)


def png(width: int, height: int, value: int) -> bytes:
    return encode_png(np.full((height, width, 3), value, dtype=np.uint8))


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # type: ignore[no-untyped-def]
    """The window on the local scenario, its engine not started."""
    opened = MainWindow(EngineBridge(load_scenario(scenario_copy(tmp_path))))
    opened.quit_on_close = False
    qtbot.addWidget(opened)
    opened.show()
    return opened


def test_pictures_go_to_the_pane_and_the_node_and_bad_ones_change_nothing(
    window: MainWindow,
) -> None:
    pane = window.pictures["PU-1"]
    assert pane.view.image is None and window.map.nodes["PU-1"].thumbnail is None
    window.on_picture("PU-1", png(64, 40, 200))
    assert pane.pictures == 1 and pane.view.image is not None
    assert (pane.view.image.width(), pane.view.image.height()) == (64, 40)
    thumbnail = window.map.nodes["PU-1"].thumbnail
    assert thumbnail is not None and thumbnail.width() > 0
    # Drawn as large as the pane allows, with the picture's aspect ratio.
    shown = pane.view.picture_rect()
    assert abs(shown.width() / shown.height() - 64 / 40) < 0.02
    window.on_picture("PU-1", b"not a png")  # a half-written or foreign file: ignored
    window.on_picture("nobody", png(8, 8, 0))  # not a pool user of the scenario: ignored
    assert pane.pictures == 1


def test_a_reported_failover_shows_in_the_timeline_the_pane_and_the_pop_up(
    window: MainWindow,
) -> None:
    window.model._faults["PE-2"] = InjectedFault("PE-2", "Kill (SIGKILL)", 500.0)
    fields = {
        "session": 0,
        "reason": "eof",
        "old_pe": 0x102,
        "new_pe": 0x103,
        "cookie": True,
        "last_rx": 500.01,
        "detected": 500.02,
        "resumed": 500.07,
        "cells": [2],
        "image": 3,
    }
    report = failover_of("failover", PU1, 1, 500.1, fields)
    assert report is not None
    window.presenter.enter()
    window.on_failover(report)
    QTest.qWait(100)
    text = "PE-2 → PE-3 (eof), image 3: detected→resumed 50 ms · fault→resumed 70 ms"
    assert window.pictures["PU-1"].failovers.text() == text
    assert window.timeline.texts()[-1].startswith("PU-1 failover: PE-2 → PE-3 (eof)")
    assert window.stage.flash_text.startswith("PU-1 failover: PE-2 → PE-3")
    window.presenter.leave()


def test_trace_events_reach_the_window_and_malformed_ones_are_dropped(window: MainWindow) -> None:
    good = {
        "session": 1,
        "reason": "heartbeat-timeout",
        "old_pe": 0x101,
        "new_pe": 0x102,
        "cookie": True,
        "last_rx": 10.0,
        "detected": 13.0,
        "resumed": 13.2,
        "cells": [0],
        "image": 1,
    }
    window.bridge.trace_event("failover", PU1, 5, 13.3, {**good, "cells": "all"})
    window.bridge.trace_event("failover", PU1, 6, 13.3, {**good, "new_pe": -1})
    window.bridge.trace_event("cookie-echo", PU1, 7, 13.3, {})  # another event: not shown
    window.bridge.trace_event("failover", PU1, 8, 13.3, good)
    QTest.qWait(100)  # the signal is queued into the window's thread
    assert window.bridge.malformed_events == 2
    assert window.model.failovers == 1
    assert window.timeline.texts()[-1].startswith("PU-1 failover: PE-1 → PE-2")


def test_the_trace_collector_hands_events_to_the_window_and_stores_everything() -> None:
    from control_center.trace_collector import TraceCollector
    from control_center.trace_store import TraceStore
    from rsplib.trace.record import EventRecord, MessageRecord, encode_record

    message = MessageRecord(1.0, PU1, 0, "rx", "127.0.0.1:9", "fgp", "DATA")
    event = EventRecord(1.0, PU1, 1, "failover", {"session": 0})
    events: list[EventRecord] = []
    store = TraceStore()
    collector = TraceCollector(store, on_event=events.append)
    datagram = encode_record(message) + b"\n" + encode_record(event)
    collector._on_records(collector.parser.feed(datagram), datagram)
    assert [e.type for e in events] == ["failover"]
    exchanges, stored = store.drain()
    assert len(exchanges) == 1 and [e.type for e in stored] == ["failover"]
    # A malformed line makes the whole datagram invalid: dropped and counted, nothing raised.
    assert collector.parser.feed(b'{"v":1,"k":"ev","t":"x"}') == []
    assert collector.parser.bad_datagrams == 1
