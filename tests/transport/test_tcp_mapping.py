"""TCP mapping over real loopback sockets (ephemeral ports only)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

import pytest

from rsplib.transport import (
    ChannelClosed,
    FlowLimits,
    HeartbeatConfig,
    MessageChannel,
    TcpOptions,
    connect,
    start_server,
)
from rsplib.transport.sockopts import TCP_USER_TIMEOUT
from rsplib.transport.tcp_mapping import TcpMappingChannel
from rsplib.wire.tcpmap import (
    MAX_PAYLOAD,
    RecordDecoder,
    RecordType,
    data_record,
    encode_record,
    heartbeat_ack,
)

HOST = "127.0.0.1"
QUIET = HeartbeatConfig(misses=0)


async def echo(channel: MessageChannel) -> None:
    while True:
        ppid, payload = await channel.receive()
        await channel.send(ppid, payload)


async def serve(handler: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("transport", "tcp-mapping")
    return await start_server(HOST, 0, handler, **kwargs)


def test_round_trip_many_messages_including_1mb(run: Any) -> None:
    big = bytes(range(256)) * (MAX_PAYLOAD // 256)
    messages = [(33, bytes([i % 251]) * (i * 37 % 5000)) for i in range(300)]
    messages[1:1] = [(33, big), (34, big[::-1])]
    messages.append((35, big))

    async def main() -> None:
        server = await serve(echo)
        try:
            channel = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")

            async def sender() -> None:
                for ppid, payload in messages:
                    await channel.send(ppid, payload)

            task = asyncio.create_task(sender())
            received = [await channel.receive() for _ in messages]
            await task
            assert received == messages
            await channel.close()
            assert channel.closed
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_split_and_coalesced_writes_from_raw_peer(run: Any) -> None:
    got: list[tuple[int, bytes]] = []

    async def main() -> None:
        finished = asyncio.Event()

        async def collect(channel: MessageChannel) -> None:
            while len(got) < 6:
                got.append(await channel.receive())
            finished.set()

        server = await serve(collect, heartbeat=QUIET)
        try:
            _reader, writer = await asyncio.open_connection(HOST, server.addresses[0][1])
            records = [data_record(40 + i, bytes([i]) * (i * 100)) for i in range(6)]
            coalesced = b"".join(encode_record(r) for r in records[:3])
            writer.write(coalesced)
            await writer.drain()
            for record in records[3:]:
                wire = encode_record(record)
                for i in range(0, len(wire), 7):  # 7-byte pieces, header split too
                    writer.write(wire[i : i + 7])
                    await writer.drain()
                    await asyncio.sleep(0)
            await asyncio.wait_for(finished.wait(), 5)
            assert got == [(r.ppid, r.payload) for r in records]
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_framing_error_closes_only_that_connection(
    run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reasons: list[str] = []

    async def handler(channel: MessageChannel) -> None:
        try:
            while True:
                ppid, payload = await channel.receive()
                await channel.send(ppid, payload)
        except ChannelClosed as exc:
            reasons.append(exc.reason)
            raise

    async def main() -> None:
        server = await serve(handler, heartbeat=QUIET)
        port = server.addresses[0][1]
        try:
            good = await connect(HOST, port, transport="tcp-mapping", heartbeat=QUIET)
            reader, writer = await asyncio.open_connection(HOST, port)
            bad_port = writer.get_extra_info("sockname")[1]
            writer.write(encode_record(data_record(7, b"ok")))
            await writer.drain()
            assert await reader.read(100) == encode_record(data_record(7, b"ok"))
            # ASAP record whose message claims 0x40 bytes in an 8-byte payload.
            writer.write(bytes.fromhex("01000000 00000014 0000000b 01000040 00000000"))
            await writer.drain()
            # The server drops the connection (with a reset).
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(100), 5) == b""
            writer.close()
            # The other connection on the same server is unaffected.
            await good.send(11, bytes.fromhex("0b000008 00000000"))
            assert await good.receive() == (11, bytes.fromhex("0b000008 00000000"))
            await good.close()
        finally:
            server.close()
            await server.wait_closed()
        return bad_port

    with caplog.at_level(logging.DEBUG, logger="rsplib.transport"):
        bad_port = run(main())
    assert len(reasons) >= 1 and reasons[0].startswith("framing error")
    framing_logs = [r for r in caplog.records if "framing" in r.getMessage()]
    assert len(framing_logs) == 1
    assert f"127.0.0.1:{bad_port}" in framing_logs[0].getMessage()


async def _raw_listener() -> tuple[asyncio.Server, list[bytes], int]:
    """A TCP peer that records what it receives and never answers."""
    received: list[bytes] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
        writer.close()

    server = await asyncio.start_server(sink, HOST, 0)
    return server, received, server.sockets[0].getsockname()[1]


def test_heartbeat_timeout_when_peer_never_answers(run: Any) -> None:
    config = HeartbeatConfig(interval=0.2, misses=3)

    async def main() -> tuple[float, str, list[bytes]]:
        server, received, port = await _raw_listener()
        try:
            channel = await connect(HOST, port, transport="tcp-mapping", heartbeat=config)
            start = time.monotonic()
            with pytest.raises(ChannelClosed) as info:
                await channel.receive()
            return time.monotonic() - start, info.value.reason, received
        finally:
            server.close()

    elapsed, reason, received = run(main())
    assert reason == "heartbeat timeout"
    assert config.timeout - 0.05 <= elapsed <= config.timeout + 1.0  # margin for a loaded host
    records = RecordDecoder().feed(b"".join(received))
    assert len(records) >= 2
    assert {r.type for r in records} == {RecordType.HEARTBEAT_REQUEST}


def test_answered_heartbeats_keep_idle_channel_up(run: Any) -> None:
    config = HeartbeatConfig(interval=0.1, misses=3)
    requests = 0

    async def answering_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        decoder = RecordDecoder()
        while data := await reader.read(65536):
            for record in decoder.feed(data):
                if record.type is RecordType.HEARTBEAT_REQUEST:
                    requests += 1
                    writer.write(encode_record(heartbeat_ack(record)))
                elif record.type is RecordType.DATA:
                    writer.write(encode_record(record))
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answering_peer, HOST, 0)
        try:
            channel = await connect(
                HOST, server.sockets[0].getsockname()[1], transport="tcp-mapping", heartbeat=config
            )
            await asyncio.sleep(config.timeout * 3)
            assert not channel.closed, channel.close_reason
            await channel.send(50, b"still here")
            assert await channel.receive() == (50, b"still here")
            await channel.close()
        finally:
            server.close()

    run(main())
    assert requests >= 5


def test_two_idle_channels_keep_each_other_up(run: Any) -> None:
    config = HeartbeatConfig(interval=0.1, misses=2)

    async def main() -> None:
        server = await serve(echo, heartbeat=config)
        try:
            channel = await connect(
                HOST, server.addresses[0][1], transport="tcp-mapping", heartbeat=config
            )
            await asyncio.sleep(config.timeout * 4)
            await channel.send(51, b"x")
            assert await channel.receive() == (51, b"x")
            await channel.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def _socket_of(channel: MessageChannel) -> Any:
    assert isinstance(channel, TcpMappingChannel)
    return channel.get_extra_info("socket")


def test_keepalive_user_timeout_and_nodelay_set_on_both_ends(run: Any) -> None:
    options = TcpOptions(user_timeout_ms=1500)
    seen: list[Any] = []

    async def main() -> None:
        accepted: asyncio.Future[MessageChannel] = asyncio.get_running_loop().create_future()

        async def handler(channel: MessageChannel) -> None:
            accepted.set_result(channel)
            await channel.receive()

        server = await serve(handler, tcp_options=options)
        try:
            client = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")
            server_side = await asyncio.wait_for(accepted, 5)
            for channel, expected_timeout in ((client, 2000), (server_side, 1500)):
                sock = _socket_of(channel)
                seen.append(
                    (
                        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                        sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                        expected_timeout,
                    )
                )
            await client.close()
        finally:
            server.close()
            await server.wait_closed()

    run(main())
    assert len(seen) == 2
    for keepalive, idle, interval, count, user_timeout, nodelay, expected in seen:
        assert (keepalive != 0, idle, interval, count, nodelay != 0) == (True, 1, 1, 2, True)
        assert user_timeout == expected


def test_send_blocks_when_peer_does_not_read(run: Any) -> None:
    limits = FlowLimits(write_high=128 * 1024, write_low=32 * 1024)
    chunk = b"\xab" * 65536

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.setblocking(False)
        accept = loop.create_task(loop.sock_accept(listener))
        channel = await connect(
            HOST, listener.getsockname()[1], transport="tcp-mapping", heartbeat=QUIET, limits=limits
        )
        assert isinstance(channel, TcpMappingChannel)
        peer, _addr = await accept
        sent = 0
        largest_buffer = 0
        try:
            while sent < 256 * 1024 * 1024:
                try:
                    await asyncio.wait_for(channel.send(60, chunk), 0.5)
                except TimeoutError:
                    break
                sent += len(chunk)
                transport = channel._transport
                assert transport is not None
                largest_buffer = max(largest_buffer, transport.get_write_buffer_size())
        finally:
            channel.abort()
            peer.close()
            listener.close()
        return sent, largest_buffer

    sent, largest_buffer = run(main())
    assert sent < 64 * 1024 * 1024  # blocked long before buffering everything
    assert largest_buffer <= 128 * 1024 + 65536 + 12


def test_receive_queue_is_bounded_and_peer_is_slowed(run: Any) -> None:
    limits = FlowLimits(receive_messages=16, receive_bytes=256 * 1024)
    count = 600
    payload = b"\x5a" * 65536

    async def main() -> tuple[int, int]:
        accepted: asyncio.Future[MessageChannel] = asyncio.get_running_loop().create_future()

        async def handler(channel: MessageChannel) -> None:
            accepted.set_result(channel)
            await asyncio.Event().wait()  # hold the channel open, read nothing

        server = await serve(handler, heartbeat=QUIET, limits=limits)
        try:
            _reader, writer = await asyncio.open_connection(HOST, server.addresses[0][1])
            written = 0

            async def flood() -> None:
                nonlocal written
                for _ in range(count):
                    writer.write(encode_record(data_record(61, payload)))
                    await writer.drain()
                    written += 1

            flooding = asyncio.create_task(flood())
            channel = await asyncio.wait_for(accepted, 5)
            assert isinstance(channel, TcpMappingChannel)
            await asyncio.sleep(0.5)
            stalled_at = written
            queued = channel._queued_bytes
            assert not flooding.done()
            received = [await channel.receive() for _ in range(count)]
            assert all(m == (61, payload) for m in received)
            await flooding
            writer.close()
            return stalled_at, queued
        finally:
            server.close()
            await server.wait_closed()

    stalled_at, queued = run(main())
    assert stalled_at < count
    # Bound: the limit plus what one read can complete.
    assert queued <= limits.receive_bytes + 512 * 1024


def test_max_connections_refuses_extra(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        server = await serve(echo, max_connections=1)
        port = server.addresses[0][1]
        try:
            first = await connect(HOST, port, transport="tcp-mapping")
            await first.send(70, b"one")
            assert await first.receive() == (70, b"one")
            # Reset right after accept: the client sees it while connecting or on receive.
            with pytest.raises((ChannelClosed, ConnectionError)):
                second = await connect(HOST, port, transport="tcp-mapping")
                await asyncio.wait_for(second.receive(), 5)
            await first.close()
            for _ in range(100):  # the server notices the close asynchronously
                if server.connection_count == 0:
                    break
                await asyncio.sleep(0.01)
            third = await connect(HOST, port, transport="tcp-mapping")
            await third.send(70, b"three")
            assert await third.receive() == (70, b"three")
            await third.close()
        finally:
            server.close()
            await server.wait_closed()

    with caplog.at_level(logging.WARNING, logger="rsplib.transport"):
        run(main())
    assert len([r for r in caplog.records if "refusing" in r.getMessage()]) == 1


def test_close_delivers_pending_messages_then_eof(run: Any) -> None:
    async def main() -> None:
        accepted: asyncio.Future[MessageChannel] = asyncio.get_running_loop().create_future()

        async def handler(channel: MessageChannel) -> None:
            accepted.set_result(channel)
            await asyncio.Event().wait()

        server = await serve(handler)
        try:
            client = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")
            for i in range(20):
                client.send_nowait(80, bytes([i]) * 1000)
            await client.close()
            with pytest.raises(ChannelClosed):
                client.send_nowait(80, b"late")
            peer = await accepted
            got = [await peer.receive() for _ in range(20)]
            assert got == [(80, bytes([i]) * 1000) for i in range(20)]
            with pytest.raises(ChannelClosed) as info:
                await peer.receive()
            assert "EOF" in info.value.reason
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_abort_resets_the_peer(run: Any) -> None:
    async def main() -> str:
        accepted: asyncio.Future[MessageChannel] = asyncio.get_running_loop().create_future()

        async def handler(channel: MessageChannel) -> None:
            accepted.set_result(channel)
            await asyncio.Event().wait()

        server = await serve(handler, heartbeat=QUIET)
        try:
            client = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")
            peer = await accepted
            client.abort()
            assert client.close_reason == "aborted locally"
            with pytest.raises(ChannelClosed) as info:
                await peer.receive()
            return info.value.reason
        finally:
            server.close()
            await server.wait_closed()

    reason = run(main())
    assert "reset" in reason.lower()


def test_connect_refused_raises_oserror(run: Any) -> None:
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    with pytest.raises(OSError):
        run(connect(HOST, port, transport="tcp-mapping", timeout=2))
