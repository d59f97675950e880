"""ASAP codec: golden vectors both ways, flags, structure errors, length tolerance."""

from __future__ import annotations

from typing import Any

import pytest

from rsplib.wire import codec
from rsplib.wire.asap import (
    AsapError,
    AsapMessage,
    BusinessCard,
    Cookie,
    CookieEcho,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    ServerAnnounce,
    asap_message_name,
)
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import AsapType, ErrorCause, PolicyType, TransportUse
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    LimitExceededError,
    MissingParameterError,
    ProtocolError,
    TruncatedError,
    UnknownMessageError,
)
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import (
    ErrorCauseItem,
    OperationError,
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    TcpTransport,
    UdpTransport,
    ip,
)
from rsplib.wire.reference import asap as reference
from tests.wire.vectors import load_vector, vector_names

FGP = b"FractalGeneratorPool"
LU = PolicyType.LEAST_USED
RR = PolicyParam(PolicyType.ROUND_ROBIN)

REGISTERED_PE = PoolElementParam(
    identifier=0x12345678,
    home_registrar_id=0,
    registration_life=90000,
    user_transport=SctpTransport(
        4711, (ip("10.0.0.1"), ip("10.0.0.2")), TransportUse.DATA_PLUS_CONTROL
    ),
    policy=PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load=0, load_degradation=0x40000000),
)
HOME = 0x0A0B0C0D
HR_PES = (
    PoolElementParam(
        1, HOME, 90000, TcpTransport(4711, (ip("127.0.0.1"),)), PolicyParam(LU, load=0x10000000)
    ),
    PoolElementParam(
        2, HOME, 90000, UdpTransport(5000, (ip("10.1.2.3"),)), PolicyParam(LU, load=0x20000000)
    ),
    PoolElementParam(
        3, HOME, 90000, SctpTransport(4712, (ip("2001:db8::1"),)), PolicyParam(LU, load=0xFFFFFFFF)
    ),
)

EXPECTED: dict[str, AsapMessage] = {
    "registration": Registration(FGP, REGISTERED_PE),
    "registration_response": RegistrationResponse(FGP, 0x12345678),
    "registration_response_reject": RegistrationResponse(
        FGP,
        0x12345678,
        # Wireshark expects the offending parameter as cause info of 0x0005
        OperationError.of(
            ErrorCause.INCONSISTENT_POOLING_POLICY, bytes.fromhex("00080008 00000001")
        ),
    ),
    "deregistration": Deregistration(FGP, 0x12345678),
    "deregistration_response": DeregistrationResponse(FGP, 0x12345678),
    "handle_resolution": HandleResolution(FGP, items=1),
    "handle_resolution_plain": HandleResolution(b"abc"),
    "handle_resolution_response": HandleResolutionResponse(
        FGP, PolicyParam(LU, load=0x10000000), HR_PES
    ),
    "handle_resolution_response_error": HandleResolutionResponse(
        FGP, error=OperationError.of(ErrorCause.UNKNOWN_POOL_HANDLE)
    ),
    "endpoint_keep_alive": EndpointKeepAlive(0x01020304, FGP, 0x12345678, home=True),
    "endpoint_keep_alive_ack": EndpointKeepAliveAck(FGP, 0x12345678),
    "endpoint_unreachable": EndpointUnreachable(FGP, 0x12345678),
    "server_announce": ServerAnnounce(
        0xDEADBEEF, (SctpTransport(3863, (ip("127.0.0.1"),), TransportUse.DATA_ONLY),)
    ),
    "server_announce_empty": ServerAnnounce(0xDEADBEEF),
    "cookie": Cookie(b"hello"),
    "cookie_echo": CookieEcho(bytes(range(1, 9))),
    "business_card": BusinessCard(
        FGP, RR, (PoolElementParam(5, 0, 0, TcpTransport(4711, (ip("127.0.0.1"),)), RR),)
    ),
    "asap_error": AsapError(
        OperationError(
            (
                ErrorCauseItem(ErrorCause.UNRECOGNIZED_PARAMETER, bytes.fromhex("403000 05ff")),
                ErrorCauseItem(ErrorCause.INVALID_POOL_HANDLE),
            )
        )
    ),
}


