"""``fractal-pe``: the fractal generator pool element (rsplib's ``rspserver -fractal``).

    fractal-pe --registrar 127.0.0.1:3863 --identifier 0x100 --policy LeastUsed \\
        --cookie-key-file pool.key --cspserver 127.0.0.1:2960 --cspinterval 250

Options mirror rsplib's (``-fgpmaxthreads`` -> ``--max-threads`` and so on;
times in milliseconds). Cookies are signed with the pool's key from
``--cookie-key-file`` or ``$RSERPOOL_COOKIE_KEY``; without a key the PE runs
only with ``--accept-unsigned-cookies`` (rsplib's plain 76-byte cookies, which
anyone can forge). SIGINT/SIGTERM: deregister, flush every session's data,
send a final cookie, end the sessions (their pool users fail over without
recomputing anything), stop. Bad arguments: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from fractal_pe.kernel import KERNEL_CHOICES, KernelUnavailableError, prepare_kernel
from fractal_pe.service import FractalService, FractalServiceConfig, fractal_cookie_policy
from rsplib import cli_options, tool_options
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.session.cookies import CookieKeyError, CookiePolicy, CookieSealer, load_cookie_key
from rsplib.session.pe_server import PoolElementServer
from rsplib.wire.constants import PPID

log = logging.getLogger("fractal_pe")

DEFAULT_POOL_HANDLE = "FractalGeneratorPool"
PROG = "fractal-pe"


def build_parser() -> argparse.ArgumentParser:
    parser = cli_options.new_parser(
        PROG,
        "Fractal generator pool element: computes Mandelbrot rectangles for "
        "fractal pool users (FGP), with signed state cookies for failover.",
        pool_handle=DEFAULT_POOL_HANDLE,
    )
    add = parser.add_argument
    add(
        "--identifier",
        metavar="ID",
        help="PE identifier, hex (0x...) or decimal (default: random)",
    )
    add("--policy", default="RoundRobin", help="pool policy, rsplib syntax (default RoundRobin)")
    add(
        "--local",
        metavar="ADDR:PORT",
        default="127.0.0.1:0",
        help="listen here, port 0: any (default %(default)s)",
    )
    add(
        "--advertise",
        metavar="ADDR",
        action="append",
        default=[],
        help="address to register, repeatable (default: the --local address)",
    )
    add(
        "--rereginterval",
        metavar="MS",
        type=float,
        default=30000.0,
        help="re-register this often (default 30000)",
    )
    add(
        "--max-threads",
        metavar="N",
        type=int,
        default=4,
        help="concurrent sessions (default 4)",
    )
    add(
        "--failure-after",
        metavar="N",
        type=int,
        default=0,
        help="after N data messages send a cookie and drop the session (0 = off)",
    )
    add(
        "--cookie-max-packets",
        metavar="N",
        type=int,
        default=10,
        help="send a state cookie after at most N data messages (default 10)",
    )
    add(
        "--cookie-max-time",
        metavar="MS",
        type=float,
        default=1000.0,
        help="send a state cookie at least this often (default 1000)",
    )
    add(
        "--data-max-time",
        metavar="MS",
        type=float,
        default=1000.0,
        help="send the pixels computed so far at least this often (default 1000)",
    )
    add(
        "--transmit-timeout",
        metavar="MS",
        type=float,
        default=2500.0,
        help="give up a session when sending to its pool user takes this long (default 2500)",
    )
    add("--test-mode", action="store_true", help="draw a cheap test pattern, no fractal maths")
    add(
        "--block-delay",
        metavar="MS",
        type=float,
        default=0.0,
        help="pause after each block of at most 324 pixels (demos/tests; default 0 = off)",
    )
    add(
        "--kernel",
        choices=KERNEL_CHOICES,
        help="numpy, numba or auto (default: $FRACTAL_KERNEL, else auto)",
    )
    add("--cookie-key-file", metavar="FILE", help="pool cookie key (else $RSERPOOL_COOKIE_KEY)")
    add("--encrypt-cookies", action="store_true", help="also encrypt the cookies (AES-GCM)")
    add(
        "--accept-unsigned-cookies",
        action="store_true",
        help="also accept rsplib's unsigned 76-byte cookies (anyone can forge them)",
    )
    return parser


def service_config(args: argparse.Namespace) -> FractalServiceConfig:
    """Validated service settings; ValueError names the option."""
    for option in ("cookie_max_time", "data_max_time", "transmit_timeout"):
        if not getattr(args, option) > 0:
            raise ValueError(f"--{option.replace('_', '-')} must be positive milliseconds")
    if args.max_threads < 1:
        raise ValueError("--max-threads must be at least 1")
    if args.failure_after < 0:
        raise ValueError("--failure-after must be 0 (off) or positive")
    if args.block_delay < 0:
        raise ValueError("--block-delay must not be negative")
    if args.cookie_max_packets < 1:
        raise ValueError("--cookie-max-packets must be at least 1")
    return FractalServiceConfig(
        max_threads=args.max_threads,
        failure_after=args.failure_after,
        cookie_max_packets=args.cookie_max_packets,
        cookie_max_time=args.cookie_max_time / 1000.0,
        data_max_time=args.data_max_time / 1000.0,
        transmit_timeout=args.transmit_timeout / 1000.0,
        test_mode=args.test_mode,
        kernel=args.kernel,
        block_delay=args.block_delay / 1000.0,
    )


def cookie_policy(args: argparse.Namespace) -> CookiePolicy:
    """The cookie rules; raises CookieKeyError when no key is given and unsigned is not allowed."""
    sealer = None
    try:
        key = load_cookie_key(args.cookie_key_file)
    except CookieKeyError:
        if args.cookie_key_file is not None or not args.accept_unsigned_cookies:
            raise
    else:
        sealer = CookieSealer(key, args.poolhandle.encode(), encrypt=args.encrypt_cookies)
    return fractal_cookie_policy(sealer, accept_unsigned=args.accept_unsigned_cookies)


async def run(args: argparse.Namespace) -> int:
    config = service_config(args)
    cookies = cookie_policy(args)
    kernel = (
        "test pattern"
        if config.test_mode
        else await asyncio.to_thread(prepare_kernel, config.kernel)
    )
    service = FractalService(config)
    host, port = cli_options.listen_address(args.local)
    server = PoolElementServer(
        args.poolhandle,
        service.handle,
        policy=parse_policy(args.policy),
        identifier=cli_options.parse_identifier(args.identifier),
        max_sessions=config.max_threads,
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
        ppid=int(PPID.FGP),
        csp=cli_options.csp(args),
        tls=tool_options.tls(args),
    )
    stop = cli_options.stop_on_signals()
    await server.start()
    server.asap.add_listener(cli_options.registration_logger(log, server.identifier))
    log.info(
        "fractal PE 0x%08x ready: pool %s on %s:%d (%s), kernel %s, max %d sessions",
        server.identifier,
        args.poolhandle,
        *server.address,
        server.transport_name,
        kernel,
        config.max_threads,
    )
    try:
        await stop.wait()
    finally:
        log.info("fractal PE 0x%08x shutting down", server.identifier)
        # Deregister first, so pool users failing over are not sent back here; then hand
        # every session over (flush, final cookie, close); then stop the server.
        with contextlib.suppress(Exception):
            await server.asap.deregister(server.pool_handle, server.identifier, timeout=1.0)
        await service.shutdown(timeout=max(2.0, 2 * config.transmit_timeout))
        await server.close(deregister_timeout=0.5)
        counters = service.counters
        log.info(
            "fractal PE 0x%08x stopped: %d sessions, %d completed, %d handed over, "
            "%d data messages, %d cookies, %d cookies rejected",
            server.identifier,
            counters.sessions,
            counters.completed,
            counters.handed_over,
            counters.data_messages,
            counters.cookies,
            server.cookies.rejected,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cli_options.check_asap_options(args)
        parse_policy(args.policy)
        service_config(args)
        cookie_policy(args)
        if args.rereginterval < 10:
            raise ValueError("--rereginterval must be at least 10 ms")
    except CookieKeyError as exc:
        parser.error(f"{exc} (or run with --accept-unsigned-cookies)")
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    cli_options.require_registrar_source(parser, args)
    try:
        return asyncio.run(run(args))
    except KernelUnavailableError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
