"""``fractal-pu``: the fractal pool user. ``--headless`` computes images to PNG + JSON.

    fractal-pu --headless --registrar 127.0.0.1:3863 --poolhandle FractalGeneratorPool \\
        --sessions 4 --width 400 --height 250 --output out.png --report out.json \\
        [--config FILE_OR_DIR.fsf ...] [--images K] [--playlist]

Without ``--headless`` the Qt viewer (fractal_pu.gui) starts with the same
options plus ``--caption``, ``--imagestorageprefix``, ``--interimagetime``,
``--overlay``, ``--fullscreen``, ``--exit-after`` and ``--screenshot``.
Times are milliseconds (rsplib's ``-sendtimeout``/``-recvtimeout``: 5000).
Exit status: 0 when every pixel of every image was computed, 1 otherwise,
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from fractal_pu.engine import EngineConfig
from fractal_pu.headless import HeadlessOptions, run_headless
from rsplib import cli_options
from rsplib.session.cookies import CookieKeyError, CookieSealer, load_cookie_key

log = logging.getLogger("fractal_pu")

PROG = "fractal-pu"
DEFAULT_POOL_HANDLE = "FractalGeneratorPool"
GUI_MODULE = "fractal_pu.gui"


def build_parser() -> argparse.ArgumentParser:
    parser = cli_options.new_parser(
        PROG,
        "Fractal pool user: computes Mandelbrot images through a pool of "
        "fractal-pe pool elements, surviving their failures.",
        pool_handle=DEFAULT_POOL_HANDLE,
    )
    add = parser.add_argument
    add("--headless", action="store_true", help="no window: write PNG and a JSON report")
    add("--sessions", metavar="N", type=int, default=1, help="sessions per image (1)")
    add("--width", metavar="W", type=int, default=400)
    add("--height", metavar="H", type=int, default=250)
    add("--output", metavar="FILE.png", type=Path, help="image file (-NNN added for --images > 1)")
    add("--report", metavar="FILE.json", type=Path, help="JSON report")
    add(
        "--values-output",
        metavar="FILE.npy",
        type=Path,
        help="also save the iteration counts (uint32, -NNN added for --images > 1)",
    )
    add(
        "--config",
        metavar="FSF",
        type=Path,
        action="append",
        default=[],
        help=".fsf file or directory, repeatable (default: the bundled files)",
    )
    add("--images", metavar="K", type=int, default=1, help="images to compute (1)")
    add("--playlist", action="store_true", help="use the files in order instead of at random")
    add("--seed", metavar="N", type=int, help="random seed for the file choice")
    add("--recvtimeout", metavar="MS", type=float, default=5000.0, help="fail over after (5000)")
    add("--sendtimeout", metavar="MS", type=float, default=5000.0)
    add("--connect-timeout", metavar="MS", type=float, default=5000.0)
    add("--pool-timeout", metavar="MS", type=float, default=10000.0, help="wait for a PE (10000)")
    add("--image-timeout", metavar="MS", type=float, help="give an image up after (never)")
    add("--identifier", metavar="ID", help="CSP identifier, hex (0x...) or decimal")
    add("--cookie-key-file", metavar="FILE", help="pool key, only to log cookie positions")
    add("--no-failover-colors", action="store_true", help="no palette shift per failover")
    add("--no-session-colors", action="store_true", help="no palette shift per session")
    viewer = parser.add_argument_group("viewer (without --headless)")
    add = viewer.add_argument
    add("--caption", metavar="TEXT", help="window title (default: Fractal Pool User)")
    add(
        "--imagestorageprefix",
        metavar="P",
        help="save every finished image as P-NNNNNN.png",
    )
    add(
        "--interimagetime",
        metavar="S",
        type=float,
        default=5.0,
        help="seconds between a finished image and the next one (5)",
    )
    add("--overlay", action="store_true", help="start with the PE identity overlay on")
    add("--fullscreen", action="store_true", help="start in full-screen mode")
    add("--exit-after", metavar="S", type=float, help="quit after S seconds")
    add(
        "--screenshot",
        metavar="FILE.png",
        type=Path,
        help="save a grab of the window when the first image is done (or at --exit-after), "
        "then quit",
    )
    return parser


def _ms(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if not value > 0:
        raise ValueError(f"{option} must be positive milliseconds")
    return value / 1000.0


def headless_options(args: argparse.Namespace) -> HeadlessOptions:
    """Validated options; ValueError names the problem."""
    if args.output is None:
        raise ValueError("--headless needs --output FILE.png")
    if not 1 <= args.sessions <= 512:
        raise ValueError("--sessions must be within 1..512")
    if not (1 <= args.width <= 8192 and 1 <= args.height <= 4096):
        raise ValueError("--width must be within 1..8192 and --height within 1..4096")
    if args.images < 1:
        raise ValueError("--images must be at least 1")
    for path in args.config:
        if not path.exists():
            raise ValueError(f"--config {path}: no such file or directory")
    sealer = None
    if args.cookie_key_file is not None:
        sealer = CookieSealer(load_cookie_key(args.cookie_key_file), args.poolhandle.encode())
    receive = _ms(args.recvtimeout, "--recvtimeout")
    send = _ms(args.sendtimeout, "--sendtimeout")
    assert receive is not None and send is not None
    return HeadlessOptions(
        pool_handle=args.poolhandle,
        sessions=args.sessions,
        width=args.width,
        height=args.height,
        output=args.output,
        report=args.report,
        values_output=args.values_output,
        registrars=tuple(cli_options.registrars(args)),
        announce=cli_options.announce(args),
        asap_config=cli_options.asap_config(args),
        transport=cli_options.transport_name(args),
        heartbeat=cli_options.heartbeat(args),
        configs=tuple(args.config),
        images=args.images,
        playlist=args.playlist,
        seed=args.seed,
        engine=EngineConfig(
            receive_timeout=receive,
            send_timeout=send,
            image_timeout=_ms(args.image_timeout, "--image-timeout"),
        ),
        connect_timeout=_ms(args.connect_timeout, "--connect-timeout") or 5.0,
        pool_timeout=_ms(args.pool_timeout, "--pool-timeout") or 10.0,
        csp=cli_options.csp(args),
        identifier=cli_options.parse_identifier(args.identifier),
        show_failovers=not args.no_failover_colors,
        show_sessions=not args.no_session_colors,
        cookie_sealer=sealer,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.headless:
        # Imported by name so headless runs never load Qt (and the import contract holds).
        gui = importlib.import_module(GUI_MODULE)
        return int(gui.main(argv))
    try:
        cli_options.setup_logging(args)
        cli_options.start_trace(args)
        options = headless_options(args)
    except (ValueError, OSError, CookieKeyError) as exc:
        parser.error(str(exc))
    if not options.registrars and options.announce is None:
        parser.error("give --registrar ADDR:PORT or --announce-interface ADDR")
    try:
        return asyncio.run(_until_signalled(run_headless(options)))
    except KeyboardInterrupt:
        return 130


async def _until_signalled(work: Coroutine[Any, Any, int]) -> int:
    """Run the PU until it finishes or SIGINT/SIGTERM arrives. A signal cancels the work,
    whose clean-up still sends the FINAL status report and writes the JSON report."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        log.info("stopped by signal before the images were complete")
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
