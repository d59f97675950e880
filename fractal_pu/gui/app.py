"""``fractal-pu`` without ``--headless``: the QApplication around the viewer window.

Asyncio does not run in the GUI thread: the engine has its own worker
thread (see fractal_pu.gui.runner for why). SIGINT and SIGTERM close the
window cleanly (a short timer lets Python see the signal while Qt's event
loop runs).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from fractal_pu.cli import PROG, build_parser
from fractal_pu.gui.options import ViewerOptions, viewer_options
from fractal_pu.gui.viewer import ViewerWindow
from rsplib import cli_options
from rsplib.session.cookies import CookieKeyError

SIGNAL_POLL_MS = 200


def parse(argv: Sequence[str] | None) -> ViewerOptions:
    """Options from the command line; bad ones end the process with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cli_options.setup_logging(args)
        cli_options.start_trace(args)
        options = viewer_options(args)
    except (ValueError, OSError, CookieKeyError) as exc:
        parser.error(str(exc))
    if not options.pool.registrars and options.pool.announce is None:
        parser.error("give --registrar ADDR:PORT or --announce-interface ADDR")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
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


if __name__ == "__main__":
    sys.exit(main())
