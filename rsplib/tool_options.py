"""Options every command-line tool of the project has: the live trace and TLS.

Kept apart from :mod:`rsplib.cli_options` (the pool-element and pool-user plumbing) so
that the registrar's command line can use them without depending on the PE/PU layers.
"""

from __future__ import annotations

import argparse

from rsplib import trace
from rsplib.status import parse_server
from rsplib.transport import TlsConfig, tls_config


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    """``--trace ADDR:PORT`` and ``--trace-raw`` (every component has them)."""
    parser.add_argument(
        "--trace",
        metavar="ADDR:PORT",
        help="send a live trace of every ASAP/ENRP/FGP message and of events (UDP)",
    )
    parser.add_argument(
        "--trace-raw",
        action="store_true",
        help="include each traced message's bytes (up to 512) in hex",
    )


def start_trace(args: argparse.Namespace) -> None:
    """Turns the process's tracer on when ``--trace`` was given (ValueError if malformed)."""
    if getattr(args, "trace", None):
        trace.start_trace(parse_server(args.trace), raw=bool(args.trace_raw))


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert/--tls-key/--tls-ca`` (every component has them; see :func:`tls`)."""
    add = parser.add_argument
    add("--tls-cert", metavar="FILE", help="TLS: our certificate chain (PEM); TCP mapping only")
    add("--tls-key", metavar="FILE", help="TLS: the certificate's private key (PEM)")
    add("--tls-ca", metavar="FILE", help="TLS: CA certificates that peers must chain to (PEM)")


def tls(args: argparse.Namespace) -> TlsConfig | None:
    """TLS from ``--tls-cert/--tls-key/--tls-ca`` (all or none); ValueError if unusable."""
    config = tls_config(args.tls_cert, args.tls_key, args.tls_ca)
    if config is not None and args.transport == "sctp":
        raise ValueError("TLS (--tls-*) works over the TCP mapping only: use --transport tcp")
    return config
