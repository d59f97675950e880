"""Echo pool element (like rsplib's ``rspserver -echo``).

    python -m rsplib.examples.echo_pe --registrar 127.0.0.1:3863 --poolhandle EchoPool \\
        --identifier 0x100 --policy RoundRobin --cspserver 127.0.0.1:2960

Every message comes back unchanged (same PPID). After each one the PE sends
a state cookie holding the number of bytes echoed in the session so far
(8 bytes, big-endian); a session that starts with a Cookie Echo continues
counting from there, so a failover is visible in the cookies the pool user
receives. With ``--cookie-key FILE`` (or ``--seal-cookies`` and the
``RSERPOOL_COOKIE_KEY`` variable) the cookies are signed, and with
``--encrypt-cookies`` also encrypted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct
import sys
from collections.abc import Sequence

from rsplib import cli_options, tool_options
from rsplib.errors import SessionClosed
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.session.cookies import (
    CookieKeyError,
    CookiePolicy,
    CookieRejection,
    CookieSealer,
    load_cookie_key,
)
from rsplib.session.pe_server import PeSession, PoolElementServer

log = logging.getLogger("rsplib.examples.echo_pe")

_COUNT = struct.Struct("!Q")


def build_parser() -> argparse.ArgumentParser:
    parser = cli_options.new_parser(
        "python -m rsplib.examples.echo_pe",
        "RSerPool echo pool element: echoes every message, sends a state cookie.",
    )
    add = parser.add_argument
    add(
        "--identifier", metavar="ID", help="PE identifier, hex (0x...) or decimal; random if absent"
    )
    add("--policy", default="RoundRobin", help="pool policy, e.g. LeastUsed (default RoundRobin)")
    add("--local", metavar="ADDR:PORT", default="127.0.0.1:0", help="listen here (port 0: any)")
    add(
        "--advertise",
        metavar="ADDR",
        action="append",
        default=[],
        help="address to register (default: the listening address)",
    )
    add("--maxsessions", metavar="N", type=int, help="session limit (load = sessions/N)")
    add(
        "--rereginterval",
        metavar="MS",
        type=float,
        default=30000.0,
        help="re-registration interval (default 30000)",
    )
    add("--cookie-key", metavar="FILE", help="sign cookies with the key in FILE")
    add(
        "--seal-cookies",
        action="store_true",
        help="sign cookies with the key in $RSERPOOL_COOKIE_KEY",
    )
    add("--encrypt-cookies", action="store_true", help="also encrypt signed cookies")
    return parser


async def echo_session(session: PeSession) -> None:
    """Echo every message; a cookie after each one with the byte count so far."""
    echoed = 0
    if session.cookie is not None and len(session.cookie) == _COUNT.size:
        (echoed,) = _COUNT.unpack(session.cookie)
        log.info(
            "session %d from %s:%d restored from a Cookie Echo (%d bytes echoed before)",
            session.number,
            *session.peer_address,
            echoed,
        )
    else:
        log.info("session %d from %s:%d started", session.number, *session.peer_address)
    try:
        while True:
            message = await session.read_message()
            await session.write(message.data, ppid=message.ppid)
            echoed += len(message.data)
            session.status_text = f"Echoed {echoed} bytes"
            await session.send_cookie(_COUNT.pack(echoed))
    except SessionClosed:
        log.info("session %d ended after %d bytes", session.number, echoed)


async def run(args: argparse.Namespace) -> int:
    host, port = cli_options.listen_address(args.local)
    # The echo cookie is only a byte count: a session whose cookie is refused is simply
    # served afresh (START_FRESH) rather than closed, so no line is lost.
    cookies = CookiePolicy(on_rejection=CookieRejection.START_FRESH)
    if args.cookie_key or args.seal_cookies:
        key = load_cookie_key(args.cookie_key)
        sealer = CookieSealer(key, args.poolhandle.encode(), encrypt=args.encrypt_cookies)
        cookies = CookiePolicy.signed(sealer, on_rejection=CookieRejection.START_FRESH)
    server = PoolElementServer(
        args.poolhandle,
        echo_session,
        policy=parse_policy(args.policy),
        identifier=cli_options.parse_identifier(args.identifier),
        max_sessions=args.maxsessions,
        cookies=cookies,
        local_address=host,
        port=port,
        advertise=args.advertise,
        registrars=cli_options.registrars(args),
        announce=cli_options.announce(args),
        asap_config=cli_options.asap_config(
            args, reregistration_interval=args.rereginterval / 1000.0
        ),
        transport=cli_options.transport_name(args),
        heartbeat=cli_options.heartbeat(args),
        csp=cli_options.csp(args),
        tls=tool_options.tls(args),
    )
    stop = cli_options.stop_on_signals()
    await server.start()
    server.asap.add_listener(cli_options.registration_logger(log, server.identifier))
    log.info(
        "echo PE 0x%08x ready: pool %s on %s:%d (%s)",
        server.identifier,
        args.poolhandle,
        *server.address,
        server.transport_name,
    )
    try:
        await stop.wait()
    finally:
        log.info("echo PE 0x%08x shutting down", server.identifier)
        await server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cli_options.check_asap_options(args)
        parse_policy(args.policy)
        if args.rereginterval < 10:
            raise ValueError("--rereginterval must be at least 10 ms")
    except (ValueError, OSError, CookieKeyError) as exc:
        parser.error(str(exc))
    cli_options.require_registrar_source(parser, args)
    try:
        return asyncio.run(run(args))
    except CookieKeyError as exc:
        print(f"echo_pe: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"echo_pe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
