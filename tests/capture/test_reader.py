"""Capture reading: containers, link types, IP versions, SCTP, TCP mapping, UDP."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsplib.capture.reader import (
    CapturedMessage,
    CaptureFormatError,
    CaptureProblem,
    Packet,
    read_capture,
    read_capture_file,
)
from rsplib.wire.asap import (
    EndpointKeepAliveAck,
    HandleResolution,
    ServerAnnounce,
    encode_asap,
)
from rsplib.wire.tcpmap import Record, RecordType, encode_record
from tests.capture import pcapwriter as pw

T0 = 1_700_000_000.0
POOL = b"FractalGeneratorPool"
ANNOUNCE = encode_asap(ServerAnnounce(server_id=0x1234))
KA_ACK = encode_asap(EndpointKeepAliveAck(POOL, 0x12345678))
HR = encode_asap(HandleResolution(POOL, items=1))
FGP_BYTES = bytes.fromhex("02000010ffffffffffffffff00000000")


def data_record(ppid: int, payload: bytes) -> bytes:
    return encode_record(Record(RecordType.DATA, ppid, payload))


@dataclass(frozen=True)
class Expected:
    frame: int
    src: str
    dst: str
    transport: str
    ppid: int | None
    payload: bytes
    protocol: str | None = None


def messages(packets: Sequence[Packet]) -> list[CapturedMessage]:
    return [p for p in packets if isinstance(p, CapturedMessage)]


def problems(packets: Sequence[Packet], severity: str | None = None) -> list[CaptureProblem]:
    found = [p for p in packets if isinstance(p, CaptureProblem)]
    return [p for p in found if severity is None or p.severity == severity]


def summary(msg: CapturedMessage) -> Expected:
    return Expected(msg.frame, msg.src, msg.dst, msg.transport, msg.ppid, msg.payload, msg.protocol)


# --------------------------------------------------------------------------- one scenario


def scenario(v6: bool) -> tuple[list[bytes], list[Expected]]:
    """IP packets of a small mixed conversation and what the reader must find."""
    a, b = ("2001:db8::1", "2001:db8::2") if v6 else ("10.0.0.1", "10.0.0.2")
    ea, eb = (f"[{a}]", f"[{b}]") if v6 else (a, b)
    tcp_stream = data_record(11, KA_ACK) + data_record(11, HR)
    packets = [
        # 1: UDP server announce to the ASAP port
        pw.ip(a, b, 17, pw.udp(5000, 3863, ANNOUNCE)),
        # 2: SCTP packet with a SACK and two DATA chunks
        pw.ip(
            a,
            b,
            132,
            pw.sctp(
                3863,
                4000,
                7,
                [pw.sack_chunk(1), pw.data_chunk(10, 11, KA_ACK), pw.data_chunk(11, 32, FGP_BYTES)],
            ),
        ),
        # 3-5: a TCP connection: SYN, then the two records split at byte 5
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 999, flags=pw.SYN)),
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 1000, tcp_stream[:5])),
        pw.ip(a, b, 6, pw.tcp(40000, 3863, 1005, tcp_stream[5:])),
        # 6: SCTP over UDP (RFC 6951 port 9899)
        pw.ip(b, a, 17, pw.udp(9899, 9899, pw.sctp(5001, 5002, 9, [pw.data_chunk(1, 11, HR)]))),
        # 7: unrelated UDP is ignored
        pw.ip(a, b, 17, pw.udp(53, 53, b"dns")),
    ]
    expected = [
        Expected(1, f"{ea}:5000", f"{eb}:3863", "udp", 11, ANNOUNCE, "asap"),
        Expected(2, f"{ea}:3863", f"{eb}:4000", "sctp", 11, KA_ACK),
        Expected(2, f"{ea}:3863", f"{eb}:4000", "sctp", 32, FGP_BYTES),
        Expected(5, f"{ea}:40000", f"{eb}:3863", "tcp-mapping", 11, KA_ACK),
        Expected(5, f"{ea}:40000", f"{eb}:3863", "tcp-mapping", 11, HR),
        Expected(6, f"{eb}:5001", f"{ea}:5002", "sctp-udp", 11, HR),
    ]
    return packets, expected


LINK_CASES: dict[str, tuple[int, dict[str, object]]] = {
    "ethernet": (pw.ETHERNET, {}),
    "ethernet-vlan": (pw.ETHERNET, {"vlan": (100,)}),
    "ethernet-qinq": (pw.ETHERNET, {"vlan": (10, 20)}),
    "sll": (pw.LINUX_SLL, {}),
    "sll2": (pw.LINUX_SLL2, {}),
    "null": (pw.NULL, {}),
    "loop": (pw.LOOP, {}),
    "raw": (pw.RAW, {}),
}

CONTAINERS: dict[str, Callable[[list[pw.Frame], int], bytes]] = {
    "pcap-le-us": lambda f, lt: pw.write_pcap(f, lt),
    "pcap-be-us": lambda f, lt: pw.write_pcap(f, lt, big_endian=True),
    "pcap-le-ns": lambda f, lt: pw.write_pcap(f, lt, nanoseconds=True),
    "pcap-be-ns": lambda f, lt: pw.write_pcap(f, lt, big_endian=True, nanoseconds=True),
    "pcapng-le": lambda f, lt: pw.write_pcapng(f, lt),
    "pcapng-be": lambda f, lt: pw.write_pcapng(f, lt, big_endian=True),
    "pcapng-ns": lambda f, lt: pw.write_pcapng(f, lt, tsresol=9),
    "pcapng-binary-offset": lambda f, lt: pw.write_pcapng(
        f, lt, big_endian=True, tsresol=0x80 | 20, tsoffset=1_600_000_000
    ),
}


def frames_of(packets: list[bytes], link_type: int, **kwargs: object) -> list[pw.Frame]:
    return [
        (T0 + 0.25 * index, pw.link(link_type, packet, **kwargs))  # type: ignore[arg-type]
        for index, packet in enumerate(packets)
    ]


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("link_name", sorted(LINK_CASES))
def test_every_container_and_link_type_ipv4(container: str, link_name: str) -> None:
    link_type, kwargs = LINK_CASES[link_name]
    packets, expected = scenario(v6=False)
    data = CONTAINERS[container](frames_of(packets, link_type, **kwargs), link_type)
    found = list(read_capture(data))
    assert problems(found) == []
    assert [summary(m) for m in messages(found)] == expected
    for msg in messages(found):
        assert msg.time == pytest.approx(T0 + 0.25 * (msg.frame - 1), abs=1e-6)


@pytest.mark.parametrize("link_name", sorted(LINK_CASES))
def test_every_link_type_ipv6(link_name: str) -> None:
    link_type, kwargs = LINK_CASES[link_name]
    packets, expected = scenario(v6=True)
    found = list(read_capture(pw.write_pcapng(frames_of(packets, link_type, **kwargs), link_type)))
    assert problems(found) == []
    assert [summary(m) for m in messages(found)] == expected


@pytest.mark.parametrize("link_type", [pw.IPV4, pw.IPV6])
def test_raw_ipv4_and_ipv6_link_types(link_type: int) -> None:
    packets, expected = scenario(v6=link_type == pw.IPV6)
    found = list(read_capture(pw.write_pcap(frames_of(packets, link_type), link_type)))
    assert [summary(m) for m in messages(found)] == expected


def test_nanosecond_timestamps_keep_their_precision() -> None:
    packet = pw.link(pw.RAW, pw.ip("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 3863, ANNOUNCE)))
    time = 1_700_000_000.123456789
    for data in (
        pw.write_pcap([(time, packet)], pw.RAW, nanoseconds=True),
        pw.write_pcapng([(time, packet)], pw.RAW, tsresol=9),
    ):
        (msg,) = messages(list(read_capture(data)))
        assert msg.time == pytest.approx(time, abs=2e-7)
        assert msg.time != pytest.approx(1_700_000_000.123457, abs=1e-7)


def test_pcapng_simple_packets_have_no_time() -> None:
    packets, expected = scenario(v6=False)
    data = pw.write_pcapng(frames_of(packets, pw.ETHERNET), pw.ETHERNET, simple=True)
    found = messages(list(read_capture(data)))
    assert [summary(m) for m in found] == expected
    assert all(m.time is None for m in found)


def test_pcapng_sections_may_switch_byte_order() -> None:
    packet = pw.ip("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 2960, b"x"))
    data = b"".join(
        [
            pw.pcapng_section("<"),
            pw.pcapng_interface("<", pw.RAW),
            pw.pcapng_packet("<", T0, packet),
            pw.pcapng_section(">"),
            pw.pcapng_interface(">", pw.ETHERNET),
            pw.pcapng_packet(">", T0 + 1, pw.link(pw.ETHERNET, packet)),
        ]
    )
    found = messages(list(read_capture(data)))
    assert [(m.frame, m.protocol, m.payload) for m in found] == [(1, "csp", b"x"), (2, "csp", b"x")]


def test_read_capture_file(tmp_path: pytest.TempPathFactory) -> None:
    packets, expected = scenario(v6=False)
    path = tmp_path / "x.pcap"  # type: ignore[operator]
    path.write_bytes(pw.write_pcap(frames_of(packets, pw.RAW), pw.RAW))
    assert [summary(m) for m in messages(list(read_capture_file(path)))] == expected


# --------------------------------------------------------------------------- IP details


def _udp_announce_ip(**kwargs: object) -> bytes:
    return pw.ipv4("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 3863, ANNOUNCE), **kwargs)  # type: ignore[arg-type]


def test_ipv4_options_and_ethernet_padding() -> None:
    packet = _udp_announce_ip(options=b"\x01\x01\x01\x00")
    frame = pw.link(pw.ETHERNET, packet, pad_to=len(packet) + 40)
    (msg,) = messages(list(read_capture(pw.write_pcap([(T0, frame)], pw.ETHERNET))))
    assert msg.payload == ANNOUNCE


def test_ipv4_fragments_are_skipped_with_a_note() -> None:
    frames = [
        (T0, _udp_announce_ip(more_fragments=True)),
        (T0 + 1, _udp_announce_ip(fragment_offset=1480)),
        (T0 + 2, _udp_announce_ip()),
    ]
    found = list(read_capture(pw.write_pcap(frames, pw.RAW)))
    notes = problems(found, "note")
    assert [n.frame for n in notes] == [1, 2]
    assert all("fragment" in n.message for n in notes)
    assert [m.frame for m in messages(found)] == [3]


def test_ipv6_extension_headers_are_skipped() -> None:
    udp = pw.udp(1, 9901, b"presence")
    frames = [
        (T0, pw.ipv6("::1", "::2", 17, udp, extensions=(0, 60))),
        (T0, pw.ipv6("::1", "::2", 17, udp, extensions=(44,))),  # atomic fragment
    ]
    found = list(read_capture(pw.write_pcap(frames, pw.RAW)))
    assert problems(found) == []
    assert [(m.protocol, m.ppid, m.payload) for m in messages(found)] == [
        ("enrp", 12, b"presence"),
        ("enrp", 12, b"presence"),
    ]


def test_udp_ports_select_the_protocol() -> None:
    frames = [
        (T0, pw.ip("10.0.0.1", "239.0.0.50", 17, pw.udp(4711, 3863, b"a"))),
        (T0, pw.ip("10.0.0.1", "239.0.0.51", 17, pw.udp(4712, 9901, b"e"))),
        (T0, pw.ip("10.0.0.1", "127.0.0.1", 17, pw.udp(4713, 2960, b"c"))),
        (T0, pw.ip("10.0.0.1", "127.0.0.1", 17, pw.udp(4714, 4715, b"other"))),
    ]
    found = messages(list(read_capture(pw.write_pcap(frames, pw.RAW))))
    assert [(m.protocol, m.ppid, m.payload, m.transport) for m in found] == [
        ("asap", 11, b"a", "udp"),
        ("enrp", 12, b"e", "udp"),
        ("csp", None, b"c", "udp"),
    ]


def test_truncated_and_odd_frames_give_errors_and_reading_continues() -> None:
    good = pw.ip("10.0.0.1", "10.0.0.2", 17, pw.udp(1, 3863, ANNOUNCE))
    frames = [
        (T0, pw.link(pw.ETHERNET, good)[:10]),  # truncated Ethernet header
        (T0, pw.link(pw.ETHERNET, good)[:30]),  # truncated IPv4 header
        (T0, pw.link(pw.ETHERNET, pw.ip("10.0.0.1", "10.0.0.2", 6, b"\0" * 8))),  # short TCP
        (T0, bytes.fromhex("020000000001020000000002") + b"\x08\x06" + b"\0" * 28),  # ARP
        (T0, pw.link(pw.ETHERNET, good)),
    ]
    found = list(read_capture(pw.write_pcap(frames, pw.ETHERNET)))
    assert [p.frame for p in problems(found, "error")] == [1, 2, 3]
    assert [m.frame for m in messages(found)] == [5]


def test_unsupported_link_type_is_noted_once() -> None:
    frames = [(T0, b"\0" * 40)] * 3
    found = list(read_capture(pw.write_pcap(frames, 147)))
    assert len(problems(found, "note")) == 1
    assert "link type 147" in problems(found)[0].message


# --------------------------------------------------------------------------- SCTP


def _sctp_frames(chunk_lists: Sequence[Sequence[bytes]], vtag: int = 1) -> bytes:
    frames = [
        (T0 + i, pw.ip("10.0.0.1", "10.0.0.2", 132, pw.sctp(1000, 2000, vtag, chunks)))
        for i, chunks in enumerate(chunk_lists)
    ]
    return pw.write_pcap(frames, pw.RAW)


def test_sctp_fragments_reassemble_in_tsn_order_and_retransmissions_drop() -> None:
    parts = [KA_ACK[:5], KA_ACK[5:20], KA_ACK[20:]]
    data = _sctp_frames(
        [
            [pw.data_chunk(102, 11, parts[2], flags=0x01)],  # E fragment first
            [pw.data_chunk(99, 12, HR)],  # an unrelated whole message
            [pw.data_chunk(101, 11, parts[1], flags=0x00)],
            [pw.data_chunk(99, 12, HR), pw.data_chunk(101, 11, parts[1], flags=0x00)],  # resent
            [pw.data_chunk(100, 11, parts[0], flags=0x02), pw.data_chunk(103, 12, HR)],
        ]
    )
    found = list(read_capture(data))
    assert problems(found) == []
    assert [(m.frame, m.ppid, m.payload) for m in messages(found)] == [
        (2, 12, HR),
        (5, 11, KA_ACK),
        (5, 12, HR),
    ]


def test_sctp_incomplete_fragments_are_not_emitted() -> None:
    data = _sctp_frames(
        [
            [pw.data_chunk(10, 11, KA_ACK[:5], flags=0x02)],
            [pw.data_chunk(12, 11, KA_ACK[20:], flags=0x01)],  # TSN 11 never arrives
        ]
    )
    assert messages(list(read_capture(data))) == []


def test_sctp_associations_are_told_apart_by_verification_tag() -> None:
    first = _sctp_frames([[pw.data_chunk(5, 11, HR)]], vtag=1)
    second = _sctp_frames([[pw.data_chunk(5, 11, KA_ACK)]], vtag=2)
    # Same TSN in another association (vtag) is not a retransmission.
    combined = first + second[24:]
    assert [m.payload for m in messages(list(read_capture(combined)))] == [HR, KA_ACK]


def test_sctp_tsn_wraps_around_during_reassembly() -> None:
    data = _sctp_frames(
        [
            [pw.data_chunk(2**32 - 1, 11, KA_ACK[:8], flags=0x02)],
            [pw.data_chunk(0, 11, KA_ACK[8:], flags=0x01)],
        ]
    )
    (msg,) = messages(list(read_capture(data)))
    assert msg.payload == KA_ACK


def test_sctp_idata_whole_and_fragmented() -> None:
    data = _sctp_frames(
        [
            [pw.idata_chunk(1, 0, 11, HR)],
            [pw.idata_chunk(3, 1, 2, KA_ACK[20:], flags=0x01)],  # E, FSN 2
            [pw.idata_chunk(2, 1, 1, KA_ACK[10:20], flags=0x00)],  # FSN 1
            [pw.idata_chunk(4, 1, 11, KA_ACK[:10], flags=0x02)],  # B carries the PPID
        ]
    )
    found = messages(list(read_capture(data)))
    assert [(m.frame, m.ppid, m.payload) for m in found] == [(1, 11, HR), (4, 11, KA_ACK)]


def test_sctp_bad_chunk_keeps_earlier_chunks_and_reports() -> None:
    good = pw.data_chunk(1, 11, HR)
    bad = bytes.fromhex("00030040")  # DATA chunk claiming 64 bytes
    found = list(read_capture(_sctp_frames([[good, bad]])))
    assert [m.payload for m in messages(found)] == [HR]
    (error,) = problems(found, "error")
    assert "chunk length" in error.message


# --------------------------------------------------------------------------- TCP mapping

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 3863)


def _tcp_frames(segments: Sequence[tuple[bool, int, bytes, int]]) -> bytes:
    """segments: (from_client, seq, payload, flags)."""
    frames = []
    for index, (from_client, seq, payload, flags) in enumerate(segments):
        (sa, sp), (da, dp) = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        frames.append((T0 + index, pw.ip(sa, da, 6, pw.tcp(sp, dp, seq, payload, flags=flags))))
    return pw.write_pcapng(frames, pw.RAW)


def _payloads(found: Sequence[Packet]) -> list[tuple[str, int | None, bytes]]:
    return [(m.src, m.ppid, m.payload) for m in messages(found)]


STREAM_MESSAGES = [(11, KA_ACK), (11, HR), (32, FGP_BYTES), (11, ANNOUNCE)] * 3


def _stream() -> bytes:
    return b"".join(data_record(ppid, payload) for ppid, payload in STREAM_MESSAGES)


def _cut(data: bytes, sizes: Sequence[int]) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces of ``data`` cycling through ``sizes``."""
    pieces, offset, index = [], 0, 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        pieces.append((offset, data[offset : offset + size]))
        offset += size
        index += 1
    return pieces


