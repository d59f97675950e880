"""TLV parameters: golden vectors, the unknown-parameter rule, field rules and limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rsplib.wire import fastencode
from rsplib.wire.asap import EndpointKeepAliveAck, HandleResolution, Registration
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import ErrorCause, ParamType, PolicyType, TransportUse
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    LimitExceededError,
    MissingParameterError,
    ProtocolError,
    TruncatedError,
    UnrecognizedParameterError,
)
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import (
    DccpTransport,
    ErrorCauseItem,
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
from rsplib.wire.reference.tlv import (
    READERS,
    RawParam,
    TlvReader,
    decode_param,
    encode_address,
    encode_cookie,
    encode_hr_option,
    encode_operation_error,
    encode_param,
    encode_pe_checksum,
    encode_pe_identifier,
    encode_policy,
    encode_pool_element,
    encode_pool_handle,
    encode_server_information,
    encode_transport,
    iter_raw_params,
)
from tests.wire.vectors import load_vector, vector_names

Case = tuple[Callable[[Any], bytes], Any]

EXPECTED: dict[str, Case] = {
    "hr_option_1": (encode_hr_option, 1),
    "pe_checksum_b331": (encode_pe_checksum, 0xB331),
    "sctp_transport_4711": (
        encode_transport,
        SctpTransport(4711, (ip("10.0.0.1"),), TransportUse.DATA_PLUS_CONTROL),
    ),
    "sctp_transport_multihomed": (
        encode_transport,
        SctpTransport(9901, (ip("10.0.0.3"), ip("::1")), TransportUse.DATA_ONLY),
    ),
    "tcp_transport": (encode_transport, TcpTransport(4711, (ip("127.0.0.1"),))),
    "udp_transport": (encode_transport, UdpTransport(5000, (ip("10.1.2.3"),))),
    "udp_lite_transport": (
        encode_transport,
        UdpLiteTransport(5001, (ip("10.1.2.3"),)),
    ),
    "dccp_transport": (
        encode_transport,
        DccpTransport(5002, (ip("10.1.2.3"),), 0x01020304),
    ),
    "policy_lud": (
        encode_policy,
        PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load=0, load_degradation=0x40000000),
    ),
    "policy_rr": (encode_policy, PolicyParam(PolicyType.ROUND_ROBIN)),
    "policy_wrr": (
        encode_policy,
        PolicyParam(PolicyType.WEIGHTED_ROUND_ROBIN, weight=7),
    ),
    "policy_priority": (
        encode_policy,
        PolicyParam(PolicyType.PRIORITY, priority=3),
    ),
    "policy_wrand_dpf": (
        encode_policy,
        PolicyParam(PolicyType.WEIGHTED_RANDOM_DPF, weight=10, weight_dpf=0x80000000, distance=50),
    ),
    "policy_lud_dpf": (
        encode_policy,
        PolicyParam(
            PolicyType.LEAST_USED_DEGRADATION_DPF,
            load=0x100,
            load_degradation=0x200,
            load_dpf=0x300,
            distance=100,
        ),
    ),
    "pool_handle_fgp": (encode_pool_handle, b"FractalGeneratorPool"),
    "pool_handle_odd": (encode_pool_handle, b"abc"),
    "pe_identifier": (encode_pe_identifier, 0x12345678),
    "cookie": (encode_cookie, b"\xab\xcd"),
    "ipv4_address": (encode_address, ip("192.168.1.2")),
    "ipv6_address": (encode_address, ip("fe80::2a")),
    "pool_element": (
        encode_pool_element,
        PoolElementParam(
            0x12345678,
            0x11111111,
            90000,
            SctpTransport(4711, (ip("10.0.0.1"),)),
            PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load_degradation=0x40000000),
            SctpTransport(3863, (ip("10.0.0.1"),), TransportUse.DATA_ONLY),
        ),
    ),
    "server_information": (
        encode_server_information,
        ServerInformation(
            0x11111111, SctpTransport(9901, (ip("10.0.0.1"),), TransportUse.DATA_ONLY)
        ),
    ),
    "operation_error": (
        encode_operation_error,
        OperationError(
            (
                ErrorCauseItem(ErrorCause.UNRECOGNIZED_PARAMETER, bytes.fromhex("4030 0005 ff")),
                ErrorCauseItem(0xF004),
            )
        ),
    ),
}


#: The codec's own encoders of the parameters it encodes fast.
FAST_ENCODERS: dict[Callable[[Any], bytes], Callable[[Any], bytes]] = {
    encode_pe_identifier: fastencode.encode_pe_identifier,
    encode_policy: fastencode.encode_policy,
    encode_pool_element: fastencode.encode_pool_element,
    encode_pool_handle: fastencode.encode_pool_handle,
    encode_transport: fastencode.encode_transport,
}


def test_every_vector_has_an_expectation_and_every_type_a_vector() -> None:
    assert set(EXPECTED) == vector_names("params")
    codes = {next(iter_raw_params(load_vector("params", name))).code for name in EXPECTED}
    assert codes == set(ParamType) == set(READERS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_param_vector_both_ways(name: str) -> None:
    encode, value = EXPECTED[name]
    data = load_vector("params", name)
    assert decode_param(data) == value
    assert encode(value) == data
    if encode in FAST_ENCODERS:
        fastencode.clear_encode_caches()
        for _ in range(2):  # cold and warm caches
            assert FAST_ENCODERS[encode](value) == data


def test_encode_param_pads_but_length_excludes_padding() -> None:
    assert encode_param(0x0D, b"") == b"\x00\x0d\x00\x04"
    assert encode_param(0x0D, b"x") == b"\x00\x0d\x00\x05x\x00\x00\x00"
    assert encode_param(0xC0FF, b"ab") == b"\xc0\xff\x00\x06ab\x00\x00"


# --------------------------------------------------------------------------- unknown parameters

ACK = EndpointKeepAliveAck(b"FractalGeneratorPool", 0x12345678)


def _ack_with(extra: bytes, *, before_pe_id: bool = False) -> bytes:
    """The Keep-Alive Ack vector with one more TLV, after the handle or at the end."""
    base = load_vector("asap", "endpoint_keep_alive_ack")
    body = base[4:28] + extra + base[28:] if before_pe_id else base[4:] + extra
    return base[:2] + (4 + len(body)).to_bytes(2, "big") + body


UNKNOWN_VALUE = b"\x01\x02\x03"


@pytest.mark.parametrize("before_pe_id", [False, True])
def test_action_00_stops_silently(before_pe_id: bool) -> None:
    with pytest.raises(UnrecognizedParameterError) as info:
        decode_asap(_ack_with(encode_param(0x0123, UNKNOWN_VALUE), before_pe_id=before_pe_id))
    assert info.value.report is False
    assert info.value.cause == ErrorCause.UNRECOGNIZED_PARAMETER


@pytest.mark.parametrize("before_pe_id", [False, True])
def test_action_01_stops_and_reports_the_tlv(before_pe_id: bool) -> None:
    tlv = encode_param(0x4123, UNKNOWN_VALUE)
    with pytest.raises(UnrecognizedParameterError) as info:
        decode_asap(_ack_with(tlv, before_pe_id=before_pe_id))
    assert info.value.report is True
    assert info.value.offending == tlv[:7]  # the TLV without its padding


@pytest.mark.parametrize("before_pe_id", [False, True])
def test_action_10_skips_silently(before_pe_id: bool) -> None:
    msg = decode_asap(_ack_with(encode_param(0x8123, UNKNOWN_VALUE), before_pe_id=before_pe_id))
    assert msg == ACK
    assert msg.unrecognized == ()


@pytest.mark.parametrize("before_pe_id", [False, True])
def test_action_11_skips_and_records(before_pe_id: bool) -> None:
    tlv = encode_param(0xC123, UNKNOWN_VALUE)
    msg = decode_asap(_ack_with(tlv, before_pe_id=before_pe_id))
    assert msg == ACK
    assert msg.unrecognized == (tlv[:7],)


def test_action_bits_apply_inside_nested_parameters() -> None:
    skip_report = encode_param(0xC200, b"abcd")
    skip = encode_param(0x8201, b"")
    address = encode_address(ip("10.0.0.1"))
    transport = encode_param(
        0x0004, (4711).to_bytes(2, "big") + b"\x00\x01" + skip + address + skip_report
    )
    policy = encode_policy(PolicyParam(PolicyType.ROUND_ROBIN))
    pe_value = bytes.fromhex("00000007 00000000 000003e8") + transport + skip + policy
    msg = Registration(
        b"p",
        PoolElementParam(
            7, 0, 1000, SctpTransport(4711, (ip("10.0.0.1"),)), PolicyParam(PolicyType.ROUND_ROBIN)
        ),
    )
    plain = encode_asap(msg)
    data = plain[:12] + encode_param(0x000A, pe_value)
    data = data[:2] + len(data).to_bytes(2, "big") + data[4:]
    decoded = decode_asap(data)
    assert decoded == msg
    assert decoded.unrecognized == (skip_report,)
    stop = encode_param(0x4202, b"")
    bad = data.replace(skip, stop, 1)
    with pytest.raises(UnrecognizedParameterError):
        decode_asap(bad)


def test_known_parameter_at_wrong_place_is_not_skipped_by_action_bits() -> None:
    # 0x800E is the PE Identifier type with "skip" bits: known, so it is checked as such
    data = _ack_with(b"\x80\x0e\x00\x08\x00\x00\x00\x01")
    with pytest.raises(InvalidValueError):
        decode_asap(data)


def test_hr_option_is_recognised_by_masked_code() -> None:
    assert decode_asap(encode_asap(HandleResolution(b"p", 0xFFFFFFFF))) == HandleResolution(
        b"p", 0xFFFFFFFF
    )


# --------------------------------------------------------------------------- reader


def test_reader_yields_raw_params_with_masked_code() -> None:
    data = encode_param(0xC123, b"xyz") + encode_pe_identifier(5)
    params = list(iter_raw_params(data))
    assert params == [
        RawParam(0xC123, 0x0123, b"xyz", b"\xc1\x23\x00\x07xyz"),
        RawParam(0x000E, 0x000E, b"\x00\x00\x00\x05", data[8:16]),
    ]


def test_reader_over_memoryview_applies_the_action_bits() -> None:
    data = memoryview(encode_param(0x8123, b"") + encode_cookie(b"c"))
    reader = TlvReader(data)
    tlv = reader.next()
    assert tlv is not None
    assert (tlv.code, reader.value(tlv), reader.whole(tlv)) == (0x000D, b"c", data[4:9])
    assert reader.next() is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x0d\x00", TruncatedError),
        (b"\x00\x0d\x00\x03", LengthError),
        (b"\x00\x0d\x00\x09abcd", LengthError),
    ],
)
def test_reader_rejects_broken_headers(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        list(iter_raw_params(data))


def test_last_padding_may_be_cut_off() -> None:
    assert decode_param(b"\x00\x0d\x00\x05x") == b"x"


# --------------------------------------------------------------------------- addresses


def test_ipv4_mapped_addresses_travel_as_ipv4() -> None:
    assert encode_address(ip("::ffff:10.0.0.1")) == load_vector("params", "ipv4_address").replace(
        bytes([192, 168, 1, 2]), bytes([10, 0, 0, 1])
    )
    mapped_as_v6 = b"\x00\x02\x00\x14" + ip("::ffff:10.0.0.1").packed
    assert decode_param(mapped_as_v6) == ip("10.0.0.1")


@pytest.mark.parametrize("count", [0, 2])
@pytest.mark.parametrize("kind", [TcpTransport, UdpTransport, UdpLiteTransport, DccpTransport])
def test_single_address_transports(kind: type[TcpTransport], count: int) -> None:
    addresses = tuple(ip(f"10.0.0.{i + 1}") for i in range(count))
    with pytest.raises(ValueError):
        encode_transport(kind(1, addresses))
    tlv = bytearray(encode_transport(kind(1, (ip("10.0.0.9"),))))
    address_at = 12 if kind is DccpTransport else 8
    wire = bytes(tlv[:address_at]) + b"".join(encode_address(a) for a in addresses)
    wire = wire[:2] + len(wire).to_bytes(2, "big") + wire[4:]
    with pytest.raises(InvalidValueError) as info:
        decode_param(wire)
    assert info.value.cause == ErrorCause.INVALID_ADDRESSES


def test_sctp_needs_an_address_and_respects_the_limit() -> None:
    with pytest.raises(ValueError):
        encode_transport(SctpTransport(1, ()))
    with pytest.raises(InvalidValueError):
        decode_param(b"\x00\x04\x00\x08\x00\x01\x00\x00")
    many = SctpTransport(1, tuple(ip(f"10.0.0.{i}") for i in range(1, 66)))
    data = encode_transport(many)
    assert decode_param(data, DecodeLimits(max_addresses=65)) == many
    with pytest.raises(LimitExceededError):
        decode_param(data)


def test_address_tlv_with_wrong_length() -> None:
    with pytest.raises(LengthError):
        decode_param(b"\x00\x01\x00\x07abc")
    bad = b"\x00\x04\x00\x10\x00\x01\x00\x00" + b"\x00\x01\x00\x0c" + bytes(8)
    with pytest.raises(LengthError):
        decode_param(bad)


def test_non_address_inside_transport() -> None:
    bad = b"\x00\x04\x00\x10\x00\x01\x00\x00" + encode_pe_identifier(1)
    with pytest.raises(InvalidValueError):
        decode_param(bad)


# --------------------------------------------------------------------------- policies


def test_every_policy_type_round_trips_with_exactly_its_fields() -> None:
    for ptype, names in PolicyParam.POLICY_FIELDS.items():
        values = {name: 1000 + i for i, name in enumerate(names)}
        policy = PolicyParam(ptype, **values)
        data = encode_policy(policy)
        assert len(data) == 8 + 4 * len(names)
        assert decode_param(data) == policy


def test_policy_non_wire_fields_are_not_sent() -> None:
    data = encode_policy(PolicyParam(PolicyType.ROUND_ROBIN, weight=5, load=9))
    assert data == load_vector("params", "policy_rr")
    assert decode_param(data) == PolicyParam(PolicyType.ROUND_ROBIN)


def test_policy_too_short_too_long_unknown() -> None:
    lud = load_vector("params", "policy_lud")
    short = b"\x00\x08\x00\x0c" + lud[4:12]
    with pytest.raises(LengthError):
        decode_param(short)
    longer = b"\x00\x08\x00\x14" + lud[4:] + b"\xff\xff\xff\xff"
    assert decode_param(longer) == decode_param(lud)
    with pytest.raises(ProtocolError) as info:
        decode_param(b"\x00\x08\x00\x08\xb0\x00\x20\x04")
    assert info.value.cause == ErrorCause.RSPLIB_UNKNOWN_POLICY
    with pytest.raises(LengthError):
        decode_param(b"\x00\x08\x00\x06\x00\x00\x00\x00")
    with pytest.raises(ValueError):
        encode_policy(PolicyParam(0xB0002004))
    with pytest.raises(ValueError):
        encode_policy(PolicyParam(PolicyType.WEIGHTED_ROUND_ROBIN, weight=1 << 32))


# --------------------------------------------------------------------------- other parameters


def test_pool_element_rules() -> None:
    data = bytearray(load_vector("params", "pool_element"))
    data[4:8] = bytes(4)
    with pytest.raises(InvalidValueError) as info:
        decode_param(bytes(data))
    assert info.value.cause == ErrorCause.INVALID_PE_IDENTIFIER
    with pytest.raises(LengthError):
        decode_param(b"\x00\x0a\x00\x0c" + bytes(8))
    with pytest.raises(MissingParameterError):
        decode_param(b"\x00\x0a\x00\x10" + b"\x00\x00\x00\x01" + bytes(8))


def test_operation_error_any_cause_and_padding() -> None:
    err = OperationError(
        (ErrorCauseItem(0x1234, b"x"), ErrorCauseItem(0xFFFF, b"12345"), ErrorCauseItem(0))
    )
    data = encode_operation_error(err)
    assert data == bytes.fromhex(
        "000c 001c 1234 0005 78000000 ffff 0009 3132333435000000 0000 0004"
    )
    assert decode_param(data) == err
    assert decode_param(b"\x00\x0c\x00\x04") == OperationError()
    with pytest.raises(LengthError):
        decode_param(b"\x00\x0c\x00\x08\x00\x01\x00\x03")
    with pytest.raises(LengthError):
        decode_param(b"\x00\x0c\x00\x08\x00\x01\x00\x09")
    with pytest.raises(TruncatedError):
        decode_param(b"\x00\x0c\x00\x06\x00\x01")


def test_fixed_size_parameters_check_their_length() -> None:
    with pytest.raises(LengthError):
        decode_param(b"\x00\x0e\x00\x06\x00\x01")
    with pytest.raises(LengthError):
        decode_param(b"\x00\x0f\x00\x08\x00\x01\x00\x00")
    with pytest.raises(LengthError):
        decode_param(b"\x80\x3f\x00\x05\x01")


def test_decode_param_wants_exactly_one_parameter() -> None:
    with pytest.raises(MissingParameterError):
        decode_param(b"")
    with pytest.raises(MissingParameterError):
        decode_param(encode_param(0x8123, b"skipped"))
    with pytest.raises(InvalidValueError):
        decode_param(encode_cookie(b"a") + encode_cookie(b"b"))
