"""The installed Qt binding must not leak references to None.

PySide6 6.12.0 under CPython 3.11 drops one reference to ``None`` on every Qt method
call that returns nothing, and the process aborts ("none_dealloc") after a few thousand
calls. pyproject.toml therefore excludes it; this test catches any release with the
same defect. The probe runs in a child process because the defect aborts the process.
"""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from PySide6.QtCore import QCoreApplication, QTimer
app = QCoreApplication([])
timer = QTimer()
before = sys.getrefcount(None)
for _ in range(5000):
    timer.setInterval(1)
print(before - sys.getrefcount(None))
"""


def test_void_qt_calls_keep_the_reference_count_of_none() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert abs(int(result.stdout.strip())) < 50, "the Qt binding leaks references to None"
