"""rsp-decode: JSON lines, summary, protocol filter, plug-ins, exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsplib.capture import decode_cli
from rsplib.wire.asap import EndpointKeepAliveAck, Registration, ServerAnnounce, encode_asap
from rsplib.wire.constants import PolicyType
from rsplib.wire.csp import ComponentGroup, CspAssociation, CspReport, component_id, encode_csp
from rsplib.wire.enrp import Presence, encode_enrp
from rsplib.wire.params import (
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    ServerInformation,
    TcpTransport,
    ip,
)
from rsplib.wire.tcpmap import Record, RecordType, encode_record
from tests.capture import pcapwriter as pw

T0 = 1_700_000_000.5
POOL = b"FractalGeneratorPool"

REGISTRATION = encode_asap(
    Registration(
        POOL,
        PoolElementParam(
            identifier=0x12345678,
            home_registrar_id=0,
            registration_life=90_000,
            user_transport=TcpTransport(7000, (ip("10.0.0.1"),)),
            policy=PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load_degradation=0x40000000),
        ),
    )
)
KA_ACK = encode_asap(EndpointKeepAliveAck(POOL, 0x12345678))
ANNOUNCE = encode_asap(ServerAnnounce(server_id=0xABC))
PRESENCE = encode_enrp(
    Presence(
        sender_server_id=0x11,
        receiver_server_id=0,
        checksum=0xB331,
        server_info=ServerInformation(0x11, SctpTransport(9901, (ip("10.0.0.2"),))),
    )
)
CSP = encode_csp(
    CspReport(
        sender_id=component_id(ComponentGroup.REGISTRAR, 0x11),
        timestamp_us=1,
        report_interval_us=250_000,
        location="host",
        status="1 PE",
        workload=None,
        associations=(CspAssociation(component_id(1, 0x22), None, 12),),
    )
)
FGP = bytes.fromhex("02000010ffffffffffffffff00000000")
GARBAGE_ASAP = bytes.fromhex("07000004")  # keep-alive without its server ID


def record(rtype: RecordType, ppid: int, payload: bytes) -> bytes:
    return encode_record(Record(rtype, ppid, payload))


def conversation() -> list[bytes]:
    """IP packets: TCP mapping (split records, heartbeat), SCTP, UDP announce and CSP."""
    stream = (
        record(RecordType.DATA, 11, REGISTRATION)
        + record(RecordType.HEARTBEAT_REQUEST, 0, b"hb")
        + record(RecordType.DATA, 11, KA_ACK)
    )
    a, b = "10.0.0.1", "10.0.0.2"
    return [
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 0, flags=pw.SYN)),
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 1 + 17, stream[17:])),  # out of order
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 1, stream[:17])),
        pw.ip(b, "10.0.0.3", 132, pw.sctp(9901, 9901, 5, [pw.data_chunk(1, 12, PRESENCE)])),
        pw.ip(b, "239.0.0.50", 17, pw.udp(4711, 3863, ANNOUNCE)),
        pw.ip(b, "127.0.0.1", 17, pw.udp(5555, 2960, CSP)),
        pw.ip(a, b, 132, pw.sctp(1, 2, 6, [pw.data_chunk(1, 11, GARBAGE_ASAP)])),
        pw.ip(a, b, 132, pw.sctp(1, 2, 6, [pw.data_chunk(2, 32, FGP)])),
    ]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    frames = [(T0 + i, pw.link(pw.ETHERNET, p)) for i, p in enumerate(conversation())]
    path = tmp_path / "conversation.pcapng"
    path.write_bytes(pw.write_pcapng(frames, pw.ETHERNET))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = decode_cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_json_lines(capsys: pytest.CaptureFixture[str], capture: Path) -> None:
    code, lines, err = run(capsys, str(capture))
    assert code == 0, err
    objs = [json.loads(line) for line in lines]
    assert [(o["frame"], o["protocol"], o.get("type")) for o in objs] == [
        (3, "asap", "REGISTRATION"),
        (3, "tcpmap", "HEARTBEAT_REQUEST"),
        (3, "asap", "ENDPOINT_KEEP_ALIVE_ACK"),
        (4, "enrp", "PRESENCE"),
        (5, "asap", "SERVER_ANNOUNCE"),
        (6, "csp", "REPORT"),
        (7, "asap", None),  # does not decode: error object
        (8, "fgp", "FGP_DATA"),  # PPID 32: fractal_pe's default plug-in
    ]
    reg = objs[0]
    assert {
        k: reg[k] for k in ("time", "src", "dst", "transport", "ppid", "type_code", "flags")
    } == {
        "time": T0 + 2,
        "src": "10.0.0.1:40000",
        "dst": "10.0.0.2:3863",
        "transport": "tcp-mapping",
        "ppid": 11,
        "type_code": 1,
        "flags": 0,
    }
    fields = reg["fields"]
    assert fields["pool_handle"] == {"hex": POOL.hex(), "text": "FractalGeneratorPool"}
    pe = fields["pool_element"]
    assert pe["identifier"] == 0x12345678
    assert pe["registration_life"] == 90_000
    assert pe["user_transport"]["kind"] == "tcp"
    assert pe["user_transport"]["addresses"] == ["10.0.0.1"]
    assert pe["user_transport"]["transport_use"] == "DATA_PLUS_CONTROL"
    assert pe["policy"]["policy_type"] == "LEAST_USED_DEGRADATION"
    assert pe["policy"]["load_degradation"] == 0x40000000

    heartbeat = objs[1]
    assert heartbeat["fields"] == {"payload": {"hex": "6862", "text": "hb"}}
    assert heartbeat["type_code"] == 2

    presence = objs[3]
    assert presence["transport"] == "sctp"
    assert presence["fields"]["checksum"] == 0xB331
    assert presence["fields"]["server_info"]["transport"]["port"] == 9901

    announce = objs[4]
    assert (announce["transport"], announce["src"], announce["dst"]) == (
        "udp",
        "10.0.0.2:4711",
        "239.0.0.50:3863",
    )
    assert announce["fields"]["server_id"] == 0xABC

    csp = objs[5]
    assert csp["ppid"] is None
    assert csp["fields"]["status"] == "1 PE"
    assert csp["fields"]["workload"] is None
    assert csp["fields"]["associations"][0]["ppid"] == 12

    bad = objs[6]
    assert bad["error"]
    assert isinstance(bad["cause"], str)
    assert bad["payload"] == {"hex": GARBAGE_ASAP.hex()}

    assert objs[7]["fields"] == {"start_x": 0xFFFFFFFF, "start_y": 0xFFFFFFFF, "points": []}


def test_summary(capsys: pytest.CaptureFixture[str], capture: Path) -> None:
    code, lines, _ = run(capsys, "--summary", str(capture), str(capture))
    assert code == 0
    rows = {tuple(line.split()[:2]): int(line.split()[2]) for line in lines[1:]}
    assert rows == {
        ("asap", "REGISTRATION"): 2,
        ("asap", "ENDPOINT_KEEP_ALIVE_ACK"): 2,
        ("asap", "SERVER_ANNOUNCE"): 2,
        ("asap", "(error)"): 2,
        ("tcpmap", "HEARTBEAT_REQUEST"): 2,
        ("enrp", "PRESENCE"): 2,
        ("csp", "REPORT"): 2,
        ("fgp", "FGP_DATA"): 2,
    }


def test_protocol_filter(capsys: pytest.CaptureFixture[str], capture: Path) -> None:
    code, lines, _ = run(capsys, "--protocol", "enrp,csp", str(capture))
    assert code == 0
    assert [json.loads(line)["type"] for line in lines] == ["PRESENCE", "REPORT"]


def test_plugin_registers_a_decoder(
    capsys: pytest.CaptureFixture[str],
    capture: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = tmp_path / "plugins" / "fgp_test_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from rsplib.capture.decode_cli import register_payload_decoder\n"
        "@dataclass(frozen=True)\n"
        "class FgpData:\n"
        "    points: int\n"
        "def decode(data: bytes) -> FgpData:\n"
        "    return FgpData(int.from_bytes(data[12:16], 'big'))\n"
        "register_payload_decoder(32, 'fgp', decode)\n"
    )
    monkeypatch.syspath_prepend(str(plugin.parent))
    saved = dict(decode_cli._BY_PPID), dict(decode_cli._BY_PROTOCOL)
    try:
        code, lines, _ = run(
            capsys, "--plugin", "fgp_test_plugin", "--protocol", "fgp", str(capture)
        )
    finally:
        decode_cli._BY_PPID.clear()
        decode_cli._BY_PPID.update(saved[0])
        decode_cli._BY_PROTOCOL.clear()
        decode_cli._BY_PROTOCOL.update(saved[1])
        sys.modules.pop("fgp_test_plugin", None)
    assert code == 0
    (obj,) = [json.loads(line) for line in lines]
    assert (obj["protocol"], obj["type"], obj["type_code"], obj["fields"]) == (
        "fgp",
        "FGP_DATA",
        2,
        {"points": 0},
    )


def test_missing_plugin_is_a_clean_error(capsys: pytest.CaptureFixture[str], capture: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        decode_cli.main(["--plugin", "no_such_module_here", str(capture)])
    assert "cannot load plugin" in str(exc.value.code)


def test_a_broken_decoder_entry_point_is_a_warning(
    capsys: pytest.CaptureFixture[str], capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="no_such_module_here:register", group=decode_cli.DECODER_ENTRY_POINTS
    )

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == decode_cli.DECODER_ENTRY_POINTS
        return [broken]

    monkeypatch.setattr(decode_cli.importlib.metadata, "entry_points", entry_points)
    code, lines, err = run(capsys, str(capture))
    assert code == 0
    assert len(lines) == 8  # the built-in decoders still run
    (warning,) = err.strip().splitlines()
    assert warning.startswith("rsp-decode: warning: decoder plug-in 'broken'")


def test_missing_and_garbage_files(
    capsys: pytest.CaptureFixture[str], capture: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\x00" * 100)
    code, lines, err = run(capsys, str(tmp_path / "missing.pcap"), str(garbage), str(capture))
    assert code == 1
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert "missing.pcap" in errors[0] and "No such file" in errors[0]
    assert "garbage.pcap" in errors[1] and "not a pcap" in errors[1]
    assert len(lines) == 8  # the good file is still decoded


def test_truncated_file_prints_what_it_can_then_fails(
    capsys: pytest.CaptureFixture[str], capture: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.pcapng"
    truncated.write_bytes(capture.read_bytes()[:-7])
    code, lines, err = run(capsys, str(truncated))
    assert code == 1
    assert len(lines) == 7
    assert len(err.strip().splitlines()) == 1 and "truncated" in err


def test_packet_errors_appear_as_error_objects(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frames = [
        (T0, pw.link(pw.RAW, pw.ip("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 3863, ANNOUNCE)))[:25]),
        (T0 + 1, pw.link(pw.RAW, pw.ip("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 3863, ANNOUNCE)))),
    ]
    path = tmp_path / "x.pcap"
    path.write_bytes(pw.write_pcap(frames, pw.RAW))
    code, lines, _ = run(capsys, str(path))
    assert code == 0
    first, second = (json.loads(line) for line in lines)
    assert first["frame"] == 1 and "truncated UDP header" in first["error"]
    assert second["type"] == "SERVER_ANNOUNCE"


def test_console_script(capture: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rsplib.capture.decode_cli", "--summary", str(capture)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "REGISTRATION" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "rsplib.capture.decode_cli", "/nonexistent/x.pcap"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("rsp-decode: error:")
