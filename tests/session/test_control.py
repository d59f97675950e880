"""The session layer's pure parts: message classification and the two state tables."""

from __future__ import annotations

import itertools

import pytest

from rsplib.session.control import (
    DataMessage,
    PeInput,
    PeSessionControl,
    PeState,
    PeVerdict,
    PoolElementIdentity,
    PuInput,
    PuSessionControl,
    PuState,
    PuVerdict,
    SessionProtocolError,
    check_data_ppid,
    choose_pool_element,
    classify,
    encode_cookie,
    encode_cookie_echo,
)
from rsplib.wire.asap import BusinessCard, Cookie, CookieEcho, HandleResolution
from rsplib.wire.codec import encode_asap
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
    with pytest.raises(ValueError, match="PPID 11"):
        check_data_ppid(11)
    with pytest.raises(ValueError, match="32 bits"):
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


# ------------------------------------------------------------------ PU table


def test_pu_failover_triggers_start_one_failover_and_join_it_afterwards() -> None:
    control = PuSessionControl()
    assert control.on_input(PuInput.CONNECTED) is PuVerdict.READY
    assert control.on_input(PuInput.PEER_LOST) is PuVerdict.START_FAILOVER
    assert control.state is PuState.FAILING_OVER
    for trigger in (PuInput.PEER_LOST, PuInput.SEND_FAILED, PuInput.FORCE_FAILOVER):
        assert control.on_input(trigger) is PuVerdict.JOIN_FAILOVER
    # The failover started on EOF: a send failing afterwards does not report the PE.
    assert control.take_report_flag() is False
    assert control.on_input(PuInput.CONNECTED) is PuVerdict.READY


def test_only_a_failed_send_that_starts_the_failover_reports_the_pe() -> None:
    control = PuSessionControl()
    control.on_input(PuInput.CONNECTED)
    assert control.on_input(PuInput.SEND_FAILED) is PuVerdict.START_FAILOVER
    assert control.take_report_flag() is True
    assert control.take_report_flag() is False  # taken once
    control.on_input(PuInput.CONNECTED)
    control.on_input(PuInput.FORCE_FAILOVER)
    assert control.take_report_flag() is False


@pytest.mark.parametrize(("state", "event"), list(itertools.product(list(PuState), list(PuInput))))
def test_every_pu_state_input_pair_is_either_in_the_table_or_a_protocol_error(
    state: PuState, event: PuInput
) -> None:
    control = PuSessionControl()
    control.state = state
    invalid = (state is PuState.CLOSED and event is not PuInput.CLOSE) or (
        state is PuState.CONNECTED and event is PuInput.CONNECTED
    )
    if invalid:
        with pytest.raises(SessionProtocolError):
            control.on_input(event)
        return
    verdict = control.on_input(event)
    if event is PuInput.CLOSE:
        assert control.state is PuState.CLOSED
    elif event is PuInput.CONNECTED:
        assert (control.state, verdict) == (PuState.CONNECTED, PuVerdict.READY)
    elif state is PuState.CONNECTED:
        assert (control.state, verdict) == (PuState.FAILING_OVER, PuVerdict.START_FAILOVER)
    else:
        assert control.state is state and verdict is PuVerdict.JOIN_FAILOVER


def test_the_pu_keeps_only_the_newest_cookie() -> None:
    control = PuSessionControl()
    assert control.cookie is None
    control.store_cookie(b"one!")
    control.store_cookie(b"two!")
    assert control.cookie == b"two!"


# ------------------------------------------------------------------ choosing a PE


def test_the_failed_pe_is_skipped_while_others_exist() -> None:
    a, b, c = identity(1), identity(2), identity(3)
    assert choose_pool_element([a, b, c], {1}) == b
    assert choose_pool_element([a, b, c], {1, 2}) == c
    assert choose_pool_element([a, b, c]) == a
    # Only failed ones left: the first is tried again (it may have restarted).
    assert choose_pool_element([a, b], {1, 2}) == a
    assert choose_pool_element([], {1}) is None


def test_identity_from_a_pool_element_parameter() -> None:
    pe = identity(5)
    assert pe.identifier == 5
    assert pe.addresses == ("127.0.0.1",)
    assert pe.port == 4005
    assert isinstance(pe.transport, TcpTransport)
    assert pe.home_registrar_id == 7
    assert "0x00000005" in str(pe)
