"""Kernel SCTP channels on loopback: PPIDs, message boundaries, notifications, loss, tuning.

Marked ``sctp``: they run where the kernel has SCTP, else inside the lab VM.
"""

from __future__ import annotations

import asyncio
import ctypes
import signal
import socket
import subprocess
import sys
from typing import Any, cast

import pytest

from rsplib.transport import ChannelClosed, HeartbeatConfig, MessageChannel, connect, start_server
from rsplib.transport.sctp_events import (
    ASSOCPARAMS,
    RTOINFO,
    SCTP_ASSOCINFO,
    SCTP_RTOINFO,
)
from rsplib.transport.sctp_kernel import (
    PADDRPARAMS,
    SCTP_PEER_ADDR_PARAMS,
    SOL_SCTP,
    SctpChannel,
)

pytestmark = pytest.mark.sctp

# Sizes around the interesting limits: one byte, one packet, several packets (the
# kernel fragments), more than the receive chunk (partial delivery), about 1 MB.
SIZES = [1, 4, 1452, 1453, 9000, 65537, 300_001, 1_000_000]


def getsockopt_zeroed(sock: socket.socket, option: int, size: int) -> bytes:
    """getsockopt with a zeroed input buffer (Python's passes uninitialised memory, and
    SCTP_PEER_ADDR_PARAMS reads the address to look up from it: zero means the
    association's own settings)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    if libc.getsockopt(sock.fileno(), SOL_SCTP, option, buffer, ctypes.byref(length)) != 0:
        raise OSError(ctypes.get_errno(), "getsockopt")
    return buffer.raw[: length.value]


async def sctp_server(handler: Any, **options: Any) -> Any:
    return await start_server("127.0.0.1", 0, handler, transport="sctp", **options)


async def sctp_connect(server: Any, **options: Any) -> SctpChannel:
    channel = await connect("127.0.0.1", server.addresses[0][1], transport="sctp", **options)
    return cast(SctpChannel, channel)


def test_ppids_and_message_boundaries_in_both_directions(run: Any) -> None:
    async def greet_then_echo(channel: MessageChannel) -> None:
        # The server speaks first, with its own PPIDs, then echoes everything back.
        for ppid in (12, 11, 32):
            await channel.send(ppid, b"hello with PPID %d" % ppid)
        while True:
            ppid, payload = await channel.receive()
            await channel.send(ppid, payload)

    async def main() -> None:
        server = await sctp_server(greet_then_echo)
        try:
            channel = await sctp_connect(server)
            for ppid in (12, 11, 32):
                assert await channel.receive() == (ppid, b"hello with PPID %d" % ppid)
            sent = []
            for index, size in enumerate(SIZES * 3):
                ppid = (11, 12, 32, 0xFAEEB5D1)[index % 4]
                payload = bytes([index % 251]) * size
                channel.send_nowait(ppid, payload)  # back to back: boundaries must hold
                sent.append((ppid, payload))
            for expected in sent:
                assert await asyncio.wait_for(channel.receive(), 10) == expected
            await channel.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main(), 60)


def test_an_abort_from_the_peer_is_reported_as_a_lost_association(run: Any) -> None:
    async def abort_after_first(channel: MessageChannel) -> None:
        await channel.receive()
        channel.abort()

    async def main() -> None:
        server = await sctp_server(abort_after_first)
        try:
            channel = await sctp_connect(server)
            await channel.send(11, b"bye")
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(channel.receive(), 5)
            assert channel.close_reason is not None
            assert "COMM_LOST" in channel.close_reason, channel.close_reason
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_a_graceful_close_by_the_peer_is_reported_as_its_shutdown(run: Any) -> None:
    async def answer_and_close(channel: MessageChannel) -> None:
        ppid, payload = await channel.receive()
        await channel.send(ppid, payload)
        await channel.close()

    async def main() -> None:
        server = await sctp_server(answer_and_close)
        try:
            channel = await sctp_connect(server)
            await channel.send(32, b"last words")
            # The answer sent before the shutdown is still delivered, then the close.
            assert await asyncio.wait_for(channel.receive(), 5) == (32, b"last words")
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(channel.receive(), 5)
            assert channel.close_reason is not None
            assert "SHUTDOWN" in channel.close_reason, channel.close_reason
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_heartbeat_and_path_failure_settings_reach_the_kernel(run: Any) -> None:
    heartbeat = HeartbeatConfig(interval=0.4, misses=2)

    async def hold(channel: MessageChannel) -> None:
        await channel.receive()

    async def main() -> None:
        server = await sctp_server(hold, heartbeat=heartbeat)
        try:
            channel = await sctp_connect(server, heartbeat=heartbeat)
            sock = channel._sock
            params = getsockopt_zeroed(sock, SCTP_PEER_ADDR_PARAMS, PADDRPARAMS.size)
            _assoc, _addr, hb_ms, path_max_rxt, _mtu, _sack, flags = PADDRPARAMS.unpack(params)
            assert (hb_ms, path_max_rxt) == (400, 2)
            assert flags & 1  # SPP_HB_ENABLE
            rto = RTOINFO.unpack(sock.getsockopt(SOL_SCTP, SCTP_RTOINFO, RTOINFO.size))
            assert rto[1:] == (400, 400, 400)  # initial, max, min: within one interval
            assoc = ASSOCPARAMS.unpack(sock.getsockopt(SOL_SCTP, SCTP_ASSOCINFO, ASSOCPARAMS.size))
            assert assoc[1] == 4  # association failure after 2 misses on each of 2 paths
            assert channel.peer_addresses() == [("127.0.0.1", server.addresses[0][1])]
            channel.abort()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


PEER_PROCESS = """
import socket, sys
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.recv(100)
sys.stdin.read()
"""


def test_a_killed_peer_process_ends_the_association_at_once(run: Any) -> None:
    peer = subprocess.Popen(
        [sys.executable, "-c", PEER_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())

        async def main() -> None:
            channel = await connect("127.0.0.1", port, transport="sctp")
            await channel.send(11, b"one")  # read by the peer
            await channel.send(11, b"two")  # left unread: the kernel aborts on exit
            await asyncio.sleep(0.2)
            loop = asyncio.get_running_loop()
            killed_at = loop.time()
            peer.send_signal(signal.SIGKILL)
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(channel.receive(), 5)
            assert loop.time() - killed_at < 2.0
            assert channel.close_reason is not None and "COMM_LOST" in channel.close_reason

        run(main())
    finally:
        peer.kill()
        peer.wait()


def test_kernel_sctp_is_really_in_use(run: Any) -> None:
    """Guards the other tests: a channel here is an SCTP socket, not the TCP mapping."""

    async def hold(channel: MessageChannel) -> None:
        await channel.receive()

    async def main() -> None:
        server = await sctp_server(hold)
        try:
            channel = await sctp_connect(server)
            assert channel.transport_name == "sctp"
            assert channel._sock.proto == socket.IPPROTO_SCTP
            channel.abort()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_an_endpoint_bound_to_two_addresses_offers_both_as_paths(run: Any) -> None:
    async def hold(channel: MessageChannel) -> None:
        await channel.receive()

    async def main() -> None:
        server = await start_server(["127.0.0.1", "127.0.0.2"], 0, hold, transport="sctp")
        try:
            port = server.addresses[0][1]
            channel = await sctp_connect(server)
            assert sorted(channel.peer_addresses()) == [("127.0.0.1", port), ("127.0.0.2", port)]
            channel.abort()
        finally:
            server.close()
            await server.wait_closed()

    run(main())