@pytest.mark.parametrize("isn", [0, 123456, 2**32 - 30])
def test_tcp_odd_segments_out_of_order_and_retransmitted(isn: int) -> None:
    stream = _stream()
    pieces = _cut(stream, [1, 3, 7, 13, 64, 2])
    rng = random.Random(isn)
    order = pieces[:]
    rng.shuffle(order)
    order += rng.sample(pieces, 10)  # retransmissions after delivery
    segments = [(True, isn, b"", pw.SYN), (True, isn, b"", pw.SYN)]  # SYN retransmitted too
    segments += [(True, isn + 1 + offset, piece, pw.ACK) for offset, piece in order]
    # A retransmission that overlaps two pieces and a reply direction.
    segments.append((True, isn + 1 + 5, stream[5:40], pw.ACK))
    segments.append((False, 777, data_record(11, KA_ACK), pw.ACK))
    found = list(read_capture(_tcp_frames(segments)))
    assert problems(found) == []
    client = f"{CLIENT[0]}:{CLIENT[1]}"
    server = f"{SERVER[0]}:{SERVER[1]}"
    assert _payloads(found) == [(client, p, m) for p, m in STREAM_MESSAGES] + [(server, 11, KA_ACK)]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=6),
    seed=st.integers(0, 2**32),
    duplicates=st.integers(0, 8),
    isn=st.integers(0, 2**32 - 1),
)
def test_tcp_reassembly_property(sizes: list[int], seed: int, duplicates: int, isn: int) -> None:
    """Any segmentation, order and duplication gives each record exactly once, in order."""
    stream = _stream()
    pieces = _cut(stream, sizes)
    rng = random.Random(seed)
    order = pieces + [rng.choice(pieces) for _ in range(duplicates)]
    rng.shuffle(order)
    segments = [(True, isn, b"", pw.SYN)]
    segments += [(True, isn + 1 + offset, piece, pw.ACK) for offset, piece in order]
    found = list(read_capture(_tcp_frames(segments)))
    assert [(p, m) for _, p, m in _payloads(found)] == STREAM_MESSAGES


