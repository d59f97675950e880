"""``rsp-registrar``: the registrar daemon's command line.

Option names are fixed (docs, scenarios and tests use them); where rsplib's
``rspregistrar`` has an equivalent, the meaning and default match it. Times
are given in milliseconds and converted to seconds for the configuration.
Bad arguments give one clear line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from rsplib import tool_options
from rsplib.addressing import PeerAddress
from rsplib.registrar.config import AddressScope, RegistrarConfig
from rsplib.registrar.service import (
    ASAP_ANNOUNCE_GROUP,
    DEFAULT_BUFFER_BUDGET,
    ENRP_ANNOUNCE_GROUP,
    RegistrarService,
    ServiceOptions,
)
from rsplib.status import parse_server
from rsplib.trace import start_trace
from rsplib.transport import TransportError

log = logging.getLogger("rsplib.registrar")

DEFAULT_ASAP = "0.0.0.0:3863"
DEFAULT_ENRP = "0.0.0.0:9901"
DEFAULT_CSP_SERVER = "127.0.0.1:2960"
DEFAULT_CSP_INTERVAL_MS = 1000
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UsageError(Exception):
    """A bad command-line value; the text is the one-line message shown."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------- value parsers


def parse_endpoint(text: str, *, allow_port_zero: bool = True) -> PeerAddress:
    """``ADDR:PORT`` or ``[IPv6]:PORT`` -> PeerAddress (port 0 = ephemeral if allowed)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UsageError(f"expected ADDR:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"not an IP address: {host!r} (in {text!r})") from None
    port = int(port_text)
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 0xFFFF:
        raise UsageError(f"port out of range in {text!r}")
    return PeerAddress(host, port)


def parse_identifier(text: str) -> int:
    """Registrar id, hex (``0x1234``) or decimal, 1 .. 0xFFFFFFFF (0 means undefined)."""
    try:
        value = int(text, 0) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise UsageError(f"identifier must be hex (0x...) or decimal, not {text!r}") from None
    if not 0 < value <= 0xFFFF_FFFF:
        raise UsageError(f"identifier must be within 1..0xffffffff, not {text!r}")
    return value


def parse_ms(text: str, option: str) -> float:
    """Milliseconds (integer or decimal, > 0) -> seconds."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} takes milliseconds, not {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise UsageError(f"{option} must be a positive number of milliseconds, not {text!r}")
    return value / 1000.0


def parse_count(text: str, option: str, minimum: int = 1) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise UsageError(f"{option} takes an integer, not {text!r}") from None
    if value < minimum:
        raise UsageError(f"{option} must be at least {minimum}, not {value}")
    return value


def parse_rate(text: str, option: str) -> float | None:
    """Requests per second; ``-1``, ``0`` or ``off`` mean unlimited (rsplib: -1)."""
    if text.strip().lower() in ("off", "unlimited"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option} takes a rate per second or 'off', not {text!r}") from None
    if value <= 0:
        return None
    return value


def parse_announce(text: str, option: str, group: PeerAddress) -> PeerAddress | None:
    """``auto`` (the well-known group), ``off`` or ``ADDR:PORT``."""
    lowered = text.strip().lower()
    if lowered == "auto":
        return group
    if lowered == "off":
        return None
    address = parse_endpoint(text, allow_port_zero=False)
    if not ipaddress.ip_address(address.host).is_multicast:
        raise UsageError(f"{option} must be a multicast address, auto or off, not {text!r}")
    return address


def parse_loglevel(text: str) -> int:
    """A level name (debug, info, warning, error, critical) or a number."""
    if text.strip().lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.strip().upper())
    if not isinstance(level, int):
        raise UsageError(
            f"--loglevel must be debug, info, warning, error, critical or a number, not {text!r}"
        )
    return level


