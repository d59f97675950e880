"""Fixtures of the control-center window tests: scenario copies, a running window, stalls.

The scenarios are copies of the shipped ones that differ only where tests on a
shared machine, or tests that need time to act, must differ: registrars and
the monitor take free ports, registrars send keep-alives every second (so the
pool elements learn their home registrar's id quickly and draw their ASAP
line), pool elements pause 30 ms per data block and the pool user computes
many images, so there is always work in flight to fail over.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("PySide6.QtWidgets")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QTimer

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.scenario import Scenario
from control_center.scenario_file import load_scenario

REPO = Path(__file__).resolve().parents[3]
SCENARIOS = REPO / "scenarios"
ARTIFACTS = REPO / "test-artifacts" / "control_center"


def scenario_copy(tmp_path: Path, name: str = "local.toml", **subs: str) -> Path:
    """A copy of a shipped scenario with free ports (and ``subs`` applied)."""
    text = (SCENARIOS / name).read_text()
    text = re.sub(r"(?m)^(asap_port|enrp_port) = \d+", r"\1 = 0", text)
    text = re.sub(r"(?m)^csp_port = \d+", "csp_port = 0", text)
    for old, new in subs.items():
        text = text.replace(old, new)
    out = tmp_path / name
    out.write_text(text)
    return out


def pace(scenario: Scenario) -> Scenario:
    """Registrar keep-alives every second; PEs pause 30 ms per block; the PU computes one
    image after the other without a pause (there is always work in flight)."""
    from dataclasses import replace

    comps = []
    for comp in scenario.components:
        options = dict(comp.options)
        if comp.kind.value == "registrar":
            options.setdefault("endpoint_keepalive_interval", 1000)
            options.setdefault("endpoint_keepalive_timeout", 1000)
        elif comp.kind.value == "fractal-pe":
            options["block_delay"] = 30
        elif comp.kind.value == "fractal-pu":
            options["images"] = 200
            options["interimagetime"] = 0  # no pause: sessions are always in flight
            options.setdefault("recvtimeout", 2000)
        comps.append(replace(comp, options=options))
    return replace(scenario, components=tuple(comps))


def _run_queue_wait() -> float | None:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class StallMeter:
    """Measures how late a 10 ms Qt timer fires: the longest event-loop stall.

    A stall counts what the window's own thread did: running code or blocking
    in a call. Time it spent runnable while other processes had the CPU (a
    shared, loaded CI machine) is subtracted, read from the kernel's per-thread
    run-queue wait; without schedstat the plain wall-clock gap counts.

    The objects earlier tests left in this long-lived test process are frozen out of the
    garbage collector's view while it measures (a full collection of the whole suite's
    heap paused the loop for 100+ ms; the control center's own process has no such
    heap). The window's own garbage is still collected, and counted: the longest
    collection is part of :meth:`describe`.
    """

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.last_wait: float | None = None
        self.worst = 0.0
        self.worst_wall = 0.0
        self.ticks = 0
        self.where = ""
        self.phase = ""
        self.paused = False
        self.longest_gc = 0.0
        self._gc_began = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        elif self._gc_began:
            self.longest_gc = max(self.longest_gc, time.perf_counter() - self._gc_began)

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        self.longest_gc = 0.0
        self.last = time.monotonic()
        self.last_wait = _run_queue_wait()
        self.worst = 0.0
        self.worst_wall = 0.0
        self.ticks = 0
        self.timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        wait = _run_queue_wait()
        wall = now - self.last
        own = wall
        if wait is not None and self.last_wait is not None:
            own = max(0.0, wall - (wait - self.last_wait))
        if not self.paused and own > self.worst:
            self.worst = own
            self.worst_wall = wall
            self.where = self.phase
        self.last = now
        self.last_wait = wait
        self.ticks += 1

    def pause(self) -> None:
        """The test itself blocks the loop now (e.g. saving screenshots): do not count it."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.last = time.monotonic()
        self.last_wait = _run_queue_wait()

    def stop(self) -> float:
        self.timer.stop()
        self._release_gc()
        return self.worst

    def _release_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
            gc.unfreeze()

    def describe(self) -> str:
        during = f" during {self.where!r}" if self.where else ""
        return (
            f"event loop stalled for {self.worst * 1000:.0f} ms of its own "
            f"({self.worst_wall * 1000:.0f} ms wall clock){during}; "
            f"longest garbage collection {self.longest_gc * 1000:.0f} ms"
        )


@pytest.fixture
def stall_meter() -> Iterator[StallMeter]:
    meter = StallMeter()
    yield meter
    meter.timer.stop()
    meter._release_gc()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def open_window(qtbot, tmp_path: Path) -> Iterator[Callable[[Scenario], MainWindow]]:  # type: ignore[no-untyped-def]
    """Opens a window on a scenario with its engine running; closes and stops it after."""
    opened: list[MainWindow] = []

    def open_(scenario: Scenario, *, wait_ready: bool = True) -> MainWindow:
        bridge = EngineBridge(scenario, run_dir=tmp_path / "run", csp_port=0)
        window = MainWindow(bridge)
        window.quit_on_close = False
        window.resize(1400, 860)
        opened.append(window)
        window.show()
        bridge.start()
        if wait_ready:
            qtbot.waitUntil(lambda: window.info is not None or window.engine_stopped, timeout=30000)
            assert window.info is not None, "the engine did not come up"
        return window

    yield open_
    for window in opened:
        window.close()  # stops every component first
        thread = window.bridge._thread
        if thread is not None:
            qtbot.waitUntil(lambda t=thread: not t.is_alive(), timeout=60000)
        window.deleteLater()


def load_copy(tmp_path: Path, name: str = "local.toml", **subs: str) -> Scenario:
    return pace(load_scenario(scenario_copy(tmp_path, name, **subs)))