def test_tcp_without_syn_starts_at_the_first_data_segment() -> None:
    stream = _stream()
    segments = [(True, 5000 + o, piece, pw.ACK) for o, piece in _cut(stream, [100])]
    found = list(read_capture(_tcp_frames(segments)))
    assert [(p, m) for _, p, m in _payloads(found)] == STREAM_MESSAGES


def test_tcp_heartbeats_are_reported() -> None:
    request = encode_record(Record(RecordType.HEARTBEAT_REQUEST, 0, b"ping"))
    ack = encode_record(Record(RecordType.HEARTBEAT_ACK, 0, b"ping"))
    found = messages(
        list(read_capture(_tcp_frames([(True, 1, request, pw.ACK), (False, 9, ack, pw.ACK)])))
    )
    assert [(m.protocol, m.record_type, m.payload) for m in found] == [
        ("tcpmap", RecordType.HEARTBEAT_REQUEST, b"ping"),
        ("tcpmap", RecordType.HEARTBEAT_ACK, b"ping"),
    ]


def test_tcp_framing_error_gives_one_error_and_stops_that_direction() -> None:
    good = data_record(11, KA_ACK)
    bad_header = bytes.fromhex("09000000000000100000000b") + b"\0" * 4  # record type 9
    segments = [
        (True, 0, b"", pw.SYN),
        (True, 1, good, pw.ACK),
        (True, 1 + len(good), bad_header, pw.ACK),
        (True, 1 + len(good) + len(bad_header), good, pw.ACK),
        (False, 50, good, pw.ACK),  # the other direction is unaffected
    ]
    found = list(read_capture(_tcp_frames(segments)))
    errors = problems(found, "error")
    assert len(errors) == 1
    assert errors[0].frame == 3
    assert "record type 9" in errors[0].message
    assert [m.frame for m in messages(found)] == [2, 5]


