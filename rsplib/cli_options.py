"""Command-line plumbing shared by the pool-element and pool-user tools.

Used by the example services (rsplib.examples), ``fractal-pe`` and ``fractal-pu``. Option
names are rsplib's where it has them. Times are milliseconds on the command line, seconds
inside. Bad values give one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from rsplib import tool_options
from rsplib.addressing import PeerAddress
from rsplib.asap.actions import Event, RegistrationFailed, RegistrationSucceeded
from rsplib.asap.config import AsapConfig
from rsplib.asap.service import ANNOUNCE_GROUP, ANNOUNCE_PORT, AnnounceOptions, parse_registrar
from rsplib.session.reporting import CspOptions
from rsplib.status import DEFAULT_CSP_SERVER, parse_server
from rsplib.transport import AUTO, SCTP, TCP_MAPPING, HeartbeatConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ArgumentParser(argparse.ArgumentParser):
    """argparse reporting errors as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


DEFAULT_POOL_HANDLE = "EchoPool"


def new_parser(
    prog: str, description: str, *, pool_handle: str = DEFAULT_POOL_HANDLE
) -> ArgumentParser:
    """A parser with the ASAP options; ``pool_handle`` is the tool's default pool handle."""
    parser = ArgumentParser(prog=prog, description=description)
    add_asap_options(parser, pool_handle=pool_handle)
    return parser


def add_asap_options(
    parser: argparse.ArgumentParser, *, pool_handle: str = DEFAULT_POOL_HANDLE
) -> None:
    add = parser.add_argument
    add(
        "--registrar",
        metavar="ADDR:PORT",
        action="append",
        default=[],
        help="static registrar, repeatable or comma-separated",
    )
    add("--poolhandle", default=pool_handle, help="pool handle (default %(default)s)")
    add(
        "--announce-interface",
        metavar="ADDR",
        help="listen for Server Announces via this interface address (e.g. 127.0.0.1)",
    )
    add(
        "--announce",
        metavar="ADDR:PORT",
        default=f"{ANNOUNCE_GROUP}:{ANNOUNCE_PORT}",
        help="Server Announce group (default %(default)s)",
    )
    add(
        "--transport",
        choices=("auto", "tcp", "sctp"),
        default="auto",
        help="auto: kernel SCTP where the kernel has it, else the TCP mapping (default auto)",
    )
    defaults = AsapConfig()
    add(
        "--registrar-connect-timeout",
        metavar="MS",
        type=float,
        help=f"give up connecting to a registrar after (default "
        f"{defaults.registrar_connect_timeout * 1000:g})",
    )
    add(
        "--registrar-response-timeout",
        metavar="MS",
        type=float,
        help=f"wait this long for a registrar's answer (default "
        f"{defaults.registrar_response_timeout * 1000:g})",
    )
    add(
        "--registrar-connect-max-trials",
        metavar="N",
        type=int,
        help=f"registrar hunt attempts before a request fails (default "
        f"{defaults.registrar_connect_max_trials})",
    )
    add(
        "--registrar-announce-timeout",
        metavar="MS",
        type=float,
        help=f"forget an announced registrar after (default "
        f"{defaults.registrar_announce_timeout * 1000:g})",
    )
    add(
        "--heartbeat-interval",
        metavar="MS",
        type=float,
        default=1000.0,
        help="session heartbeat interval (default 1000)",
    )
    add(
        "--heartbeat-misses",
        metavar="N",
        type=int,
        default=3,
        help="silent heartbeat intervals before a session counts as lost (default 3)",
    )
    tool_options.add_tls_options(parser)
    add("--cspserver", metavar="ADDR:PORT", help="status monitor (enables reporting)")
    add("--cspinterval", metavar="MS", type=float, help="status report interval (default 1000)")
    tool_options.add_trace_options(parser)
    add(
        "--loglevel",
        default="info",
        metavar="LEVEL",
        help="debug, info, warning or error (default info)",
    )
    add("--logfile", metavar="FILE", help="log to FILE instead of stderr")