# ----------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rsp-registrar",
        description="RSerPool registrar (ENRP server): ASAP for pool elements and users, "
        "ENRP with its peers, over kernel SCTP or the TCP mapping.",
    )
    add = parser.add_argument
    add("--identifier", metavar="ID", help="registrar id, hex (0x...) or decimal; random if absent")
    add(
        "--asap",
        metavar="ADDR:PORT",
        action="append",
        help=f"ASAP endpoint, repeatable (default {DEFAULT_ASAP}; port 0 = ephemeral)",
    )
    add("--enrp", metavar="ADDR:PORT", help=f"ENRP endpoint (default {DEFAULT_ENRP})")
    add("--peer", metavar="ADDR:PORT", action="append", default=[], help="static ENRP peer")
    add(
        "--asap-announce",
        metavar="auto|off|ADDR:PORT",
        default="auto",
        help="Server Announce multicast group (auto: 239.0.0.50:3863)",
    )
    add(
        "--enrp-announce",
        metavar="auto|off|ADDR:PORT",
        default="auto",
        help="ENRP Presence multicast group, sent and received (auto: 239.0.0.51:9901)",
    )
    add(
        "--announce-interface",
        metavar="ADDR",
        help="local address whose interface sends and receives multicast "
        "(default 127.0.0.1 when the ASAP address is loopback; required otherwise)",
    )
    add(
        "--min-address-scope",
        metavar="loopback|site-local|global",
        default="site-local",
        help="lowest scope of a PE's user address (default site-local, as rsplib)",
    )
    add(
        "--transport",
        choices=("auto", "tcp", "sctp"),
        default="auto",
        help="auto: kernel SCTP when available, else the TCP mapping",
    )
    add("--endpoint-keepalive-interval", metavar="MS", help="default 5000")
    add("--endpoint-keepalive-timeout", metavar="MS", help="default 5000")
    add("--max-bad-pe-reports", metavar="N", help="default 3")
    add("--max-hr-items", metavar="N", help="default 3")
    add("--max-increment", metavar="N", help="default 0 (the policy's own)")
    add("--peer-heartbeat-interval", metavar="MS", help="Presence period, default 2444")
    add("--peer-max-time-last-heard", metavar="MS", help="default 5000")
    add("--peer-max-time-no-response", metavar="MS", help="default 5000")
    add("--takeover-expiry", metavar="MS", help="default 5000")
    add("--mentor-discovery-timeout", metavar="MS", help="default 5000")
    # Knobs for the robustness features of the issue that rsplib also has (MaxHRRate,
    # MaxEURate) or that we add (peer allow-list, connection limits).
    add("--max-hr-rate", metavar="PER_S", help="handle resolutions/s per PU and pool (off)")
    add("--max-eu-rate", metavar="PER_S", help="unreachable reports/s per PU, pool, PE (off)")
    add("--allow-peer", metavar="ADDR", action="append", help="accept ENRP only from ADDR")
    add("--max-pes-per-connection", metavar="N")
    add(
        "--max-connections",
        metavar="N",
        help="open ASAP connections accepted (default 10000, lowered to fit RLIMIT_NOFILE)",
    )
    add(
        "--max-connections-per-host",
        metavar="N",
        help="ASAP connections one source host may hold (default: a quarter of the limit)",
    )
    add("--max-pool-elements", metavar="N", help="PEs in the handlespace (default 100000)")
    add("--max-peers", metavar="N", help="ENRP peers known at most (default 64)")
    add("--max-pes-per-peer", metavar="N", help="PEs of one other registrar (default 10000)")
    add(
        "--max-peer-pe-rate",
        metavar="PER_S",
        help="PE changes per second one ENRP peer may make (default 5000)",
    )
    add(
        "--buffer-budget",
        metavar="MIB",
        help="memory for all connection buffers together, MiB (default 64)",
    )
    tool_options.add_tls_options(parser)
    add("--cspserver", metavar="ADDR:PORT", help=f"status monitor (default {DEFAULT_CSP_SERVER})")
    add(
        "--cspinterval",
        metavar="MS",
        help="status report interval; reporting is on when --cspserver or --cspinterval is given",
    )
    tool_options.add_trace_options(parser)
    add("--loglevel", default="info", help="debug, info, warning, error, critical or a number")
    add("--logfile", metavar="FILE", help="log to FILE instead of stderr")
    return parser


