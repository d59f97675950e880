"""``rsp-hsdump ADDR:PORT ...``: print registrars' handlespaces (like rsplib's ``hsdump``).

For each registrar: connect to its ENRP endpoint, introduce ourselves with a Presence
(reply required; we own no PEs, so our checksum is that of the empty set), wait for its
Presence (its id and ownership checksum), then ask for the whole table with Handle Table
Requests until a response no longer has the M bit (RFC 5353). The
registrar treats us as a visiting peer that owns nothing and has no ENRP endpoint (port
0); when we leave it forgets us at once. With several registrars a last table puts their
checksums side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Sequence

from rsplib.cli_options import ArgumentParser, setup_logging
from rsplib.handlespace.checksum import EMPTY_CHECKSUM
from rsplib.inspect.handlespace_dump import DumpLimitExceeded, HandlespaceDump
from rsplib.registrar.scope import parse_host
from rsplib.status import parse_server
from rsplib.transport import AUTO, SCTP, TCP_MAPPING, ChannelClosed, MessageChannel, connect
from rsplib.wire.constants import PPID, TransportUse
from rsplib.wire.enrp import (
    HandleTableRequest,
    HandleTableResponse,
    Presence,
    decode_enrp,
    encode_enrp,
)
from rsplib.wire.errors import ProtocolError
from rsplib.wire.params import ServerInformation, TcpTransport

PROG = "rsp-hsdump"
#: Handle Table Responses one dump reads at most (each holds many PEs).
MAX_RESPONSES = 10_000


class DumpError(Exception):
    """The registrar could not be dumped; the text says why."""


async def _next_enrp(channel: MessageChannel) -> object:
    while True:
        ppid, data = await channel.receive()
        if ppid != PPID.ENRP:
            continue
        try:
            return decode_enrp(data)
        except ProtocolError as exc:
            raise DumpError(f"undecodable ENRP message: {exc}") from None


async def _dump(channel: MessageChannel, my_id: int, dump: HandlespaceDump) -> None:
    # Port 0: we have no ENRP endpoint, so the registrar forgets us when we leave.
    host = parse_host(channel.local_address[0])
    info = ServerInformation(
        my_id, TcpTransport(0, (host,) if host else (), TransportUse.DATA_ONLY)
    )
    channel.send_nowait(int(PPID.ENRP), encode_enrp(Presence(my_id, 0, EMPTY_CHECKSUM, info, True)))
    while True:
        msg = await _next_enrp(channel)
        if isinstance(msg, Presence) and msg.sender_server_id != my_id:
            dump.server_id = msg.sender_server_id
            dump.reported_checksum = msg.checksum
            break
    request = encode_enrp(HandleTableRequest(my_id, dump.server_id, own_children_only=False))
    channel.send_nowait(int(PPID.ENRP), request)
    while dump.responses < MAX_RESPONSES:
        msg = await _next_enrp(channel)
        if not isinstance(msg, HandleTableResponse):
            continue  # Handle Updates and Presences meanwhile
        if msg.reject:
            raise DumpError("the registrar rejected the Handle Table Request")
        dump.add_response(msg)
        if not msg.more_to_send:
            return
        channel.send_nowait(int(PPID.ENRP), request)
    raise DumpError(f"more than {MAX_RESPONSES} Handle Table Responses")


async def fetch_handlespace(
    host: str,
    port: int,
    *,
    transport: str = TCP_MAPPING,
    timeout: float = 5.0,
    identifier: int | None = None,
) -> HandlespaceDump:
    """The handlespace of the registrar whose ENRP endpoint is ``host:port``."""
    my_id = identifier or random.SystemRandom().randrange(1, 0xFFFFFFFF)
    dump = HandlespaceDump(address=f"{host}:{port}")
    try:
        async with asyncio.timeout(timeout):
            channel = await connect(host, port, transport=transport, timeout=timeout)
            try:
                await _dump(channel, my_id, dump)
            finally:
                await channel.close()
    except TimeoutError:
        raise DumpError(f"no complete answer within {timeout:g} s") from None
    except ChannelClosed as exc:
        raise DumpError(f"connection closed: {exc.reason}") from None
    except OSError as exc:
        raise DumpError(str(exc)) from None
    except DumpLimitExceeded as exc:
        raise DumpError(str(exc)) from None
    return dump


def comparison(dumps: Sequence[HandlespaceDump]) -> str:
    """The ownership checksums of every home registrar, one column per dumped registrar."""
    homes = sorted({home for d in dumps for home in d.checksums()} | {d.server_id for d in dumps})
    header = "home registrar " + "".join(f"  at 0x{d.server_id:08x}" for d in dumps)
    lines = ["Ownership checksums side by side:", header]
    for home in homes:
        cells = []
        for d in dumps:
            found = d.checksums().get(home)
            cells.append(f"{found[0]:#06x} ({found[1]})" if found else "-")
        lines.append(f"0x{home:08x}     " + "".join(f"  {c:>16}" for c in cells))
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Print registrars' handlespaces (pools, PEs, policy, load, home, "
        "transport, lifetime) and ownership checksums via ENRP Handle Table Requests.",
    )
    parser.add_argument("registrar", nargs="+", metavar="ADDR:PORT", help="ENRP endpoint")
    parser.add_argument("--transport", choices=("auto", "tcp", "sctp"), default="tcp")
    parser.add_argument("--timeout", metavar="MS", type=float, default=5000.0)
    parser.add_argument("--identifier", metavar="ID", help="our ENRP server id (random)")
    parser.add_argument("--json", action="store_true", help="one JSON object per registrar")
    parser.add_argument("--loglevel", default="warning")
    parser.add_argument("--logfile", metavar="FILE")
    return parser


async def _run(args: argparse.Namespace, targets: list[tuple[str, int]]) -> int:
    transport = {"auto": AUTO, "tcp": TCP_MAPPING, "sctp": SCTP}[args.transport]
    identifier = int(args.identifier, 0) if args.identifier else None
    dumps: list[HandlespaceDump] = []
    status = 0
    for host, port in targets:
        try:
            dump = await fetch_handlespace(
                host,
                port,
                transport=transport,
                timeout=args.timeout / 1000.0,
                identifier=identifier,
            )
        except DumpError as exc:
            print(f"{PROG}: {host}:{port}: {exc}", file=sys.stderr)
            status = 1
            continue
        dumps.append(dump)
        if args.json:
            print(json.dumps(dump.to_json()))
        else:
            print(dump.text())
            print()
    if len(dumps) > 1 and not args.json:
        print(comparison(dumps))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(args)
        targets = [parse_server(text) for text in args.registrar]
        if args.identifier:
            value = int(args.identifier, 0)
            if not 1 <= value <= 0xFFFFFFFF:
                raise ValueError("--identifier must be in 1..0xffffffff")
        if args.timeout <= 0:
            raise ValueError("--timeout must be positive")
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(_run(args, targets))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
