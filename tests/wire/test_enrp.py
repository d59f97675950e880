"""ENRP codec: golden vectors both ways, flags, fixed fields and structure errors."""

from __future__ import annotations

from typing import Any

import pytest

from rsplib.wire import codec
from rsplib.wire.codec import decode_enrp, encode_enrp
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
    enrp_message_name,
)
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    MissingParameterError,
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
from rsplib.wire.reference import enrp as reference
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


# The vectors hold for the reference codec and for the codec rsplib runs.
IMPLEMENTATIONS = pytest.mark.parametrize("impl", [reference, codec], ids=["reference", "codec"])


@IMPLEMENTATIONS
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_vector(impl: Any, name: str) -> None:
    assert impl.decode_enrp(load_vector("enrp", name)) == EXPECTED[name]


@IMPLEMENTATIONS
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encode_vector(impl: Any, name: str) -> None:
    data = impl.encode_enrp(EXPECTED[name])
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
