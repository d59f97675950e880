#!/usr/bin/env python3
"""Makes the README's "Teaching with it" screenshots from a real run, offscreen.

    python scripts/teaching_screenshots.py [--out docs/img]

Runs scenarios/local.toml (free ports) in the control center window, waits until the
components' trace shows registration, resolution, ENRP and FGP traffic, then saves:
the map with messages in flight (slow motion), the Messages pane (sequence chart with a
message's fields), and the Handlespace pane with the registrars' checksums side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.gui.screenshot import save_image, save_widget
from control_center.gui.sequence_chart import HEADER, ROW
from control_center.scenario_file import load_scenario
from tests.control_center.gui.conftest import pace, scenario_copy

REPO = Path(__file__).resolve().parents[1]
BACKGROUND = REPO / "assets" / "maps" / "demo-zones.svg"
MAX_BYTES = 300_000


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"teaching screenshots: timed out waiting for {what}")
        QTest.qWait(50)


def check(path: Path) -> None:
    size = path.stat().st_size
    print(f"{path} ({size // 1024} KB)")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is larger than {MAX_BYTES // 1000} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="rsp-teaching-"))
    relative = 'background = "../assets/maps/demo-zones.svg"'
    copy = scenario_copy(work, **{relative: f'background = "{BACKGROUND}"'})
    scenario = pace(load_scenario(copy))
    bridge = EngineBridge(scenario, run_dir=work / "run", csp_port=0)
    window = MainWindow(bridge)
    window.quit_on_close = False
    window.resize(1440, 900)
    window.show()
    bridge.start()
    try:
        wait_until(lambda: window.info is not None, 30, "the engine")
        window.start_all_action.trigger()
        view = window.trace_view
        wanted = {"REGISTRATION", "HANDLE_RESOLUTION", "PRESENCE", "FGP_DATA"}
        wait_until(
            lambda: wanted <= {e.record.type for e in view.sequence.chart.rows}, 40, "traffic"
        )
        QTest.qWait(1500)
        view.speed_box.setCurrentIndex(3)  # 0.1x: many messages on their way
        wait_until(lambda: view.dots.in_flight >= 6, 20, "messages in flight")
        save_image(window.map.render_image(1400), out / "teaching-map-messages.png")
        check(out / "teaching-map-messages.png")

        window.messages_dock.raise_()
        chart = view.sequence.chart
        view.sequence.live_box.setChecked(False)
        chart.first = max(0, len(chart.rows) - chart.visible_count())
        chart.update()
        QTest.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(300, HEADER + 3 * ROW))
        QTest.qWait(200)
        save_widget(view.panel, out / "teaching-sequence-chart.png")
        check(out / "teaching-sequence-chart.png")

        window.handlespace_dock.raise_()
        window.handlespace.refresh()
        wait_until(
            lambda: (
                len([t for t in window.handlespace.tables if t.dump]) == 2
                and all(t.dump.pe_count == 3 for t in window.handlespace.tables if t.dump)
            ),
            20,
            "both registrars' tables",
        )
        QTest.qWait(300)
        save_widget(window.handlespace, out / "teaching-handlespace.png")
        check(out / "teaching-handlespace.png")
    finally:
        window.close()
        thread = bridge._thread
        deadline = time.monotonic() + 60
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
