"""``rsp-control-center SCENARIO``: the window, its engine thread, and the scripted modes.

Besides the interactive window this runs the documentation and check modes:

* ``--start-all --screenshot FILE.png --exit-after S``: start everything,
  grab the window after S seconds, stop everything, exit (offscreen works);
* ``--storyboard FILE`` without ``--headless``: the storyboard plays in the
  window (a scripted live demo); with ``--screenshot-dir DIR`` the map is
  saved after every step and at the first failover, and ``--close-when-done``
  ends the program with the story's verdict.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.gui.screenshot import MAX_BYTES, save_image, save_widget
from control_center.gui.view_model import TimelineEntry
from control_center.registration import registration_wait
from control_center.report_html import write_html_report
from control_center.scenario import Scenario
from control_center.story_runner import (
    OrchestratorControl,
    StoryResult,
    StoryRunner,
    check_against_scenario,
)
from control_center.storyboard import Storyboard
from control_center.trace_collector import TRACE_FILE

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: ``--screenshot`` without ``--exit-after`` waits this long after the engine is up.
DEFAULT_SCREENSHOT_AFTER_S = 10.0
#: Map images written by ``--screenshot-dir`` (pixels wide).
MAP_IMAGE_WIDTH = 1400
#: After a failover report the map and window are saved this much later (ms); after a
#: fault, later still: the pool user's lines move within half a second.
FAILOVER_SHOT_DELAY_MS = 300
AFTER_FAULT_SHOT_DELAY_MS = 1500


class GuiStoryRunner(StoryRunner):
    """A storyboard run whose timeline also goes to the window."""

    def __init__(self, *args: Any, forward: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forward = forward

    def note(self, kind: str, text: str, at: float | None = None) -> None:
        super().note(kind, text, at)
        self._forward(kind, text)


class GuiRun:
    """One run of the window: wiring of bridge, window, timers and scripted modes."""

    def __init__(
        self,
        scenario: Scenario,
        story: Storyboard | None,
        args: argparse.Namespace,
    ) -> None:
        self.scenario = scenario
        self.story = story
        self.args = args
        self.exit_code = EXIT_OK
        self.story_result: StoryResult | None = None
        self.bridge = EngineBridge(
            scenario,
            run_dir=args.run_dir,
            csp_port=args.csp_port,
            viewers=args.viewers,
            # --viewers asks for the windows even offscreen (screenshots of them).
            display=args.viewers or has_real_display(),
        )
        self.window = MainWindow(self.bridge)
        if args.size:
            self.window.resize(*args.size)
        self.shots = 0
        self.failover_shot = False
        self.screenshot_dir = Path(args.screenshot_dir) if args.screenshot_dir else None
        signals = self.bridge.signals
        signals.ready.connect(self._ready)
        signals.failed.connect(self._failed)
        signals.story_note.connect(self._story_note)
        signals.story_done.connect(self._story_done)
        self.window.on_timeline.append(self._timeline_entry)

    def start(self) -> None:
        self.window.show()
        if self.args.present:
            self.window.presenter.enter()
        self.bridge.start()

    # ------------------------------------------------------------------ engine up
    def _ready(self, _info: object) -> None:
        args = self.args
        if self.story is not None:
            self._start_story()
        elif args.start_all:
            self.window.start_all()
        delay = args.exit_after
        if delay is None and args.screenshot:
            delay = DEFAULT_SCREENSHOT_AFTER_S
        if delay is not None:
            QTimer.singleShot(int(delay * 1000), self._time_is_up)

    def _failed(self, message: str) -> None:
        print(f"rsp-control-center: {message}", file=sys.stderr)
        self.exit_code = EXIT_FAILED
        if self.args.exit_after is not None or self.args.screenshot or self.args.close_when_done:
            QTimer.singleShot(0, self.window.request_close)

    def _time_is_up(self) -> None:
        try:
            if self.args.screenshot:
                path = save_widget(self.window, self.args.screenshot)
                print(f"screenshot: {path}", flush=True)
        except Exception as exc:  # still stop everything we started
            print(f"rsp-control-center: screenshot failed: {exc}", file=sys.stderr)
            self.exit_code = EXIT_FAILED
        finally:
            if self.window.command_errors and self.exit_code == EXIT_OK:
                self.exit_code = EXIT_FAILED
                for error in self.window.command_errors:
                    print(f"rsp-control-center: {error.label}: {error.message}", file=sys.stderr)
            self.window.request_close()

    # ------------------------------------------------------------------ storyboard
    def _start_story(self) -> None:
        story = self.story
        assert story is not None
        bridge = self.bridge

        async def run() -> None:
            assert bridge.orchestrator is not None and bridge.monitor is not None
            runner = GuiStoryRunner(
                story,
                OrchestratorControl(
                    bridge.orchestrator, before_pool_users=registration_wait(bridge.monitor)
                ),
                bridge.monitor,
                out=sys.stdout,
                forward=bridge.signals.story_note.emit,
                presenter=self.window.tour,
            )
            result = await runner.run()
            bridge.signals.story_done.emit(result)

        bridge.call(run)

    def _story_note(self, kind: str, text: str) -> None:
        if kind in ("step", "expect", "story") and text.startswith(
            ("step ", "PASS", "FAIL", "TIMEOUT", "storyboard")
        ):
            self.window._note("story", text)
        if self.screenshot_dir is None:
            return
        if kind == "step" and text.startswith("step "):
            QTimer.singleShot(700, lambda: self._map_shot(text))
        elif kind == "expect":
            QTimer.singleShot(150, lambda: self._map_shot(text))

    def _timeline_entry(self, entry: TimelineEntry) -> None:
        """The failover screenshots: at the pool user's first failover report, or once
        the lines had time to move after the story's first fault (kill, hang, unplug)."""
        if self.screenshot_dir is None or self.failover_shot:
            return
        if entry.kind == "failover":
            delay = FAILOVER_SHOT_DELAY_MS
        elif entry.kind == "fault" or "killed by SIGKILL" in entry.text:
            delay = AFTER_FAULT_SHOT_DELAY_MS
        else:
            return
        self.failover_shot = True
        QTimer.singleShot(delay, self._failover_shots)

    def _failover_shots(self) -> None:
        assert self.screenshot_dir is not None
        self._map_shot("failover", name="map-failover")
        save_widget(self.window, self.screenshot_dir / "window-failover.png", max_bytes=MAX_BYTES)

    def _map_shot(self, text: str, *, name: str | None = None) -> None:
        assert self.screenshot_dir is not None
        self.shots += 1
        slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]
        stem = name or f"map-{self.shots:02d}-{slug}"
        save_image(
            self.window.map.render_image(MAP_IMAGE_WIDTH),
            self.screenshot_dir / f"{stem}.png",
            max_bytes=MAX_BYTES,
        )

    def _story_done(self, result: StoryResult) -> None:
        self.story_result = result
        report = self._report_path()
        result.write(report)
        print(f"report: {report}")
        orchestrator = self.bridge.orchestrator
        trace = orchestrator.run_dir / TRACE_FILE if orchestrator is not None else None
        print(f"report page: {write_html_report(result.to_json(), report, trace_path=trace)}")
        if self.screenshot_dir is not None:
            self._map_shot("end", name="map-end")
            save_widget(self.window, self.screenshot_dir / "window-end.png", max_bytes=MAX_BYTES)
            print(f"map screenshots: {self.screenshot_dir}")
        if not result.passed:
            self.exit_code = EXIT_FAILED
        if self.args.close_when_done:
            self.window.request_close()

    def _report_path(self) -> Path:
        if self.args.report:
            return Path(self.args.report)
        story = self.story
        assert story is not None
        if story.report is not None:
            return Path(story.report)
        if self.screenshot_dir is not None:
            return self.screenshot_dir / "report.json"
        orch = self.bridge.orchestrator
        base = orch.run_dir if orch is not None else Path.cwd()
        return base / "story-report.json"


