"""Component Status Protocol codec: golden vectors, round trips, bad input."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsplib.wire.csp import (
    ASSOCIATION_SIZE,
    HEADER_SIZE,
    ComponentGroup,
    CspAssociation,
    CspReport,
    component_id,
    decode_csp,
    encode_csp,
    format_component_id,
    split_component_id,
)
from rsplib.wire.errors import ProtocolError

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "csp"


def load_vector(name: str) -> bytes:
    """Hex text with ``#`` comment lines; whitespace is ignored."""
    lines = (VECTORS / name).read_text(encoding="utf-8").splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


GOLDEN: dict[str, CspReport] = {
    "registrar_one_peer.hex": CspReport(
        sender_id=component_id(ComponentGroup.REGISTRAR, 0x12345678),
        timestamp_us=1_500_000,
        report_interval_us=250_000,
        location="host1: 10.0.0.1",
        status="3[2] PEs in 1 Pool(s), 1 Peer(s)",
        workload=None,
        associations=(CspAssociation(0x0100000087654321, None, ppid=12),),
    ),
    "pe_final.hex": CspReport(
        sender_id=component_id(ComponentGroup.POOL_ELEMENT, 0xABCDEF),
        timestamp_us=0,
        report_interval_us=1_000_000,
        location="",
        status="",
        workload=0x7FFF / 0xFFFE,
        final=True,
    ),
    "pu_two_sessions.hex": CspReport(
        sender_id=component_id(ComponentGroup.POOL_USER, 0x0123456789ABCDEF),
        timestamp_us=0x0102030405060708,
        report_interval_us=333_000,
        location="(local only)",
        status="Processed packet #7 of PE $12345678 \u2713",
        workload=0.0,
        associations=(
            CspAssociation(component_id(1, 0x12345678), 2_000_000, ppid=11),
            CspAssociation(component_id(2, 0x12345678), 5, ppid=32, protocol_id=6),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_decode(name: str) -> None:
    assert decode_csp(load_vector(name)) == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_encode(name: str) -> None:
    assert encode_csp(GOLDEN[name]) == load_vector(name)


def test_workload_half_is_scaled_to_0x7fff() -> None:
    report = GOLDEN["pe_final.hex"]
    data = encode_csp(dataclasses.replace(report, workload=0.5))
    assert data[284:286] == b"\x7f\xff"


def test_component_ids() -> None:
    cid = component_id(ComponentGroup.POOL_ELEMENT, 0xFFAABBCCDDEEFF0011)
    assert cid == 0x02BBCCDDEEFF0011
    assert split_component_id(cid) == (2, 0xBBCCDDEEFF0011)
    assert format_component_id(component_id(ComponentGroup.REGISTRAR, 0x1A)) == "10000000000001a"
    with pytest.raises(ValueError):
        component_id(256, 1)


def test_long_text_is_truncated_on_a_character_boundary() -> None:
    # 126 ASCII bytes + a 3-byte character would cross the 127-byte limit.
    status = "x" * 126 + "\u2713" + "tail"
    report = CspReport(1, 0, 0, "y" * 300, status, None)
    data = encode_csp(report)
    assert len(data) == HEADER_SIZE
    decoded = decode_csp(data)
    assert decoded.location == "y" * 127
    assert decoded.status == "x" * 126
    # The NUL terminator always survives.
    assert data[28 + 127] == 0 and data[156 + 127] == 0


def test_out_of_range_values_raise_value_error() -> None:
    with pytest.raises(ValueError):
        encode_csp(CspReport(1, 0, 0, "", "", 1.5))
    with pytest.raises(ValueError):
        encode_csp(CspReport(1 << 64, 0, 0, "", "", None))
    with pytest.raises(ValueError):
        encode_csp(CspReport(1, 0, 1 << 32, "", "", None))


u64 = st.integers(0, 2**64 - 1)
# Texts that fit the 128-byte field (127 bytes of UTF-8 plus the NUL) round-trip exactly;
# longer ones are cut (test_long_text_is_truncated_on_a_character_boundary).
text = st.text(max_size=60).filter(lambda s: len(s.encode("utf-8")) <= 127)
associations = st.builds(
    CspAssociation,
    receiver_id=u64,
    duration_us=st.none() | st.integers(0, 2**64 - 2),
    ppid=st.integers(0, 2**32 - 1),
    protocol_id=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0xFFFF),
)
reports = st.builds(
    CspReport,
    sender_id=u64,
    timestamp_us=u64,
    report_interval_us=st.integers(0, 2**32 - 1),
    location=text.filter(lambda s: "\0" not in s),
    status=text.filter(lambda s: "\0" not in s),
    workload=st.none() | st.integers(0, 0xFFFE).map(lambda k: k / 0xFFFE),
    associations=st.lists(associations, max_size=5).map(tuple),
    final=st.booleans(),
)


@given(reports)
def test_round_trip(report: CspReport) -> None:
    data = encode_csp(report)
    assert len(data) == HEADER_SIZE + ASSOCIATION_SIZE * len(report.associations)
    assert decode_csp(data) == report


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_csp(data)


@given(reports, st.integers(0, 300), st.binary(min_size=1, max_size=30))
def test_corrupted_reports_raise_only_protocol_error(
    report: CspReport, position: int, junk: bytes
) -> None:
    data = bytearray(encode_csp(report))
    data[position : position + len(junk)] = junk
    with contextlib.suppress(ProtocolError):
        decode_csp(bytes(data))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:-1], "one byte short"),
        (lambda d: d + b"\0", "one byte extra"),
        (lambda d: b"\x02" + d[1:], "type 2"),
        (lambda d: d[:4] + b"\x00\x00\x01\x00" + d[8:], "version 0x0100"),
        (lambda d: d[:2] + b"\x01\x21" + d[4:], "length field off by one"),
        (lambda d: d[:286] + b"\x00\x02" + d[288:], "count says two"),
    ],
)
def test_bad_reports_are_rejected(mutate: object, reason: str) -> None:
    data = load_vector("registrar_one_peer.hex")
    assert callable(mutate)
    with pytest.raises(ProtocolError):
        decode_csp(mutate(data))


def test_wireshark_reads_the_encoder_output(tshark_tools: None, tmp_path: Path) -> None:
    """Independent check: Wireshark's CSP dissector parses our report cleanly."""
    report = GOLDEN["pu_two_sessions.hex"]
    hexdump = tmp_path / "csp.txt"
    data = encode_csp(report)
    hexdump.write_text(
        "".join(
            f"{offset:06x} " + " ".join(f"{b:02x}" for b in data[offset : offset + 16]) + "\n"
            for offset in range(0, len(data), 16)
        )
    )
    pcap = tmp_path / "csp.pcap"
    subprocess.run(
        ["text2pcap", "-q", "-u", "40000,2960", str(hexdump), str(pcap)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "json", "-J", "componentstatusprotocol"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    layers = json.loads(out)[0]["_source"]["layers"]
    assert "_ws.malformed" not in layers
    dumped = json.dumps(layers["componentstatusprotocol"])
    assert "(local only)" in dumped
    assert "Processed packet #7" in dumped
