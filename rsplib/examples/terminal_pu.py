"""Terminal pool user (like rsplib's ``rspterminal``).

    python -m rsplib.examples.terminal_pu --registrar 127.0.0.1:3863 --poolhandle EchoPool

Sends every line read from stdin to a pool element of the pool, prints what
comes back, and prints a notice for every failover. At the end of input it
waits (up to ``--linger`` ms) for the outstanding answers, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from rsplib import cli_options, tool_options
from rsplib.errors import RserPoolError
from rsplib.session.pu_machine import (
    CookieRejected,
    FailoverCompleted,
    FailoverStarted,
    SessionEvent,
)
from rsplib.session.pu_session import PoolUserSession

log = logging.getLogger("rsplib.examples.terminal_pu")


def build_parser() -> argparse.ArgumentParser:
    parser = cli_options.new_parser(
        "python -m rsplib.examples.terminal_pu",
        "RSerPool terminal pool user: sends stdin lines to a pool, prints answers.",
    )
    add = parser.add_argument
    add("--identifier", metavar="ID", help="PU identifier for status reports")
    add(
        "--connect-timeout",
        metavar="MS",
        type=float,
        default=5000.0,
        help="keep looking for a PE this long at start (default 5000)",
    )
    add(
        "--linger",
        metavar="MS",
        type=float,
        default=5000.0,
        help="wait this long for answers after the end of input (default 5000)",
    )
    return parser


def notice(event: SessionEvent) -> None:
    if isinstance(event, FailoverStarted):
        text = f"*** failover: lost {event.old_pe or 'no PE'} ({event.reason.value})"
    elif isinstance(event, FailoverCompleted):
        cookie = "cookie accepted" if event.had_cookie else "no cookie"
        text = f"*** failover: now using {event.new_pe} ({cookie})"
    elif isinstance(event, CookieRejected):
        text = f"*** failover: {event.pe} refused the cookie"
    else:
        return
    print(text, flush=True)


async def _print_answers(session: PoolUserSession, received: list[int]) -> None:
    while True:
        data = await session.read()
        if not data:
            return
        received[0] += len(data)
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()


async def run(args: argparse.Namespace) -> int:
    try:
        session = await PoolUserSession.connect(
            args.poolhandle,
            registrars=cli_options.registrars(args),
            announce=cli_options.announce(args),
            asap_config=cli_options.asap_config(args),
            transport=cli_options.transport_name(args),
            heartbeat=cli_options.heartbeat(args),
            timeout=args.connect_timeout / 1000.0,
            on_event=notice,
            csp=cli_options.csp(args),
            identifier=cli_options.parse_identifier(args.identifier),
            tls=tool_options.tls(args),
        )
    except RserPoolError as exc:
        print(f"terminal_pu: error: {exc}", file=sys.stderr)
        return 1
    print(f"*** connected to {session.pool_element}", flush=True)
    sent = 0
    received = [0]
    printer = asyncio.create_task(_print_answers(session, received))
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.buffer.readline)
            if not line:
                break
            await session.write(line)
            sent += len(line)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.linger / 1000.0
        while received[0] < sent and loop.time() < deadline and not printer.done():
            await asyncio.sleep(0.01)
    except RserPoolError as exc:
        print(f"terminal_pu: error: {exc}", file=sys.stderr)
        return 1
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError, RserPoolError):
            await printer
        await session.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cli_options.check_asap_options(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    cli_options.require_registrar_source(parser, args)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