def test_every_vector_has_an_expectation_and_every_type_a_vector() -> None:
    assert set(EXPECTED) == vector_names("asap")
    assert {m.TYPE for m in EXPECTED.values()} == set(AsapType)


# The vectors hold for the reference codec and for the codec rsplib runs.
IMPLEMENTATIONS = pytest.mark.parametrize("impl", [reference, codec], ids=["reference", "codec"])


@IMPLEMENTATIONS
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_vector(impl: Any, name: str) -> None:
    assert impl.decode_asap(load_vector("asap", name)) == EXPECTED[name]


@IMPLEMENTATIONS
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encode_vector(impl: Any, name: str) -> None:
    data = impl.encode_asap(EXPECTED[name])
    assert data == load_vector("asap", name)
    assert len(data) % 4 == 0


def test_flags_and_names() -> None:
    assert load_vector("asap", "registration_response_reject")[1] == 0x01
    assert EXPECTED["registration_response_reject"].rejected  # type: ignore[union-attr]
    assert not EXPECTED["registration_response"].rejected  # type: ignore[union-attr]
    assert encode_asap(EndpointKeepAlive(1, FGP))[1] == 0
    assert encode_asap(EndpointKeepAlive(1, FGP, home=True))[1] == 0x01
    assert asap_message_name(EXPECTED["cookie"]) == "COOKIE"


def test_unused_flag_bits_are_ignored_on_receipt() -> None:
    data = bytearray(load_vector("asap", "endpoint_keep_alive_ack"))
    data[1] = 0xFE
    assert decode_asap(bytes(data)) == EXPECTED["endpoint_keep_alive_ack"]
    data = bytearray(load_vector("asap", "endpoint_keep_alive"))
    data[1] = 0xFE  # every bit but H
    assert decode_asap(bytes(data)) == EndpointKeepAlive(0x01020304, FGP, 0x12345678)


def test_reject_flag_without_error_is_refused() -> None:
    data = bytearray(load_vector("asap", "registration_response"))
    data[1] = 0x01
    with pytest.raises(MissingParameterError):
        decode_asap(bytes(data))


def test_length_excluding_final_padding_is_tolerated() -> None:
    data = bytearray(load_vector("asap", "handle_resolution_plain"))
    data[3] = 11  # Length without the pad byte of "abc"
    assert decode_asap(bytes(data)) == HandleResolution(b"abc")
    data[11] = 1  # but the tail beyond Length must be zeros
    with pytest.raises(LengthError):
        decode_asap(bytes(data))


@pytest.mark.parametrize("length", [0, 3, 8, 10, 13, 16, 0xFFFF])
def test_other_length_fields_are_refused(length: int) -> None:
    data = bytearray(load_vector("asap", "handle_resolution_plain"))
    data[2:4] = length.to_bytes(2, "big")
    with pytest.raises(LengthError):
        decode_asap(bytes(data))


def test_truncated_and_unknown() -> None:
    with pytest.raises(TruncatedError):
        decode_asap(b"\x01\x00\x00")
    with pytest.raises(UnknownMessageError):
        decode_asap(b"\x0f\x00\x00\x04")
    with pytest.raises(UnknownMessageError):
        decode_asap(b"\x00\x00\x00\x04")


def test_trailing_garbage_inside_length_is_refused() -> None:
    data = load_vector("asap", "endpoint_keep_alive_ack") + b"\x00\x01"
    data = data[:2] + len(data).to_bytes(2, "big") + data[4:]
    with pytest.raises(TruncatedError):
        decode_asap(data)


