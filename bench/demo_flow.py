"""The presenter's flow, timed as a person sees it: the control center window with real processes.

For each run, on a copy of scenarios/local.toml (free ports, the map background):

  first_pixels_s   Start all -> the pool user's first picture shown in the window (this
                   includes waiting for every pool element to register)
  killed_grey_s    Kill a serving PE (the X action) -> its node drawn inactive
  lines_move_s     the same kill -> the pool user's application lines no longer go to the
                   killed PE and go to another one (from the pool user's status reports)
  picture_again_s  the same kill -> the next new picture after the lines moved

Median (and max) over --runs runs. It uses the X display in $DISPLAY when there is one (run
it under Xvfb with a window manager to time what a presenter sees), else Qt's offscreen
platform. Every run stops all its processes, also on errors.

Usage: python bench/demo_flow.py [--json] [--runs 3] [--size 1600x1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from control_center.gui.engine import EngineBridge  # noqa: E402
from control_center.gui.main_window import MainWindow  # noqa: E402
from control_center.gui.view_model import NodeState  # noqa: E402
from control_center.scenario_file import load_scenario  # noqa: E402

FIGURES = ("first_pixels_s", "killed_grey_s", "lines_move_s", "picture_again_s")


def scenario_copy(directory: Path) -> Path:
    text = (REPO / "scenarios" / "local.toml").read_text()
    text = re.sub(r"(?m)^(asap_port|enrp_port) = \d+", r"\1 = 0", text)
    text = re.sub(r"(?m)^csp_port = \d+", "csp_port = 0", text)
    background = REPO / "assets" / "maps" / "demo-zones.svg"
    text = re.sub(r"(?m)^background = .*$", f'background = "{background}"', text)
    path = directory / "local.toml"
    path.write_text(text)
    return path


def wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Process events until ``condition`` holds; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        QCoreApplication.processEvents()
        time.sleep(0.002)
    return time.monotonic()


def one_run(directory: Path, size: tuple[int, int]) -> dict[str, float]:
    scenario = load_scenario(scenario_copy(directory))
    bridge = EngineBridge(scenario, run_dir=directory / "run", csp_port=0)
    window = MainWindow(bridge)
    window.quit_on_close = False
    window.resize(*size)
    window.show()
    bridge.start()
    pane = window.pictures["PU-1"]
    try:
        wait(lambda: window.info is not None, 30, "the engine")
        started = time.monotonic()
        window.start_all_action.trigger()
        first = wait(lambda: pane.pictures > 0, 60, "the first picture")
        # Work in flight on more than one PE: something to break.
        wait(lambda: len(window.model.serving("PU-1")) >= 2, 30, "two serving PEs")
        time.sleep(1.0)
        victim = window.serving_pool_element()
        assert victim is not None
        killed = time.monotonic()
        window.kill_serving_action.trigger()
        grey = wait(
            lambda: window.map.nodes[victim].state is NodeState.INACTIVE, 10, "the grey node"
        )
        serving = window.model.serving
        moved = wait(
            lambda: victim not in serving("PU-1") and bool(serving("PU-1")), 15, "lines moving"
        )
        seen = pane.pictures
        again = wait(lambda: pane.pictures > seen, 15, "a new picture")
        return {
            "first_pixels_s": first - started,
            "killed_grey_s": grey - killed,
            "lines_move_s": moved - killed,
            "picture_again_s": again - killed,
        }
    finally:
        window.close()  # stops every component
        thread = bridge._thread
        deadline = time.monotonic() + 60
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.01)
        window.deleteLater()
        QCoreApplication.processEvents()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="1600x1000", help="window size (WxH)")
    parser.add_argument("--keep", help="keep the runs' logs in this directory")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="rsp-demo-flow-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for index in range(args.runs):
            directory = base / f"run-{index}"
            directory.mkdir(parents=True)
            runs.append(one_run(directory, (width, height)))
            if not args.json:
                print(f"run {index + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in runs[-1].items()))
    del app
    summary = {
        name: {
            "median": round(statistics.median(r[name] for r in runs), 3),
            "max": round(max(r[name] for r in runs), 3),
        }
        for name in FIGURES
    }
    platform = QApplication.platformName() if QApplication.instance() else ""
    result = {"runs": args.runs, "size": args.size, "platform": platform, **summary}
    if args.json:
        print(json.dumps(result))
    else:
        for name in FIGURES:
            figure = summary[name]
            print(f"{name:16s} median {figure['median']:.3f} s  max {figure['max']:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
