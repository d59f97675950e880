"""Independent check with Wireshark's own ASAP/ENRP dissectors.

Every message type the codec builds (the golden-vector messages plus a few
extras) is hex-dumped, wrapped into SCTP DATA chunks by text2pcap with the
right PPID, and decoded by tshark. No frame may be malformed or carry an
error-level expert item, and the key fields tshark reads must be the ones
the dataclasses hold.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from rsplib.wire import asap, codec, enrp
from rsplib.wire.constants import AsapType, EnrpType, PolicyType, TransportUse, UpdateAction
from rsplib.wire.params import (
    DccpTransport,
    OperationError,
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    ServerInformation,
    TcpTransport,
    UdpLiteTransport,
    UdpTransport,
    ip,
)
from tests.wire.test_asap import EXPECTED as ASAP_VECTORS
from tests.wire.test_enrp import EXPECTED as ENRP_VECTORS

pytestmark = pytest.mark.tshark

EXPERT_ERROR = 0x00800000  # Wireshark's PI_ERROR severity

_PE = PoolElementParam(
    0xCAFE,
    0x77,
    15000,
    UdpTransport(7000, (ip("10.9.8.7"),)),
    PolicyParam(PolicyType.LEAST_USED_DPF, load=5, load_dpf=6, distance=50),
    SctpTransport(40000, (ip("10.9.8.7"), ip("fd00::7")), TransportUse.DATA_ONLY),
)
EXTRA_ASAP: list[asap.AsapMessage] = [
    asap.HandleResolution(b"pool", 0xFFFFFFFF),
    asap.ServerAnnounce(
        5,
        (
            SctpTransport(3863, (ip("10.0.0.5"), ip("10.0.1.5"))),
            TcpTransport(3863, (ip("10.0.0.5"),)),
        ),
    ),
    asap.ServerAnnounce(
        6,
        (
            DccpTransport(5002, (ip("10.1.2.3"),), 0x01020304),
            UdpLiteTransport(5001, (ip("fd00::1"),)),
        ),
    ),
    asap.Registration(b"p", dataclasses.replace(_PE, asap_transport=None, home_registrar_id=0)),
]
EXTRA_ENRP: list[enrp.EnrpMessage] = [
    enrp.HandleUpdate(1, 2, UpdateAction.ADD_PE, b"pool", _PE),
    enrp.HandleTableResponse(1, 2, ((b"pool", (_PE,)),), reject=True),
    enrp.EnrpError(1, 2, OperationError.of(0x0009)),
]

ASAP_MESSAGES = [*ASAP_VECTORS.values(), *EXTRA_ASAP]
ENRP_MESSAGES = [*ENRP_VECTORS.values(), *EXTRA_ENRP]

# Field names (without the "asap."/"enrp." prefix) collected per frame.
FIELDS = (
    "message_type",
    "pool_handle_pool_handle",
    "pool_element_pe_identifier",
    "pe_identifier",
    "pool_member_selection_policy_type",
    "sctp_transport_port",
    "tcp_transport_port",
    "udp_transport_port",
    "udp_lite_transport_port",
    "dccp_transport_port",
)
ENRP_FIELDS = (
    "sender_servers_id",
    "receiver_servers_id",
    "target_servers_id",
    "server_information_server_identifier",
    "update_action",
    "pe_checksum",
)
_PORT_FIELD = {
    SctpTransport: "sctp_transport_port",
    TcpTransport: "tcp_transport_port",
    UdpTransport: "udp_transport_port",
    UdpLiteTransport: "udp_lite_transport_port",
    DccpTransport: "dccp_transport_port",
}


def _expected(msg: Any) -> dict[str, list[int | str]]:
    """The values tshark should report, walking the message in wire order."""
    out: dict[str, list[int | str]] = {name: [] for name in FIELDS + ENRP_FIELDS}
    out["message_type"].append(int(msg.TYPE))

    def walk(value: Any, name: str) -> None:
        if isinstance(value, OperationError) or value is None:
            return  # cause info may hold parameters tshark dissects too; not compared
        if isinstance(value, PoolElementParam):
            out["pool_element_pe_identifier"].append(value.identifier)
            walk(value.user_transport, "")
            walk(value.policy, "")
            walk(value.asap_transport, "")
        elif isinstance(value, PolicyParam):
            out["pool_member_selection_policy_type"].append(value.policy_type)
        elif type(value) in _PORT_FIELD:
            out[_PORT_FIELD[type(value)]].append(value.port)
        elif isinstance(value, ServerInformation):
            out["server_information_server_identifier"].append(value.server_id)
            walk(value.transport, "")
        elif isinstance(value, tuple):
            for item in value:
                walk(item, name)
        elif isinstance(value, bytes) and name in ("pool_handle", "entries"):
            out["pool_handle_pool_handle"].append(value.hex())
        elif name == "identifier":
            out["pe_identifier"].append(value)
        elif name in ("sender_server_id", "receiver_server_id", "target_server_id"):
            out[name.replace("_server_id", "_servers_id")].append(value)
        elif name == "action":
            out["update_action"].append(int(value))
        elif name == "checksum":
            out["pe_checksum"].append(value)

    for f in dataclasses.fields(msg):
        if f.name != "unrecognized":
            walk(getattr(msg, f.name), f.name)
    return out


def _hexdump(messages: Iterable[bytes]) -> str:
    """text2pcap's input format: each packet's lines start at offset 000000."""
    lines = []
    for data in messages:
        for offset in range(0, len(data), 16):
            chunk = " ".join(f"{b:02x}" for b in data[offset : offset + 16])
            lines.append(f"{offset:06x} {chunk}")
    return "\n".join(lines) + "\n"


def _dissect(
    tmp_path: Path, name: str, payloads: list[bytes], sctp: str, proto: str
) -> list[dict[str, list[str]]]:
    dump = tmp_path / f"{name}.txt"
    pcap = tmp_path / f"{name}.pcap"
    dump.write_text(_hexdump(payloads))
    subprocess.run(
        ["text2pcap", "-q", "-S", sctp, str(dump), str(pcap)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    names = [f"{proto}.{f}" for f in FIELDS + (ENRP_FIELDS if proto == "enrp" else ())]
    names += ["_ws.malformed", "_ws.expert.severity"]
    command = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a"]
    command += ["-E", "aggregator=|"]
    for field in names:
        command += ["-e", field]
    result = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    rows = []
    for line in result.stdout.splitlines():
        cells = line.split("\t")
        rows.append({n: (c.split("|") if c else []) for n, c in zip(names, cells, strict=True)})
    return rows


def _check(rows: list[dict[str, list[str]]], messages: list[Any], proto: str) -> None:
    assert len(rows) == len(messages)
    for row, msg in zip(rows, messages, strict=True):
        label = type(msg).__name__
        assert row["_ws.malformed"] == [], f"{label} is malformed for tshark"
        severities = [int(s, 0) for s in row["_ws.expert.severity"]]
        assert EXPERT_ERROR not in severities, f"{label}: expert error"
        expected = _expected(msg)
        for field, values in expected.items():
            seen_text = row.get(f"{proto}.{field}")
            if seen_text is None:
                continue
            seen: list[int | str] = [
                s.replace(":", "") if field == "pool_handle_pool_handle" else int(s, 0)
                for s in seen_text
            ]
            has_error = getattr(msg, "error", None) is not None
            if has_error:  # a cause may carry a parameter that tshark also shows
                assert seen[: len(values)] == values, f"{label}.{field}"
            else:
                assert seen == values, f"{label}.{field}"


@pytest.mark.usefixtures("tshark_tools")
def test_wireshark_decodes_every_message(tmp_path: Path) -> None:
    asap_payloads = [codec.encode_asap(m) for m in ASAP_MESSAGES]
    enrp_payloads = [codec.encode_enrp(m) for m in ENRP_MESSAGES]
    assert {m.TYPE for m in ASAP_MESSAGES} == set(AsapType)
    assert {m.TYPE for m in ENRP_MESSAGES} == set(EnrpType)
    _check(_dissect(tmp_path, "asap", asap_payloads, "3863,3863,11", "asap"), ASAP_MESSAGES, "asap")
    _check(_dissect(tmp_path, "enrp", enrp_payloads, "9901,9901,12", "enrp"), ENRP_MESSAGES, "enrp")
