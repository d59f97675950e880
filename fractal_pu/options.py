"""``fractal-pu``'s command line: the parser and the validated pool-user settings (no Qt).

Both ways of running a pool user -- headless (:mod:`fractal_pu.headless`) and the
Qt viewer (:mod:`fractal_pu.gui`) -- take their settings from here, so both accept
the same options with the same meaning.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fractal_pu.engine import EngineConfig
from rsplib import cli_options, tool_options
from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, RegistrarAddress
from rsplib.session.cookies import CookieSealer, load_cookie_key
from rsplib.session.reporting import CspOptions
from rsplib.transport import AUTO, HeartbeatConfig, TlsConfig

PROG = "fractal-pu"
DEFAULT_POOL_HANDLE = "FractalGeneratorPool"


#: Seconds between two images when ``--interimagetime`` is not given.
DEFAULT_PAUSE_VIEWER_S = 5.0
DEFAULT_PAUSE_HEADLESS_S = 0.0
#: Names given to pool elements with ``--pe-name`` (a bound: a peer-independent option,
#: but a scenario with thousands of PEs is no demo).
MAX_PE_NAMES = 1024


@dataclass(frozen=True)
class PoolUserOptions:
    """Validated settings of a pool user, shared by the headless run and the viewer."""

    pool_handle: str
    sessions: int
    width: int
    height: int
    #: Finished images (headless; ``None`` in the viewer, which keeps them on screen).
    output: Path | None = None
    report: Path | None = None
    #: Raw iteration counts as a .npy file (checks against a reference computation).
    values_output: Path | None = None
    #: The image in progress, rewritten a few times a second (for the control center).
    live_image: Path | None = None
    registrars: tuple[RegistrarAddress, ...] = ()
    announce: AnnounceOptions | None = None
    asap_config: AsapConfig = field(default_factory=AsapConfig)
    transport: str = AUTO
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    configs: tuple[Path, ...] = ()
    #: Images to compute; 0: one after the other until stopped.
    images: int = 1
    playlist: bool = False
    seed: int | None = None
    #: Seconds between a finished image and the next one.
    pause: float = DEFAULT_PAUSE_HEADLESS_S
    engine: EngineConfig = field(default_factory=EngineConfig)
    connect_timeout: float = 5.0
    #: How long a session keeps looking for a reachable PE at its start.
    pool_timeout: float = 10.0
    csp: CspOptions | None = None
    identifier: int | None = None
    show_failovers: bool = True
    show_sessions: bool = True
    #: Only for logging where a cookie resumes (the PU needs no key to use cookies).
    cookie_sealer: CookieSealer | None = None
    #: Names of pool elements by PE identifier, shown instead of the hex id.
    pe_names: Mapping[int, str] = field(default_factory=dict)
    #: TLS with mutual certificates for the registrar and PE connections (None: off).
    tls: TlsConfig | None = None

    def pe_label(self, pe_id: int | None) -> str:
        """A PE's name (``--pe-name``) or its identifier as rsplib prints it."""
        if pe_id is None:
            return "?"
        return self.pe_names.get(pe_id, f"${pe_id:08x}")


