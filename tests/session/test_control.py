"""The session layer's pure parts: message classification and the pool element's table."""

from __future__ import annotations

import itertools

import pytest

from rsplib.errors import LocalProtocolError, SessionProtocolError
from rsplib.session.control import (
    DataMessage,
    PeInput,
    PeSessionControl,
    PeState,
    PeVerdict,
    PoolElementIdentity,
    check_data_ppid,
    classify,
    encode_cookie,
    encode_cookie_echo,
)
from rsplib.wire.asap import BusinessCard, Cookie, CookieEcho, HandleResolution, encode_asap
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport, ip

RR = PolicyParam(PolicyType.ROUND_ROBIN)


def identity(pe_id: int) -> PoolElementIdentity:
    param = PoolElementParam(pe_id, 7, 1000, TcpTransport(4000 + pe_id, (ip("127.0.0.1"),)), RR)
    return PoolElementIdentity.from_param(param)


# ------------------------------------------------------------------ classification


def test_anything_but_ppid_11_is_data() -> None:
    assert classify(0, b"\x0b\x00\x00\x08") == DataMessage(0, b"\x0b\x00\x00\x08")
    assert classify(32, b"x") == DataMessage(32, b"x")


def test_ppid_11_carries_the_session_layer_messages() -> None:
    assert classify(PPID.ASAP, encode_cookie(b"abcd")) == Cookie(b"abcd")
    assert classify(PPID.ASAP, encode_cookie_echo(b"abcd")) == CookieEcho(b"abcd")
    card = BusinessCard(b"pool", RR, ())
    assert isinstance(classify(PPID.ASAP, encode_asap(card)), BusinessCard)


def test_other_asap_messages_and_garbage_on_a_session_are_protocol_errors() -> None:
    with pytest.raises(SessionProtocolError, match="not a session-layer message"):
        classify(PPID.ASAP, encode_asap(HandleResolution(b"pool")))
    with pytest.raises(SessionProtocolError, match="malformed"):
        classify(PPID.ASAP, b"\x0b\x00\x00")


def test_application_data_must_not_use_ppid_11() -> None:
    with pytest.raises(LocalProtocolError, match="PPID 11"):
        check_data_ppid(11)
    with pytest.raises(LocalProtocolError, match="32 bits"):
        check_data_ppid(1 << 32)
    assert check_data_ppid(0) == 0
    assert check_data_ppid(0xFFFFFFFF) == 0xFFFFFFFF


# ------------------------------------------------------------------ PE table


def test_cookie_echo_is_accepted_only_as_the_first_message() -> None:
    first = PeSessionControl()
    assert first.on_input(PeInput.COOKIE_ECHO) is PeVerdict.RESTORE
    assert first.on_input(PeInput.DATA) is PeVerdict.DELIVER
    assert first.on_input(PeInput.COOKIE_ECHO) is PeVerdict.ABORT
    assert first.state is PeState.CLOSED

    later = PeSessionControl()
    assert later.on_input(PeInput.DATA) is PeVerdict.DELIVER
    assert later.on_input(PeInput.COOKIE_ECHO) is PeVerdict.ABORT


def test_a_business_card_ends_the_cookie_echo_window_and_a_cookie_from_the_pu_aborts() -> None:
    control = PeSessionControl()
    assert control.on_input(PeInput.BUSINESS_CARD) is PeVerdict.IGNORE
    assert control.on_input(PeInput.COOKIE_ECHO) is PeVerdict.ABORT
    other = PeSessionControl()
    assert other.on_input(PeInput.COOKIE) is PeVerdict.ABORT


@pytest.mark.parametrize(("state", "event"), list(itertools.product(list(PeState), list(PeInput))))
def test_every_pe_state_input_pair_is_either_in_the_table_or_a_protocol_error(
    state: PeState, event: PeInput
) -> None:
    control = PeSessionControl()
    control.state = state
    if state is PeState.CLOSED and event is not PeInput.CLOSE:
        with pytest.raises(SessionProtocolError):
            control.on_input(event)
        return
    verdict = control.on_input(event)
    assert isinstance(verdict, PeVerdict)
    if event is PeInput.CLOSE or verdict is PeVerdict.ABORT:
        assert control.state is PeState.CLOSED
    else:
        assert control.state is PeState.ACTIVE


def test_identity_from_a_pool_element_parameter() -> None:
    pe = identity(5)
    assert pe.identifier == 5
    assert pe.addresses == ("127.0.0.1",)
    assert pe.port == 4005
    assert isinstance(pe.transport, TcpTransport)
    assert pe.home_registrar_id == 7
    assert "0x00000005" in str(pe)
