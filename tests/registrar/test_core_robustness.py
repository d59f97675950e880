"""Registrar core: malformed and unexpected input is answered per RFC or dropped, logged
once per connection, and never breaks the registrar; limits on connections."""

from __future__ import annotations

import logging
import random
import struct

from rsplib.registrar import CloseConnection, LogEvent, PeerAddress, SendMessage
from rsplib.wire.asap import (
    AsapError,
    EndpointKeepAliveAck,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
)
from rsplib.wire.codec import decode_enrp, encode_asap, encode_enrp
from rsplib.wire.constants import PPID, ErrorCause
from rsplib.wire.enrp import EnrpError, Presence
from rsplib.wire.params import ServerInformation, TcpTransport, ip
from tests.registrar.core_harness import POOL, FakePE, Net

REG = 0x100


def with_unknown_param(message: bytes, action_bits: int) -> bytes:
    """``message`` with an extra TLV of unknown type 0x3ABC carrying the action bits."""
    tlv = struct.pack("!HH", action_bits | 0x3ABC, 8) + b"\xde\xad\xbe\xef"
    body = message + tlv
    return body[:2] + struct.pack("!H", len(body)) + body[4:]


def setup() -> tuple[Net, FakePE, int]:
    net = Net()
    net.add_registrar("A", REG)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    pe.register(conn, 1)
    return net, pe, conn


def test_unknown_message_type_gets_an_unrecognized_message_error() -> None:
    _net, pe, conn = setup()
    pe.send_raw(conn, bytes([0x7E, 0, 0, 8, 1, 2, 3, 4]))
    error = pe.last(AsapError)
    assert error.error.first_code == ErrorCause.UNRECOGNIZED_MESSAGE
    assert error.error.causes[0].info == bytes([0x7E, 0, 0, 8])


def test_unknown_parameter_action_bits() -> None:
    _net, pe, conn = setup()
    hr = encode_asap(HandleResolution(POOL))
    results = {}
    for bits in (0x0000, 0x4000, 0x8000, 0xC000):
        pe.inbox.clear()
        pe.send_raw(conn, with_unknown_param(hr, bits))
        results[bits] = (
            [e.error.first_code for e in pe.received(AsapError)],
            len(pe.received(HandleResolutionResponse)),
        )
    report = ErrorCause.UNRECOGNIZED_PARAMETER
    assert results[0x0000] == ([], 0)  # stop, no report
    assert results[0x4000] == ([report], 0)  # stop and report
    assert results[0x8000] == ([], 1)  # skip
    assert results[0xC000] == ([report], 1)  # skip and report
    pe.inbox.clear()
    pe.send_raw(conn, with_unknown_param(hr, 0x4000))
    offending = pe.last(AsapError).error.causes[0].info
    assert offending[:2] == b"\x7a\xbc"


def test_broken_registration_is_answered_with_a_rejection() -> None:
    _net, pe, conn = setup()
    good = encode_asap(Registration(POOL, pe.param(0x42)))
    truncated = good[:-6]
    pe.send_raw(conn, truncated[:2] + struct.pack("!H", len(truncated)) + truncated[4:])
    response = pe.last(RegistrationResponse)
    assert response.rejected and response.identifier == 0x42


def test_errors_are_never_answered_and_wrong_ppid_dropped() -> None:
    net, pe, conn = setup()
    pe.inbox.clear()
    pe.send_raw(conn, bytes([0x0E, 0, 0, 4]))  # an empty, malformed ASAP Error
    pe.send_raw(conn, encode_asap(HandleResolution(POOL)), ppid=PPID.ENRP)
    assert pe.inbox == []
    log = net.log_text("A")
    assert "PPID 12" in log


def test_random_and_mutated_messages_never_break_the_core() -> None:
    net, pe, conn = setup()
    rng = random.Random(5)
    samples = [
        encode_asap(HandleResolution(POOL, items=3)),
        encode_asap(Registration(POOL, pe.param(9))),
        encode_asap(EndpointKeepAliveAck(POOL, 1)),
    ]
    core = net.core("A")
    for i in range(3000):
        data: bytearray
        if i % 3 == 0:
            data = bytearray(rng.randbytes(rng.randrange(0, 80)))
        else:
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data))]
        pe.send_raw(conn, bytes(data))
    # Still serving; handlespace consistent; one malformed-message log line for the connection.
    user = FakePE(net)
    user_conn = net.connect_pe(user, "A")
    user.send(user_conn, HandleResolution(POOL))
    answer = user.last(HandleResolutionResponse)
    assert answer.error is None and answer.pool_elements
    core.handlespace.check_invariants()
    malformed_lines = [e for e in net.nodes["A"].logs if "malformed ASAP" in e.message]
    assert len(malformed_lines) == 1
    assert all(e.level < logging.ERROR for e in net.nodes["A"].logs)


def test_malformed_enrp_is_answered_with_enrp_error_and_logged_once() -> None:
    net = Net()
    net.add_registrar("A", REG)
    a = net.core("A")
    a.enrp_connection_opened(500, PeerAddress("127.0.0.1", 4000), net.now)
    for _ in range(3):
        a.receive(500, PPID.ENRP, bytes([0x55, 0, 0, 12]) + bytes(8), net.now)
    actions = a.pop_actions()
    answers = [decode_enrp(x.data) for x in actions if isinstance(x, SendMessage)]
    assert len(answers) == 3
    assert all(
        isinstance(m, EnrpError) and m.error.first_code == ErrorCause.UNRECOGNIZED_MESSAGE
        for m in answers
    )
    logs = [x for x in actions if isinstance(x, LogEvent) and "malformed" in x.message]
    assert len(logs) == 1


def test_multicast_garbage_and_own_presence_are_ignored() -> None:
    net = Net()
    net.add_registrar("A", REG)
    a = net.core("A")
    source = PeerAddress("127.0.0.5", 9999)
    for _ in range(5):
        a.receive_multicast(PPID.ENRP, b"\x01\x00\x00\x05garbage", source, net.now)
    own = Presence(REG, 0, 0xFFFF, ServerInformation(REG, TcpTransport(1, (ip("127.0.0.1"),))))
    a.receive_multicast(PPID.ENRP, encode_enrp(own), source, net.now)
    actions = a.pop_actions()
    assert not any(isinstance(x, SendMessage) for x in actions)
    assert len([x for x in actions if "malformed multicast" in getattr(x, "message", "")]) == 1
    assert a.status().peers == ()


def test_connection_limit_closes_extra_connections() -> None:
    net = Net()
    net.add_registrar("A", REG, max_asap_connections=2)
    a = net.core("A")
    for conn in (1, 2, 3):
        a.asap_connection_opened(conn, PeerAddress("127.0.0.1", 4000 + conn), "tcp-mapping", 0.0)
    closes = [x for x in a.pop_actions() if isinstance(x, CloseConnection)]
    assert [c.conn for c in closes] == [3] and closes[0].abort
    a.connection_lost(1, 0.0)
    a.asap_connection_opened(4, PeerAddress("127.0.0.1", 4004), "tcp-mapping", 0.0)
    assert not [x for x in a.pop_actions() if isinstance(x, CloseConnection)]


def test_shutdown_closes_everything_and_goes_quiet() -> None:
    net, _pe, _conn = setup()
    a = net.core("A")
    a.shutdown(net.now)
    closes = [x for x in a.pop_actions() if isinstance(x, CloseConnection)]
    assert len(closes) == 1
    assert a.next_deadline() is None
    a.receive(closes[0].conn, PPID.ASAP, encode_asap(HandleResolution(POOL)), net.now)
    assert a.pop_actions() == []
