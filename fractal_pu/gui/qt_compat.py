"""Work-around for a reference-count bug of PySide6 6.12.0 on Python 3.11.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11): every call of a Qt
method that returns nothing (``QLabel.setText``, ``QTimer.setInterval`` ...)
lowers the reference count of ``None`` by one. After some thousands of such
calls ``None``'s count reaches zero and CPython aborts with "Fatal Python
error: none_dealloc" -- at the latest when the interpreter exits. ``True`` and
``False`` lose references on some other paths too (the viewer died with
"bool_dealloc" once ``None`` was protected). Python 3.12 made these singletons
immortal (PEP 683), which is why such a bug goes unnoticed there.

:func:`protect_none` measures whether the installed PySide6 has the bug and,
only then, adds a large constant to the reference counts of ``None``, ``True``
and ``False``, which makes them effectively immortal as on 3.12 (2**50 lost references take years at
a million Qt calls per second). The right fix is a PySide6 without the bug.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger("fractal_pu.gui")

_RESERVE = 1 << 50
_PROBE_CALLS = 64
_done = False


def pyside_loses_none_references() -> bool:
    """True when a void Qt method call drops a reference to None (the bug above)."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        timer.setInterval(1)
    lost = before - sys.getrefcount(None)
    return lost >= _PROBE_CALLS // 2


def protect_none() -> bool:
    """Apply the work-around when needed (once per process); True if it was applied."""
    global _done
    if _done or sys.version_info >= (3, 12):
        return False
    _done = True
    if not pyside_loses_none_references():
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))
        refcount.value += _RESERVE
    log.debug("PySide6 drops references to None; None, True and False made effectively immortal")
    return True
