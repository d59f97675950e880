"""Multicast and unicast UDP on loopback (interface 127.0.0.1, ephemeral ports)."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import pytest

from rsplib.transport import MulticastSender, UdpSender, open_multicast_receiver

LOOPBACK = "127.0.0.1"


def _private_group() -> str:
    # A random administratively scoped group keeps parallel test runs apart.
    return f"239.255.{random.randrange(1, 255)}.{random.randrange(1, 255)}"


@pytest.mark.parametrize("interface", [None, "", "0.0.0.0"])
def test_sender_refuses_missing_interface(interface: Any) -> None:
    with pytest.raises(ValueError, match="interface"):
        MulticastSender("239.0.0.50", 3863, interface)


def test_sender_refuses_non_multicast_group() -> None:
    with pytest.raises(ValueError, match="not a multicast address"):
        MulticastSender("127.0.0.1", 3863, LOOPBACK)


def test_sender_socket_options() -> None:
    with MulticastSender(_private_group(), 9, LOOPBACK, ttl=7) as sender:
        sock = sender._sock
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 7
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP) == 1
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4) == socket.inet_aton(
            LOOPBACK
        )
        assert sender.local_address[0] == LOOPBACK


def test_datagram_reaches_two_receivers_with_announce_source_port(run: Any) -> None:
    group = _private_group()
    # Stand-in for the registrar's listening socket: the announce's UDP source
    # port must equal its port number.
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(1)
    registrar_port = listener.getsockname()[1]

    async def main() -> list[tuple[bytes, tuple[str, int]]]:
        first = await open_multicast_receiver(group, 0, LOOPBACK)
        second = await open_multicast_receiver(group, first.port, LOOPBACK)
        try:
            with MulticastSender(group, first.port, LOOPBACK, bind_port=registrar_port) as sender:
                assert sender.send(b"announce")
                return [
                    await asyncio.wait_for(first.receive(), 3),
                    await asyncio.wait_for(second.receive(), 3),
                ]
        finally:
            first.close()
            second.close()

    try:
        got = run(main())
    finally:
        listener.close()
    assert got == [(b"announce", (LOOPBACK, registrar_port))] * 2


def test_receiver_ignores_other_groups_on_same_port(run: Any) -> None:
    group, other = _private_group(), _private_group()
    while other == group:
        other = _private_group()

    async def main() -> bytes:
        receiver = await open_multicast_receiver(group, 0, LOOPBACK)
        foreign = await open_multicast_receiver(other, receiver.port, LOOPBACK)
        try:
            with MulticastSender(other, receiver.port, LOOPBACK) as sender:
                sender.send(b"not for you")
            with MulticastSender(group, receiver.port, LOOPBACK) as sender:
                sender.send(b"for you")
            data, _source = await asyncio.wait_for(receiver.receive(), 3)
            return data
        finally:
            receiver.close()
            foreign.close()

    assert run(main()) == b"for you"


def test_receiver_iteration_ends_after_close(run: Any) -> None:
    async def main() -> list[bytes]:
        group = _private_group()
        receiver = await open_multicast_receiver(group, 0, LOOPBACK)
        with MulticastSender(group, receiver.port, LOOPBACK) as sender:
            sender.send(b"a")
            sender.send(b"b")
        got: list[bytes] = []
        async for data, _source in receiver:
            got.append(data)
            if len(got) == 2:
                receiver.close()
        return got

    assert run(main()) == [b"a", b"b"]


def test_unicast_sender(run: Any) -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind((LOOPBACK, 0))
    target.settimeout(3)
    try:
        with UdpSender(LOOPBACK, target.getsockname()[1]) as sender:
            assert sender.send(b"status report")
            data, source = target.recvfrom(100)
    finally:
        target.close()
    assert data == b"status report"
    assert source[0] == LOOPBACK