def transport_name(args: argparse.Namespace) -> str:
    """The transport to use; with TLS "auto" means the TCP mapping (TLS needs it)."""
    if args.transport == "auto" and args.tls_cert is not None:
        return TCP_MAPPING
    return {"auto": AUTO, "tcp": TCP_MAPPING, "sctp": SCTP}[args.transport]


def registrars(args: argparse.Namespace) -> list[PeerAddress]:
    found = []
    for text in args.registrar:
        for part in text.split(","):
            if part.strip():
                found.append(parse_registrar(part))
    return found


def announce(args: argparse.Namespace) -> AnnounceOptions | None:
    if args.announce_interface is None:
        return None
    group = parse_registrar(args.announce)
    return AnnounceOptions(args.announce_interface, group.host, group.port)


def asap_config(args: argparse.Namespace, **extra: Any) -> AsapConfig:
    values: dict[str, Any] = dict(extra)
    for option in (
        "registrar_connect_timeout",
        "registrar_response_timeout",
        "registrar_announce_timeout",
    ):
        value = getattr(args, option)
        if value is not None:
            values[option] = value / 1000.0
    if args.registrar_connect_max_trials is not None:
        values["registrar_connect_max_trials"] = args.registrar_connect_max_trials
    return AsapConfig(**values)


def heartbeat(args: argparse.Namespace) -> HeartbeatConfig:
    if args.heartbeat_interval <= 0 or args.heartbeat_misses < 0:
        raise ValueError("--heartbeat-interval must be positive, --heartbeat-misses >= 0")
    return HeartbeatConfig(args.heartbeat_interval / 1000.0, args.heartbeat_misses)


def csp(args: argparse.Namespace) -> CspOptions | None:
    if args.cspserver is None and args.cspinterval is None:
        return None
    server = parse_server(args.cspserver) if args.cspserver else DEFAULT_CSP_SERVER
    interval = (args.cspinterval or 1000.0) / 1000.0
    return CspOptions(server, interval)


def parse_identifier(text: str | None) -> int | None:
    if text is None:
        return None
    value = int(text, 0)
    if not 1 <= value <= 0xFFFFFFFF:
        raise ValueError(f"identifier must be in 1..0xffffffff, not {text}")
    return value


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.getLevelName(str(args.loglevel).upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {args.loglevel!r}")
    handler: logging.Handler = (
        logging.FileHandler(args.logfile) if args.logfile else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def check_asap_options(args: argparse.Namespace) -> None:
    """Sets up logging and validates the shared options before anything starts.

    Raises ValueError or OSError naming the bad option, for ``parser.error``.
    """
    setup_logging(args)
    parse_identifier(args.identifier)
    registrars(args)
    heartbeat(args)
    csp(args)
    tool_options.tls(args)
    tool_options.start_trace(args)


def require_registrar_source(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exits with status 2 unless a static registrar or the announce interface is given."""
    if not args.registrar and args.announce_interface is None:
        parser.error("give --registrar ADDR:PORT or --announce-interface ADDR")


def listen_address(text: str) -> tuple[str, int]:
    """``--local ADDR:PORT`` as (host, port); an empty host is 127.0.0.1, no port is 0."""
    host, _, port_text = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port_text or 0)


def registration_logger(logger: logging.Logger, identifier: int) -> Callable[[Event], None]:
    """An ASAP listener that logs the registration results of PE ``identifier``."""

    def listener(event: Event) -> None:
        if isinstance(event, RegistrationSucceeded) and event.identifier == identifier:
            logger.info("PE 0x%08x registered (registrar 0x%08x)", identifier, event.registrar_id)
        elif isinstance(event, RegistrationFailed) and event.identifier == identifier:
            logger.error("PE 0x%08x registration refused: %s", identifier, event.text)

    return listener


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM (for a clean shutdown)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
