"""Kernel SCTP: what can be checked without a kernel, plus a loopback run where one exists."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

import pytest

from rsplib.transport import (
    ChannelClosed,
    HeartbeatConfig,
    MessageChannel,
    TransportUnavailable,
    choose_transport,
    connect,
    sctp_available,
    selection,
    start_server,
)
from rsplib.transport.sctp_kernel import (
    IPPROTO_SCTP,
    PADDRPARAMS,
    RCVINFO,
    SNDINFO,
    pack_sndinfo,
    peer_addr_params,
    ppid_from_field,
    ppid_to_field,
    unpack_rcvinfo,
)


def _kernel_probe() -> bool:
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


def test_availability_matches_a_direct_probe() -> None:
    assert sctp_available() is _kernel_probe()


def test_struct_sizes_match_linux_abi() -> None:
    # struct sctp_sndinfo 16, sctp_rcvinfo 28, sctp_paddrparams up to spp_flags (packed,
    # aligned to 4) 152.
    assert (SNDINFO.size, RCVINFO.size, PADDRPARAMS.size) == (16, 28, 152)


@pytest.mark.parametrize("ppid", [11, 12, 32, 0, 0xFAEEB5D1])
def test_sndinfo_carries_ppid_in_network_order(ppid: int) -> None:
    info = pack_sndinfo(ppid, stream=3)
    assert info[4:8] == struct.pack("!I", ppid)
    assert struct.unpack("=H", info[0:2]) == (3,)


def test_rcvinfo_ppid_converted_to_host_order() -> None:
    raw = struct.pack("=HHH2x", 0, 5, 0) + bytes.fromhex("0000000c") + bytes(16)
    info = unpack_rcvinfo(raw)
    assert (info.ppid, info.ssn) == (12, 5)


def test_ppid_field_round_trip_and_range() -> None:
    for ppid in (0, 1, 11, 0x29097601, 0xFFFFFFFF):
        assert ppid_from_field(ppid_to_field(ppid)) == ppid
    for bad in (-1, 1 << 32):
        with pytest.raises(ValueError):
            ppid_to_field(bad)


def test_peer_addr_params_uses_heartbeat_settings() -> None:
    packed = peer_addr_params(HeartbeatConfig(interval=0.5, misses=4))
    assoc, address, hb_ms, max_rxt, mtu, sack, flags = PADDRPARAMS.unpack(packed)
    assert (assoc, address, hb_ms, max_rxt, mtu, sack) == (0, bytes(128), 500, 4, 0, 0)
    assert flags & 1  # SPP_HB_ENABLE


def test_choose_transport_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "sctp_available", lambda: True)
    assert choose_transport("auto") == "sctp"
    assert choose_transport("sctp") == "sctp"
    assert choose_transport("tcp-mapping") == "tcp-mapping"
    monkeypatch.setattr(selection, "sctp_available", lambda: False)
    assert choose_transport("auto") == "tcp-mapping"
    with pytest.raises(TransportUnavailable, match="kernel SCTP"):
        choose_transport("sctp")
    with pytest.raises(ValueError, match="unknown transport"):
        choose_transport("quic")


def test_auto_fallback_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(selection, "sctp_available", lambda: False)
    monkeypatch.setattr(selection, "_fallback_logged", False)
    with caplog.at_level(logging.INFO, logger="rsplib.transport"):
        for _ in range(3):
            choose_transport("auto")
    lines = [r for r in caplog.records if "SCTP" in r.getMessage()]
    assert len(lines) == 1
    assert "TCP mapping" in lines[0].getMessage()


@pytest.mark.skipif(sctp_available(), reason="this kernel has SCTP")
def test_explicit_sctp_without_kernel_support_is_a_clear_error(run: Any) -> None:
    async def handler(channel: MessageChannel) -> None:
        await channel.receive()

    with pytest.raises(TransportUnavailable, match="not available"):
        run(connect("127.0.0.1", 9, transport="sctp"))
    with pytest.raises(TransportUnavailable, match="not available"):
        run(start_server("127.0.0.1", 0, handler, transport="sctp"))


@pytest.mark.sctp
def test_sctp_loopback_round_trip(run: Any) -> None:
    big = bytes(range(256)) * 4096

    async def echo(channel: MessageChannel) -> None:
        while True:
            ppid, payload = await channel.receive()
            await channel.send(ppid, payload)

    async def main() -> None:
        server = await start_server("127.0.0.1", 0, echo, transport="sctp")
        try:
            channel = await connect("127.0.0.1", server.addresses[0][1], transport="sctp")
            assert channel.transport_name == "sctp"
            for ppid, payload in [(11, b"\x01\x00\x00\x04"), (32, big), (0xFAEEB5D1, b"x")]:
                await channel.send(ppid, payload)
                assert await channel.receive() == (ppid, payload)
            await channel.close()
            with pytest.raises(ChannelClosed):
                await channel.receive()
        finally:
            server.close()
            await server.wait_closed()

    run(main())


@pytest.mark.sctp
def test_sctp_max_connections(run: Any) -> None:
    async def hold(channel: MessageChannel) -> None:
        await channel.receive()

    async def main() -> None:
        server = await start_server("127.0.0.1", 0, hold, transport="sctp", max_connections=1)
        try:
            port = server.addresses[0][1]
            first = await connect("127.0.0.1", port, transport="sctp")
            await asyncio.sleep(0.1)
            second = await connect("127.0.0.1", port, transport="sctp")
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(second.receive(), 5)
            first.abort()
        finally:
            server.close()
            await server.wait_closed()

    run(main())