def _install_sigint(window: MainWindow) -> QTimer:
    """Ctrl-C in the terminal closes the window cleanly (stopping every component)."""
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    signal.signal(signal.SIGTERM, lambda *_: QTimer.singleShot(0, window.close))
    # Qt's event loop runs in C++; a short timer lets Python see the signal.
    timer = QTimer()
    timer.start(200)
    timer.timeout.connect(lambda: None)
    return timer


def has_real_display() -> bool:
    """A display a viewer window can appear on (offscreen rendering is none)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and (
        os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal")
    )


def has_display() -> bool:
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def run_gui(scenario: Scenario, story: Storyboard | None, args: argparse.Namespace) -> int:
    """Show the window until it is closed; returns the exit status."""
    if not has_display():
        print(
            "rsp-control-center: no display (DISPLAY/WAYLAND_DISPLAY unset); use --headless, "
            "or QT_QPA_PLATFORM=offscreen for screenshots",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if story is not None:
        issues = check_against_scenario(
            story, [c.name for c in scenario.components], list(scenario.hosts)
        )
        if issues:
            print("rsp-control-center: storyboard does not fit the scenario:", file=sys.stderr)
            for issue in issues:
                print(f"  {issue}", file=sys.stderr)
            return EXIT_USAGE
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rsp-control-center")
    run = GuiRun(scenario, story, args)
    sigint_timer = _install_sigint(run.window)
    run.start()
    app.exec()
    sigint_timer.stop()
    run.bridge.shutdown()
    if not run.bridge.join(timeout=60):
        print("rsp-control-center: the engine did not stop in time", file=sys.stderr)
        return EXIT_FAILED
    code = run.exit_code
    # Tear the widgets down while Python is fully alive; left to the interpreter's
    # final garbage collection, PySide may free them in an order that crashes.
    run.window.deleteLater()
    app.processEvents()
    del run
    gc.collect()
    return code
