"""ENRP codec: golden vectors both ways, flags, fixed fields and structure errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsplib.wire.constants import EnrpType, ErrorCause, PolicyType, TransportUse, UpdateAction
from rsplib.wire.enrp import (
    EnrpError,
    EnrpMessage,
    HandleTableRequest,
    HandleTableResponse,
    HandleUpdate,
    InitTakeover,
    InitTakeoverAck,
    ListRequest,
    ListResponse,
    Presence,
    TakeoverServer,
    _decode_general,
    _fast_handle_update,
    decode_enrp,
    encode_enrp,
    enrp_message_name,
)
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    MissingParameterError,
    ProtocolError,
    TruncatedError,
    UnknownMessageError,
)
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    ServerInformation,
    TcpTransport,
    ip,
)
from rsplib.wire.tlv import DecodeLimits, clear_decode_caches
from tests.wire.test_properties import HANDLES, SEEDS, U32, mutate, pool_elements
from tests.wire.vectors import load_vector, vector_names

FGP = b"FractalGeneratorPool"
A, B, C = 0x11111111, 0x22222222, 0x33333333
RR = PolicyParam(PolicyType.ROUND_ROBIN)
LOCAL_ASAP = SctpTransport(3863, (ip("127.0.0.1"),), TransportUse.DATA_ONLY)
SERVER_A = ServerInformation(A, SctpTransport(9901, (ip("10.0.0.1"),), TransportUse.DATA_ONLY))


def _local_pe(identifier: int, port: int) -> PoolElementParam:
    return PoolElementParam(
        identifier, A, 30000, TcpTransport(port, (ip("127.0.0.1"),)), RR, LOCAL_ASAP
    )


UPDATED_PE = PoolElementParam(
    0x12345678,
    A,
    90000,
    SctpTransport(4711, (ip("10.0.0.1"),)),
    PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load_degradation=0x40000000),
    SctpTransport(3863, (ip("10.0.0.1"),), TransportUse.DATA_ONLY),
)

EXPECTED: dict[str, EnrpMessage] = {
    "presence": Presence(A, B, 0xB331, SERVER_A, reply_required=True),
    "handle_table_request": HandleTableRequest(A, B, own_children_only=True),
    "handle_table_response": HandleTableResponse(
        A,
        B,
        (
            (b"abc", (_local_pe(0xA, 4711), _local_pe(0xB, 4712))),
            (FGP, (_local_pe(0xC, 4713),)),
        ),
        more_to_send=True,
    ),
    "handle_update": HandleUpdate(A, B, UpdateAction.ADD_PE, FGP, UPDATED_PE),
    "handle_update_del_takeover": HandleUpdate(
        A, 0, UpdateAction.DEL_PE, b"abc", _local_pe(0xA, 4711), takeover_suggested=True
    ),
    "list_request": ListRequest(A, B),
    "list_response": ListResponse(
        A,
        B,
        (
            SERVER_A,
            ServerInformation(
                C, SctpTransport(9901, (ip("10.0.0.3"), ip("::1")), TransportUse.DATA_ONLY)
            ),
        ),
    ),
    "list_response_reject": ListResponse(A, B, reject=True),
    "init_takeover": InitTakeover(A, 0, C),
    "init_takeover_ack": InitTakeoverAck(B, A, C),
    "takeover_server": TakeoverServer(A, 0, C),
    "enrp_error": EnrpError(
        A, B, OperationError.of(ErrorCause.UNRECOGNIZED_MESSAGE, bytes.fromhex("0b000004"))
    ),
}


def test_every_vector_has_an_expectation_and_every_type_a_vector() -> None:
    assert set(EXPECTED) == vector_names("enrp")
    assert {m.TYPE for m in EXPECTED.values()} == set(EnrpType)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_vector(name: str) -> None:
    assert decode_enrp(load_vector("enrp", name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encode_vector(name: str) -> None:
    data = encode_enrp(EXPECTED[name])
    assert data == load_vector("enrp", name)
    assert len(data) % 4 == 0


@pytest.mark.parametrize(
    ("msg", "flags"),
    [
        (Presence(A, 0, 0, SERVER_A), 0x00),
        (Presence(A, 0, 0, SERVER_A, reply_required=True), 0x01),
        (HandleTableRequest(A, B), 0x00),
        (HandleTableRequest(A, B, own_children_only=True), 0x01),
        (HandleTableResponse(A, B, reject=True), 0x01),
        (HandleTableResponse(A, B, more_to_send=True), 0x02),
        (HandleTableResponse(A, B, more_to_send=True, reject=True), 0x03),
        (HandleUpdate(A, B, UpdateAction.ADD_PE, FGP, UPDATED_PE, takeover_suggested=True), 0x01),
        (ListResponse(A, B, reject=True), 0x01),
        (ListResponse(A, B), 0x00),
    ],
)
def test_flags(msg: EnrpMessage, flags: int) -> None:
    data = encode_enrp(msg)
    assert data[1] == flags
    assert decode_enrp(data) == msg


def test_fixed_sizes_and_names() -> None:
    assert len(encode_enrp(HandleTableRequest(A, B))) == 12
    assert len(encode_enrp(InitTakeover(A, B, C))) == 16
    assert enrp_message_name(InitTakeover(A, B, C)) == "INIT_TAKEOVER"


def test_unused_flag_bits_are_ignored_on_receipt() -> None:
    data = bytearray(load_vector("enrp", "init_takeover"))
    data[1] = 0xFF
    assert decode_enrp(bytes(data)) == EXPECTED["init_takeover"]


def test_truncated_fixed_fields() -> None:
    with pytest.raises(TruncatedError):
        decode_enrp(b"\x05\x00\x00\x08\x11\x11\x11\x11")
    with pytest.raises(TruncatedError):
        decode_enrp(load_vector("enrp", "list_request")[:8].replace(b"\x0c", b"\x08", 1))
    short = b"\x07\x00\x00\x0c" + load_vector("enrp", "init_takeover")[4:12]
    with pytest.raises(TruncatedError):
        decode_enrp(short)


def test_unknown_type_and_bad_length() -> None:
    with pytest.raises(UnknownMessageError):
        decode_enrp(b"\x0b\x00\x00\x0c" + bytes(8))
    data = bytearray(load_vector("enrp", "list_request"))
    data[3] = 0x10
    with pytest.raises(LengthError):
        decode_enrp(bytes(data))


def test_unknown_update_action() -> None:
    data = bytearray(load_vector("enrp", "handle_update"))
    data[13] = 0x02
    with pytest.raises(InvalidValueError):
        decode_enrp(bytes(data))


def test_handle_table_group_needs_a_pool_element() -> None:
    handle_only = b"\x03\x00\x00\x14" + bytes.fromhex("1111111122222222 0009000761626300")
    with pytest.raises(MissingParameterError):
        decode_enrp(handle_only)
    with pytest.raises(ValueError):
        encode_enrp(HandleTableResponse(A, B, ((b"abc", ()),)))


def test_pool_element_without_policy_is_refused() -> None:
    # PE TLV whose policy is missing: user transport directly followed by the ASAP transport
    pe = bytes.fromhex(
        "000a0030 0000000a 11111111 00007530"
        "00050010 12670001 00010008 7f000001"
        "00040010 0f170000 00010008 7f000001"
    )
    ids_action = bytes.fromhex("11111111 22222222 00000000")
    data = b"\x04\x00\x00\x58" + ids_action + bytes.fromhex("00090018") + FGP + pe
    assert len(data) == 0x58
    with pytest.raises(MissingParameterError):
        decode_enrp(data)


def test_presence_needs_checksum_first() -> None:
    data = load_vector("enrp", "presence")
    swapped = data[:12] + data[20:] + data[12:20]
    with pytest.raises(MissingParameterError):
        decode_enrp(swapped)


# --------------------------------------------------------------------------- fast path
# Handle Update has a fast decoder; it must agree with the general decoder on any bytes.

_LIMITS = [
    DecodeLimits(),
    DecodeLimits(max_parameters=8, max_addresses=2, max_nesting_depth=3),
    DecodeLimits(max_pool_elements=0, max_pool_handle=4),
]
_HANDLE_UPDATES = st.builds(
    HandleUpdate,
    U32,
    U32,
    st.sampled_from(UpdateAction),
    HANDLES,
    pool_elements(with_asap=True),
    st.booleans(),
)


def _decoded(
    decode: Callable[[bytes, DecodeLimits], object], data: bytes, limits: DecodeLimits
) -> object:
    """The decoded message, or the class of the error the decoder raised."""
    try:
        return decode(data, limits)
    except ProtocolError as exc:
        return type(exc)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_HANDLE_UPDATES, SEEDS, st.booleans())
def test_fast_decoder_agrees_with_the_general_decoder(
    msg: HandleUpdate, seed: int, mutated: bool
) -> None:
    data = encode_enrp(msg)
    if mutated:
        data = mutate(data, seed)
    for limits in _LIMITS:
        clear_decode_caches()
        expected = _decoded(_decode_general, data, limits)
        for _ in range(2):  # cold and warm caches
            got = _decoded(decode_enrp, data, limits)
            assert got == expected
            assert getattr(got, "unrecognized", ()) == getattr(expected, "unrecognized", ())


def test_usual_handle_update_takes_the_fast_path() -> None:
    sctp = SctpTransport(3863, (ip("10.0.0.1"), ip("fd00::1")))
    pe = PoolElementParam(5, 6, 7, sctp, PolicyParam(PolicyType.ROUND_ROBIN), sctp)
    msg = HandleUpdate(1, 2, UpdateAction.DEL_PE, b"pool", pe, takeover_suggested=True)
    data = encode_enrp(msg)
    assert _fast_handle_update(data, data[1], DecodeLimits()) == msg
