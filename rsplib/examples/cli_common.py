"""Command-line options shared by the example services (names as in rsplib where it has them).

Times are milliseconds on the command line, seconds inside. Bad values give
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, NoReturn

from rsplib.addressing import PeerAddress
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


def add_asap_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--registrar",
        metavar="ADDR:PORT",
        action="append",
        default=[],
        help="static registrar, repeatable or comma-separated",
    )
    add("--poolhandle", default="EchoPool", help="pool handle (default EchoPool)")
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
    add("--transport", choices=("auto", "tcp", "sctp"), default="auto")
    add("--registrar-connect-timeout", metavar="MS", type=float)
    add("--registrar-response-timeout", metavar="MS", type=float)
    add("--registrar-connect-max-trials", metavar="N", type=int)
    add("--registrar-announce-timeout", metavar="MS", type=float)
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
    add("--cspserver", metavar="ADDR:PORT", help="status monitor (enables reporting)")
    add("--cspinterval", metavar="MS", type=float, help="status report interval (default 1000)")
    add("--loglevel", default="info", help="debug, info, warning, error")
    add("--logfile", metavar="FILE")


def transport_name(args: argparse.Namespace) -> str:
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