def test_tcp_records_before_an_error_in_the_same_segment_are_kept() -> None:
    good = data_record(11, KA_ACK)
    partial = data_record(11, HR)[:20]
    bad_header = bytes.fromhex("01000000000000050000000b")  # length 5 < 12
    segments = [
        (True, 0, b"", pw.SYN),
        (True, 1, partial, pw.ACK),  # completed by the next segment
        (True, 21, data_record(11, HR)[20:] + good + bad_header + good, pw.ACK),
    ]
    found = list(read_capture(_tcp_frames(segments)))
    assert [m.payload for m in messages(found)] == [HR, KA_ACK]
    (error,) = problems(found)
    assert error.severity == "error" and "length 5" in error.message


def test_non_mapping_tcp_stream_is_ignored_with_a_note() -> None:
    http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    found = list(read_capture(_tcp_frames([(True, 1, http, pw.ACK), (True, 1, http, pw.ACK)])))
    assert messages(found) == []
    assert problems(found, "error") == []
    assert len(problems(found, "note")) == 1


def test_new_syn_on_the_same_ports_starts_a_new_stream() -> None:
    first = data_record(11, KA_ACK)
    segments = [
        (True, 100, b"", pw.SYN),
        (True, 101, first[:7], pw.ACK),  # connection ends mid-record
        (True, 9000, b"", pw.SYN),
        (True, 9001, first, pw.ACK),
    ]
    found = list(read_capture(_tcp_frames(segments)))
    assert [m.frame for m in messages(found)] == [4]


