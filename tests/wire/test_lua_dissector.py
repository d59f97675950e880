"""The Wireshark Lua dissector for TCP-mapping records, on a real loopback capture.

A real TCP connection on 127.0.0.1 (ephemeral port) carries TCP-mapping
records with ASAP messages, some split across several writes, some coalesced
into one write. dumpcap records it; tshark with the Lua script must find every
ASAP message (types, pool handle) without a malformed frame, and rsp-decode
must read the same capture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsplib.wire.asap import (
    EndpointKeepAliveAck,
    HandleResolution,
    Registration,
    ServerAnnounce,
    encode_asap,
)
from rsplib.wire.constants import AsapType, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport, ip
from rsplib.wire.tcpmap import Record, RecordType, encode_record
from tests.support import LoopbackCapture

LUA = Path(__file__).resolve().parents[2] / "assets" / "wireshark" / "rserpool-tcp-mapping.lua"
POOL = b"FractalGeneratorPool"

MESSAGES = [
    encode_asap(
        Registration(
            POOL,
            PoolElementParam(
                0x12345678,
                0,
                90_000,
                TcpTransport(7000, (ip("127.0.0.1"),)),
                PolicyParam(PolicyType.ROUND_ROBIN),
            ),
        )
    ),
    encode_asap(HandleResolution(POOL, items=1)),
    encode_asap(EndpointKeepAliveAck(POOL, 0x12345678)),
    encode_asap(ServerAnnounce(server_id=7)),
    encode_asap(HandleResolution(POOL)),
]
EXPECTED_TYPES = [
    AsapType.REGISTRATION,
    AsapType.HANDLE_RESOLUTION,
    AsapType.ENDPOINT_KEEP_ALIVE_ACK,
    AsapType.SERVER_ANNOUNCE,
    AsapType.HANDLE_RESOLUTION,
]


def _record(payload: bytes) -> bytes:
    return encode_record(Record(RecordType.DATA, 11, payload))


@pytest.fixture(scope="module")
def loopback_capture(
    tshark_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    """Capture one TCP-mapping conversation on lo; yields (file, server port)."""
    if os.geteuid() != 0:
        pytest.skip("capturing on lo needs root")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    tmp_path = tmp_path_factory.mktemp("lua")
    capture = LoopbackCapture(f"port {port}", tmp_path / "tcpmap.pcapng", tmp_path / "dumpcap.log")
    try:
        capture.wait_ready(port, timeout=15)
        _converse(server)
        time.sleep(0.3)  # let the last packets (FIN/ACK) through the pipe
    finally:
        server.close()
        capture.stop()
    yield capture.path, port


def _converse(server: socket.socket) -> None:
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer, _ = server.accept()
    try:
        records = [_record(m) for m in MESSAGES]
        # 1: split into three writes, pausing so they leave as separate segments
        first = records[0]
        for piece in (first[:5], first[5:17], first[17:]):
            client.sendall(piece)
            time.sleep(0.05)
        # 2 + 3: coalesced into one write
        client.sendall(records[1] + records[2])
        time.sleep(0.05)
        # 4 + start of 5, then the rest of 5
        client.sendall(records[3] + records[4][:9])
        time.sleep(0.05)
        client.sendall(records[4][9:])
        # Drain on the server side so nothing is left unacknowledged.
        expected = sum(len(r) for r in records)
        received = b""
        peer.settimeout(5)
        while len(received) < expected:
            chunk = peer.recv(65536)
            if not chunk:
                break
            received += chunk
        assert received == b"".join(records)
    finally:
        client.close()
        peer.close()


def _tshark_json(path: Path, *extra: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [
            "tshark",
            "-X",
            f"lua_script:{LUA}",
            "-r",
            str(path),
            "-T",
            "json",
            "--no-duplicate-keys",
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    packets: list[dict[str, object]] = json.loads(out)
    return packets


def _asap_messages(packets: list[dict[str, object]]) -> list[tuple[int, str]]:
    """(message type, pool handle hex) of every ASAP message, in order."""
    found = []
    for packet in packets:
        layers = packet["_source"]["layers"]  # type: ignore[index]
        assert "_ws.malformed" not in layers, json.dumps(layers)[:2000]
        asap = layers.get("asap")
        if asap is None:
            continue
        for message in _as_list(asap):
            handles = [
                value.replace(":", "")
                for key, value in _walk(message)
                if key == "asap.pool_handle_pool_handle"
            ]
            found.append((int(message["asap.message_type"]), handles[0] if handles else ""))
    return found


def _walk(node: object) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield key, value
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_lua_dissector_decodes_asap_in_records(loopback_capture: tuple[Path, int]) -> None:
    path, port = loopback_capture
    expected = [(int(t), POOL.hex()) for t in EXPECTED_TYPES]
    expected[3] = (int(AsapType.SERVER_ANNOUNCE), "")  # announce has no pool handle
    # Heuristic detection on the ephemeral port.
    assert _asap_messages(_tshark_json(path)) == expected
    # "Decode As" on the port gives the same result.
    decode_as = _tshark_json(path, "-d", f"tcp.port=={port},rserpool_tcpmap")
    assert _asap_messages(decode_as) == expected
    records = [
        layer
        for packet in decode_as
        for layer in _as_list(packet["_source"]["layers"].get("rserpool_tcpmap"))  # type: ignore[index]
    ]
    assert len(records) == len(MESSAGES)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def test_rsp_decode_reads_the_same_capture(loopback_capture: tuple[Path, int]) -> None:
    path, port = loopback_capture
    result = subprocess.run(
        [sys.executable, "-m", "rsplib.capture.decode_cli", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    objs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["transport"], o["protocol"], o["type"]) for o in objs] == [
        ("tcp-mapping", "asap", t.name) for t in EXPECTED_TYPES
    ]
    assert all(o["dst"] == f"127.0.0.1:{port}" for o in objs)
    assert objs[0]["fields"]["pool_handle"]["text"] == POOL.decode()