def test_missing_and_misplaced_parameters() -> None:
    ack = load_vector("asap", "endpoint_keep_alive_ack")
    only_handle = b"\x08\x00\x00\x1c" + ack[4:28]
    with pytest.raises(MissingParameterError):
        decode_asap(only_handle)
    # PE identifier before the pool handle
    swapped = ack[:4] + ack[28:36] + ack[4:28]
    with pytest.raises(MissingParameterError):
        decode_asap(swapped)
    # a known parameter where nothing more may follow
    extra = ack + ack[28:36]
    extra = extra[:2] + len(extra).to_bytes(2, "big") + extra[4:]
    with pytest.raises(InvalidValueError):
        decode_asap(extra)


def test_hr_response_error_with_pool_elements_is_refused() -> None:
    error_vector = load_vector("asap", "handle_resolution_response_error")
    pe_tlv = load_vector("asap", "business_card")[36:]
    data = error_vector + pe_tlv
    data = data[:2] + len(data).to_bytes(2, "big") + data[4:]
    with pytest.raises(InvalidValueError):
        decode_asap(data)
    with pytest.raises(ValueError):
        encode_asap(HandleResolutionResponse(FGP, RR, HR_PES, OperationError.of(1)))


def test_hr_response_may_be_empty_or_policy_only() -> None:
    for msg in (HandleResolutionResponse(FGP), HandleResolutionResponse(FGP, RR)):
        assert decode_asap(encode_asap(msg)) == msg


def test_registration_keeps_an_asap_transport_it_should_not_carry() -> None:
    pe = PoolElementParam(
        7, 0, 1000, TcpTransport(1, (ip("127.0.0.1"),)), RR, SctpTransport(2, (ip("::1"),))
    )
    msg = Registration(b"p", pe)
    assert decode_asap(encode_asap(msg)) == msg


def test_pool_handle_limits() -> None:
    long_handle = bytes(33)
    data = encode_asap(HandleResolution(long_handle))
    with pytest.raises(ProtocolError) as info:
        decode_asap(data)
    assert info.value.cause == ErrorCause.INVALID_POOL_HANDLE
    assert decode_asap(data, DecodeLimits(max_pool_handle=64)) == HandleResolution(long_handle)
    with pytest.raises(ProtocolError) as info:
        decode_asap(b"\x05\x00\x00\x08\x00\x09\x00\x04")
    assert info.value.cause == ErrorCause.INVALID_POOL_HANDLE


def test_pool_element_limit() -> None:
    data = load_vector("asap", "handle_resolution_response")
    assert len(decode_asap(data, DecodeLimits(max_pool_elements=3)).pool_elements) == 3  # type: ignore[union-attr]
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_pool_elements=2))


def test_parameter_and_message_size_limits() -> None:
    data = load_vector("asap", "handle_resolution_response")
    # 1 handle + 1 policy + 3 x (PE, transport, address, policy) = 14 TLVs
    decode_asap(data, DecodeLimits(max_parameters=14))
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_parameters=13))
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_message_size=len(data) - 4))
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_nesting_depth=2))
    decode_asap(data, DecodeLimits(max_nesting_depth=3))


def test_limits_also_hold_for_cached_pool_elements() -> None:
    data = load_vector("asap", "registration")
    decode_asap(data)  # warm the decoder's caches
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_addresses=1))
    with pytest.raises(LimitExceededError):
        decode_asap(data, DecodeLimits(max_parameters=5))
    decode_asap(data, DecodeLimits(max_parameters=6))


def test_pe_identifier_zero_is_invalid() -> None:
    data = bytearray(load_vector("asap", "registration"))
    data[32:36] = bytes(4)
    with pytest.raises(InvalidValueError) as info:
        decode_asap(bytes(data))
    assert info.value.cause == ErrorCause.INVALID_PE_IDENTIFIER


def test_encoders_refuse_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        encode_asap(EndpointKeepAlive(1 << 32, FGP))
    with pytest.raises(ValueError):
        encode_asap(Deregistration(FGP, -1))
    with pytest.raises(ValueError):
        encode_asap(Cookie(bytes(70000)))
