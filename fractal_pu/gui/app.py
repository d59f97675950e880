"""``fractal-pu`` without ``--headless``: the QApplication around the viewer window.

:func:`run_viewer` is called by :mod:`fractal_pu.cli` with the parsed command
line. Asyncio does not run in the GUI thread: the engine has its own worker
thread (see fractal_pu.gui.runner for why). SIGINT and SIGTERM close the
window cleanly (a short timer lets Python see the signal while Qt's event
loop runs).
"""

from __future__ import annotations

import argparse
import signal

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from fractal_pu.gui.options import viewer_options
from fractal_pu.gui.viewer import ViewerWindow
from fractal_pu.options import PROG, PoolUserOptions

SIGNAL_POLL_MS = 200


def run_viewer(args: argparse.Namespace, pool: PoolUserOptions) -> int:
    """Show the viewer until it is closed; ValueError names a bad viewer option."""
    options = viewer_options(args, pool)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([PROG])
    app.setApplicationName(PROG)
    window = ViewerWindow(options)
    if options.fullscreen:
        window.set_full_screen(True)
    else:
        window.show()
    # SIGINT (Ctrl-C) and SIGTERM (a launcher stopping us) close the window cleanly:
    # sessions closed, FINAL status report sent, pending PNG files written.
    previous = {
        sig: signal.signal(sig, lambda *_: window.close())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)  # returns to Python so the signal handler runs
    ticker.start(SIGNAL_POLL_MS)
    try:
        app.exec()
    finally:
        ticker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        window.shutdown()
    return 0