def build_parser() -> argparse.ArgumentParser:
    parser = cli_options.new_parser(
        PROG,
        "Fractal pool user: computes Mandelbrot images through a pool of "
        "fractal-pe pool elements, surviving their failures. Opens the viewer "
        "window unless --headless is given.",
        pool_handle=DEFAULT_POOL_HANDLE,
    )
    add = parser.add_argument
    add("--headless", action="store_true", help="no window: write PNG and a JSON report")
    add("--sessions", metavar="N", type=int, default=1, help="sessions per image (default 1)")
    add("--width", metavar="W", type=int, default=400, help="image width (default 400)")
    add("--height", metavar="H", type=int, default=250, help="image height (default 250)")
    add(
        "--config",
        metavar="FSF",
        type=Path,
        action="append",
        default=[],
        help=".fsf file or directory, repeatable (default: the bundled files)",
    )
    add("--playlist", action="store_true", help="use the files in order instead of at random")
    add("--seed", metavar="N", type=int, help="random seed for the file choice")
    add(
        "--interimagetime",
        metavar="S",
        type=float,
        help=f"seconds between a finished image and the next one (default "
        f"{DEFAULT_PAUSE_VIEWER_S:g} in the viewer, {DEFAULT_PAUSE_HEADLESS_S:g} headless)",
    )
    add(
        "--recvtimeout",
        metavar="MS",
        type=float,
        default=5000.0,
        help="fail over when a PE sends nothing for this long (default 5000)",
    )
    add(
        "--sendtimeout",
        metavar="MS",
        type=float,
        default=5000.0,
        help="fail over when a message cannot be sent for this long (default 5000)",
    )
    add(
        "--connect-timeout",
        metavar="MS",
        type=float,
        default=5000.0,
        help="give up connecting to one PE after (default 5000)",
    )
    add(
        "--pool-timeout",
        metavar="MS",
        type=float,
        default=10000.0,
        help="keep looking for a reachable PE this long at a session's start (default 10000)",
    )
    add(
        "--image-timeout",
        metavar="MS",
        type=float,
        help="give an image up after (default: never)",
    )
    add("--identifier", metavar="ID", help="CSP identifier, hex (0x...) or decimal")
    add(
        "--cookie-key-file",
        metavar="FILE",
        help="pool key, only to log where a cookie resumes (the PU needs no key)",
    )
    add(
        "--pe-name",
        metavar="ID=NAME",
        action="append",
        default=[],
        help="show pool element ID (hex 0x... or decimal) as NAME, repeatable",
    )
    add("--no-failover-colors", action="store_true", help="no palette shift per failover")
    add("--no-session-colors", action="store_true", help="no palette shift per session")
    headless = parser.add_argument_group("headless (--headless)")
    add = headless.add_argument
    add(
        "--output",
        metavar="FILE.png",
        type=Path,
        help="finished image (-NNN added for --images > 1; --images 0 keeps the newest)",
    )
    add("--report", metavar="FILE.json", type=Path, help="JSON report")
    add(
        "--values-output",
        metavar="FILE.npy",
        type=Path,
        help="also save the iteration counts (uint32, -NNN added for --images > 1)",
    )
    add(
        "--images",
        metavar="K",
        type=int,
        default=1,
        help="images to compute, 0: until stopped (default 1)",
    )
    add(
        "--live-image",
        metavar="FILE.png",
        type=Path,
        help="keep the image in progress in FILE.png, rewritten a few times a second",
    )
    viewer = parser.add_argument_group("viewer (without --headless)")
    add = viewer.add_argument
    add("--caption", metavar="TEXT", help="window title (default: Fractal Pool User)")
    add(
        "--imagestorageprefix",
        metavar="P",
        help="save every finished image as P-NNNNNN.png",
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
    parser.epilog = (
        "Viewer keys: N next image, O overlay of PE colours, G session grid and labels, "
        "F full screen, Ctrl+S save the image, Ctrl+Q quit."
    )
    return parser


def _ms(value: float | None, option: str) -> float | None:
    if value is None:
        return None
    if not value > 0:
        raise ValueError(f"{option} must be positive milliseconds")
    return value / 1000.0


def parse_pe_names(items: Sequence[str]) -> dict[int, str]:
    """``--pe-name ID=NAME`` items as {PE identifier: name}; ValueError names a bad one."""
    if len(items) > MAX_PE_NAMES:
        raise ValueError(f"at most {MAX_PE_NAMES} --pe-name options")
    names: dict[int, str] = {}
    for item in items:
        key, sep, name = item.partition("=")
        name = name.strip()
        try:
            pe_id = int(key.strip(), 0)
        except ValueError:
            pe_id = -1
        if not sep or not name or not 0 < pe_id <= 0xFFFFFFFF or len(name) > 64:
            raise ValueError(f"--pe-name {item!r}: expected ID=NAME, e.g. 0x101=PE-1")
        names[pe_id] = name
    return names


def pool_user_options(args: argparse.Namespace) -> PoolUserOptions:
    """Validated options of either mode; ValueError names the problem."""
    if args.headless and args.output is None:
        raise ValueError("--headless needs --output FILE.png")
    if not 1 <= args.sessions <= 512:
        raise ValueError("--sessions must be within 1..512")
    if not (1 <= args.width <= 8192 and 1 <= args.height <= 4096):
        raise ValueError("--width must be within 1..8192 and --height within 1..4096")
    if args.images < 0:
        raise ValueError("--images must be 0 (until stopped) or more")
    pause = args.interimagetime
    if pause is None:
        pause = DEFAULT_PAUSE_HEADLESS_S if args.headless else DEFAULT_PAUSE_VIEWER_S
    if not (math.isfinite(pause) and pause >= 0):
        raise ValueError("--interimagetime must be 0 or more seconds")
    for path in args.config:
        if not path.exists():
            raise ValueError(f"--config {path}: no such file or directory")
    sealer = None
    if args.cookie_key_file is not None:
        sealer = CookieSealer(load_cookie_key(args.cookie_key_file), args.poolhandle.encode())
    receive = _ms(args.recvtimeout, "--recvtimeout")
    send = _ms(args.sendtimeout, "--sendtimeout")
    assert receive is not None and send is not None
    return PoolUserOptions(
        pool_handle=args.poolhandle,
        sessions=args.sessions,
        width=args.width,
        height=args.height,
        output=args.output,
        report=args.report,
        values_output=args.values_output,
        live_image=args.live_image,
        registrars=tuple(cli_options.registrars(args)),
        announce=cli_options.announce(args),
        asap_config=cli_options.asap_config(args),
        transport=cli_options.transport_name(args),
        heartbeat=cli_options.heartbeat(args),
        configs=tuple(args.config),
        images=args.images,
        playlist=args.playlist,
        seed=args.seed,
        pause=float(pause),
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
        pe_names=parse_pe_names(args.pe_name),
        tls=tool_options.tls(args),
    )
