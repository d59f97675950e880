"""``fractal-pu``: the fractal pool user. Opens the Qt viewer, or with ``--headless``
computes images to PNG + JSON.

    fractal-pu --headless --registrar 127.0.0.1:3863 --poolhandle FractalGeneratorPool \\
        --sessions 4 --width 400 --height 250 --output out.png --report out.json \\
        [--config FILE_OR_DIR.fsf ...] [--images K] [--playlist]

Both ways take their settings from :mod:`fractal_pu.options` and build the
pool user from :mod:`fractal_pu.wiring`; the viewer (:mod:`fractal_pu.gui`) is
imported only when it is wanted, so headless runs never load Qt.
Times are milliseconds (rsplib's ``-sendtimeout``/``-recvtimeout``: 5000).
Exit status: 0 when every pixel of every image was computed, 1 otherwise,
2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from fractal_pu.headless import run_headless
from fractal_pu.options import PoolUserOptions, build_parser, pool_user_options
from rsplib import cli_options, tool_options
from rsplib.session.cookies import CookieKeyError

log = logging.getLogger("fractal_pu")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cli_options.setup_logging(args)
        tool_options.start_trace(args)
        options = pool_user_options(args)
    except (ValueError, OSError, CookieKeyError) as exc:
        parser.error(str(exc))
    if not options.registrars and options.announce is None:
        parser.error("give --registrar ADDR:PORT or --announce-interface ADDR")
    if not args.headless:
        from fractal_pu.gui.app import run_viewer  # Qt only when the window is wanted

        try:
            viewer = run_viewer(args, options)
        except ValueError as exc:
            parser.error(str(exc))
        return viewer
    try:
        return asyncio.run(_until_signalled(options))
    except KeyboardInterrupt:
        return 130


async def _until_signalled(options: PoolUserOptions) -> int:
    """Run the PU until it finishes or SIGINT/SIGTERM arrives. A signal cancels the work,
    whose clean-up still sends the FINAL status report and writes the JSON report; the
    stop flag also ends an endless run should a cancellation get lost in a session."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.ensure_future(run_headless(options, stop=stop))

    def stop_now() -> None:
        stop.set()
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_now)
    try:
        return await task
    except asyncio.CancelledError:
        log.info("stopped by signal before the images were complete")
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