@dataclass(frozen=True)
class Settings:
    """Everything the command line decided."""

    server_id: int
    config: RegistrarConfig
    options: ServiceOptions
    loglevel: int
    logfile: str | None
    trace: tuple[str, int] | None = None
    trace_raw: bool = False


def settings_from_args(args: argparse.Namespace, rng: random.Random | None = None) -> Settings:
    """Turn parsed arguments into validated settings; raises UsageError."""
    rng = rng or random.SystemRandom()
    server_id = (
        parse_identifier(args.identifier)
        if args.identifier is not None
        else rng.randint(1, 0xFFFF_FFFF)
    )
    asap = tuple(parse_endpoint(text) for text in (args.asap or [DEFAULT_ASAP]))
    enrp = parse_endpoint(args.enrp or DEFAULT_ENRP)
    peers = tuple(parse_endpoint(text, allow_port_zero=False) for text in args.peer)
    asap_announce = parse_announce(args.asap_announce, "--asap-announce", ASAP_ANNOUNCE_GROUP)
    enrp_announce = parse_announce(args.enrp_announce, "--enrp-announce", ENRP_ANNOUNCE_GROUP)
    interface = args.announce_interface
    if interface is not None:
        try:
            ipaddress.IPv4Address(interface)
        except ValueError:
            raise UsageError(
                f"--announce-interface must be an IPv4 address, not {interface!r}"
            ) from None
    elif asap_announce is not None or enrp_announce is not None:
        # Never let multicast leave by the default route: without an explicit interface
        # only a loopback-bound registrar has an obvious choice.
        if all(ipaddress.ip_address(a.host).is_loopback for a in asap):
            interface = "127.0.0.1"
        else:
            raise UsageError(
                "multicast announces need --announce-interface ADDR "
                "(or --asap-announce off --enrp-announce off)"
            )
    try:
        scope = AddressScope.parse(args.min_address_scope)
    except ValueError as exc:
        raise UsageError(f"--min-address-scope: {exc}") from None

    core_values: dict[str, object] = {
        "min_address_scope": scope,
        "static_peers": peers,
        "asap_announce": asap_announce is not None,
        "enrp_announce": enrp_announce is not None,
    }
    ms_options = {
        "endpoint_keepalive_interval": "--endpoint-keepalive-interval",
        "endpoint_keepalive_timeout": "--endpoint-keepalive-timeout",
        "peer_heartbeat_cycle": "--peer-heartbeat-interval",
        "peer_max_time_last_heard": "--peer-max-time-last-heard",
        "peer_max_time_no_response": "--peer-max-time-no-response",
        "takeover_expiry": "--takeover-expiry",
        "mentor_discovery_timeout": "--mentor-discovery-timeout",
    }
    for field_name, option in ms_options.items():
        text = getattr(args, option[2:].replace("-", "_"))
        if text is not None:
            core_values[field_name] = parse_ms(text, option)
    count_options = {
        "max_bad_pe_reports": ("--max-bad-pe-reports", 1),
        "max_hr_items": ("--max-hr-items", 1),
        "max_increment": ("--max-increment", 0),
        "max_pes_per_connection": ("--max-pes-per-connection", 1),
        "max_asap_connections": ("--max-connections", 1),
        "max_pool_elements": ("--max-pool-elements", 1),
        "max_enrp_peers": ("--max-peers", 1),
        "max_pes_per_peer": ("--max-pes-per-peer", 1),
    }
    for field_name, (option, minimum) in count_options.items():
        text = getattr(args, option[2:].replace("-", "_"))
        if text is not None:
            core_values[field_name] = parse_count(text, option, minimum)
    if args.max_hr_rate is not None:
        core_values["max_hr_rate"] = parse_rate(args.max_hr_rate, "--max-hr-rate")
    if args.max_eu_rate is not None:
        core_values["max_eu_rate"] = parse_rate(args.max_eu_rate, "--max-eu-rate")
    if args.max_peer_pe_rate is not None:
        rate = parse_rate(args.max_peer_pe_rate, "--max-peer-pe-rate")
        if rate is None:
            raise UsageError("--max-peer-pe-rate must be a positive rate")
        core_values["max_peer_pe_rate"] = rate
        core_values["max_peer_pe_burst"] = max(1.0, 4 * rate)
    if args.allow_peer:
        allowed = set()
        for text in args.allow_peer:
            try:
                allowed.add(str(ipaddress.ip_address(text.strip())))
            except ValueError:
                raise UsageError(f"--allow-peer takes an IP address, not {text!r}") from None
        core_values["peer_allow_list"] = frozenset(allowed)
    try:
        config = RegistrarConfig(**core_values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    csp_server = None
    csp_interval = DEFAULT_CSP_INTERVAL_MS / 1000.0
    if args.cspserver is not None or args.cspinterval is not None:
        endpoint = parse_endpoint(args.cspserver or DEFAULT_CSP_SERVER, allow_port_zero=False)
        csp_server = (endpoint.host, endpoint.port)
        if args.cspinterval is not None:
            csp_interval = parse_ms(args.cspinterval, "--cspinterval")

    try:
        tls = tool_options.tls(args)
    except ValueError as exc:  # TlsSetupError included
        raise UsageError(str(exc)) from None
    per_host = None
    if args.max_connections_per_host is not None:
        per_host = parse_count(args.max_connections_per_host, "--max-connections-per-host")
    budget = DEFAULT_BUFFER_BUDGET
    if args.buffer_budget is not None:
        budget = parse_count(args.buffer_budget, "--buffer-budget") * 1024 * 1024
    options = ServiceOptions(
        asap=asap,
        enrp=enrp,
        transport="tcp" if tls is not None and args.transport == "auto" else args.transport,
        asap_announce=asap_announce,
        enrp_announce=enrp_announce,
        announce_interface=interface,
        csp_server=csp_server,
        csp_interval=csp_interval,
        max_connections_per_host=per_host,
        buffer_budget=budget,
        tls=tls,
    )
    return Settings(
        server_id=server_id,
        config=config,
        options=options,
        loglevel=parse_loglevel(args.loglevel),
        logfile=args.logfile,
        trace=trace_target(args.trace),
        trace_raw=args.trace_raw,
    )


def trace_target(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    try:
        return parse_server(text)
    except ValueError as exc:
        raise UsageError(f"--trace: {exc}") from None


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Parse the command line; exits with status 2 and one line on bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return settings_from_args(args)
    except UsageError as exc:
        parser.error(str(exc))


def setup_logging(level: int, logfile: str | None) -> None:
    handler: logging.Handler
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def tune_garbage_collector() -> None:
    """Cheaper cycle collections for a process that holds many long-lived PEs.

    A handlespace filling up (a mentor's table, a peer's flood of Handle Updates) makes
    CPython's full collections scan every object again and again, and every client waits
    through those pauses. What was loaded at start-up (modules, codec tables) is frozen,
    so that no collection scans it again.
    """
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    tune_garbage_collector()
    try:
        setup_logging(settings.loglevel, settings.logfile)
    except OSError as exc:
        print(f"rsp-registrar: error: cannot open log file: {exc}", file=sys.stderr)
        return 2
    if settings.trace is not None:
        try:
            start_trace(settings.trace, raw=settings.trace_raw)
        except OSError as exc:
            print(f"rsp-registrar: error: --trace: {exc}", file=sys.stderr)
            return 2
    service = RegistrarService(settings.config, settings.server_id, settings.options)
    try:
        asyncio.run(service.run())
    except KeyboardInterrupt:
        # A second Ctrl-C during shutdown: leave quietly.
        return 130
    except (OSError, TransportError, ValueError) as exc:
        # Cannot bind, no kernel SCTP, no multicast interface...: one line, no traceback.
        if settings.logfile:
            log.error("cannot start: %s", exc)
        print(f"rsp-registrar: error: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
