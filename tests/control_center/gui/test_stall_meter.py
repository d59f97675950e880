"""The stall meter the window tests rely on sees a handler that blocks the loop."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest

from tests.control_center.gui.conftest import StallMeter


def _busy(seconds: float) -> None:
    # Spin for this much of the thread's own CPU time: the meter leaves out the time a
    # loaded machine keeps the thread waiting for a core, so a wall-clock spin would look
    # shorter to it the busier the machine is.
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_busy_handler_counts_as_a_stall(qapp) -> None:  # type: ignore[no-untyped-def]
    meter = StallMeter()
    meter.start()
    QTest.qWait(50)
    done: list[bool] = []
    QTimer.singleShot(0, lambda: (_busy(0.15), done.append(True)))
    # However long a loaded machine takes for 150 ms of CPU, give the ticker time after it.
    deadline = time.monotonic() + 10.0
    while not done and time.monotonic() < deadline:
        QTest.qWait(10)
    QTest.qWait(200)
    worst = meter.stop()
    assert worst >= 0.14, meter.describe()
    assert meter.ticks > 5


def test_a_sleeping_handler_counts_as_a_stall(qapp) -> None:  # type: ignore[no-untyped-def]
    # Blocking in a call (not on the CPU) freezes the window just the same.
    meter = StallMeter()
    meter.start()
    QTimer.singleShot(0, lambda: time.sleep(0.15))
    QTest.qWait(300)
    assert meter.stop() >= 0.14, meter.describe()