def test_incomplete_tcp_stream_at_capture_end_gives_a_note() -> None:
    stream = data_record(11, KA_ACK) + data_record(11, HR)
    found = list(read_capture(_tcp_frames([(True, 1, stream[:-3], pw.ACK)])))
    assert [m.payload for m in messages(found)] == [KA_ACK]
    (note,) = problems(found, "note")
    assert "incomplete" in note.message


# --------------------------------------------------------------------------- bad files


def test_garbage_file_raises_capture_format_error() -> None:
    with pytest.raises(CaptureFormatError):
        list(read_capture(b"this is not a capture file at all"))
    with pytest.raises(CaptureFormatError):
        list(read_capture(b""))


def test_truncated_file_yields_earlier_frames_then_raises() -> None:
    packets, expected = scenario(v6=False)
    packets = packets[:-1]  # the last frame now carries the last message
    for writer in (pw.write_pcap, pw.write_pcapng):
        data = writer(frames_of(packets, pw.RAW), pw.RAW)
        found: list[Packet] = []
        with pytest.raises(CaptureFormatError):
            for packet in read_capture(data[:-10]):
                found.append(packet)
        assert [summary(m) for m in messages(found)] == expected[:-1]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_capture_format_error(data: bytes) -> None:
    for prefix in (b"", bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")):
        with contextlib.suppress(CaptureFormatError):
            list(read_capture(prefix + data))


_VALID = pw.write_pcapng(frames_of(scenario(v6=False)[0], pw.ETHERNET), pw.ETHERNET)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.binary(min_size=1, max_size=8))
def test_corrupted_capture_raises_only_capture_format_error(position: int, junk: bytes) -> None:
    data = bytearray(_VALID)
    data[position : position + len(junk)] = junk
    try:
        found = list(read_capture(bytes(data)))
    except CaptureFormatError:
        return
    assert all(isinstance(p, CapturedMessage | CaptureProblem) for p in found)
