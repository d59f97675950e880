"""The tracer: message summaries, events, flushing, and a flood that must not block."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator

import pytest

from rsplib import trace
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.trace.buffer import TraceBuffer
from rsplib.trace.receiver import TraceParser
from rsplib.trace.record import EventRecord, MessageRecord, decode_datagram
from rsplib.trace.summary import summarize
from rsplib.trace.tracer import Tracer
from rsplib.wire.asap import (
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    encode_asap,
)
from rsplib.wire.constants import PPID, ErrorCause
from rsplib.wire.enrp import HandleUpdate, encode_enrp
from rsplib.wire.params import OperationError, PoolElementParam, TcpTransport


def _pe(identifier: int, load: int = 0) -> PoolElementParam:
    policy = parse_policy("LeastUsed") if load else parse_policy("RoundRobin")
    if load:
        policy = type(policy)(policy.policy_type, load=load)
    return PoolElementParam(
        identifier=identifier,
        home_registrar_id=0x11,
        registration_life=5000,
        user_transport=TcpTransport(4711, (ipaddress.ip_address("127.0.0.1"),)),
        policy=policy,
    )


def test_registration_summary() -> None:
    data = encode_asap(Registration(b"FractalPool", _pe(0x42)))
    s = summarize(int(PPID.ASAP), data)
    assert (s.proto, s.type, s.pool_handle, s.pe) == ("asap", "REGISTRATION", "FractalPool", 0x42)
    assert s.fields["policy"] == "ROUND_ROBIN"
    assert s.fields["transport"] == "tcp 127.0.0.1:4711"
    assert s.fields["home"] == 0x11 and s.fields["life"] == 5000


def test_resolution_response_lists_the_selected_pes() -> None:
    data = encode_asap(HandleResolutionResponse(b"P", parse_policy("RoundRobin"), (_pe(1), _pe(2))))
    s = summarize(int(PPID.ASAP), data)
    assert s.type == "HANDLE_RESOLUTION_RESPONSE" and s.fields["pes"] == (1, 2)
    assert s.fields["pe_count"] == 2 and s.fields["policy"] == "ROUND_ROBIN"


def test_error_cause_by_name_and_enrp_update() -> None:
    refused = encode_asap(
        RegistrationResponse(b"P", 7, OperationError.of(ErrorCause.INVALID_VALUES))
    )
    assert summarize(int(PPID.ASAP), refused).fields["error"] == ("INVALID_VALUES",)
    from rsplib.wire.constants import UpdateAction

    update = encode_enrp(HandleUpdate(1, 2, UpdateAction.ADD_PE, b"P", _pe(9, load=5)))
    s = summarize(int(PPID.ENRP), update)
    assert s.type == "HANDLE_UPDATE" and s.pe == 9
    assert s.fields["action"] == "ADD_PE" and s.fields["from"] == 1 and s.fields["to"] == 2


def test_undecodable_and_unknown_payloads_are_still_traced() -> None:
    bad = summarize(int(PPID.ASAP), b"\x01\x00\x00\x40short")
    assert bad.type == "UNDECODABLE_1" and "error" in bad.fields
    other = summarize(99, b"xyz")
    assert (other.proto, other.type) == ("data", "PPID_99")


def _collecting_tracer(buffer: TraceBuffer | None = None) -> tuple[Tracer, list[bytes]]:
    sent: list[bytes] = []

    def output(datagram: bytes) -> bool:
        sent.append(datagram)
        return True

    tracer = Tracer()
    tracer.start(output, buffer=buffer, clock=lambda: 1000.0)
    tracer.identify(0x0200_0000_0000_0042)
    return tracer, sent


def test_tracer_records_messages_and_events() -> None:
    tracer, sent = _collecting_tracer()
    data = encode_asap(Registration(b"P", _pe(0x42)))
    tracer.message("tx", int(PPID.ASAP), data, ("127.0.0.1", 5000), ("127.0.0.1", 3863))
    tracer.event("failover", {"session": 1, "cells": [1, 2], "old_pe": None})
    tracer.stop()
    records = [r for d in sent for r in decode_datagram(d)]
    msg, ev = records
    assert isinstance(msg, MessageRecord) and isinstance(ev, EventRecord)
    assert msg.component == ev.component == 0x0200_0000_0000_0042
    assert (msg.seq, ev.seq) == (0, 1)
    assert (msg.local, msg.peer, msg.length) == ("127.0.0.1:5000", "127.0.0.1:3863", len(data))
    assert ev.fields == {"session": 1, "cells": (1, 2), "old_pe": None}


def test_raw_bytes_when_asked() -> None:
    tracer, sent = _collecting_tracer()
    tracer.raw = True
    data = encode_asap(Registration(b"P", _pe(1)))
    tracer.message("rx", int(PPID.ASAP), data, ("::1", 1), ("::1", 2))
    tracer.message("rx", 99, b"\xab" * 4000, ("::1", 1), ("::1", 2))  # too big: raw cut
    tracer.stop()
    first, second = (r for d in sent for r in decode_datagram(d))
    assert isinstance(first, MessageRecord) and first.raw == data
    assert first.peer == "[::1]:2"
    assert isinstance(second, MessageRecord) and second.length == 4000
    assert second.raw is not None and len(second.raw) == 512


def test_refused_datagrams_count_as_drops() -> None:
    tracer = Tracer()
    tracer.start(lambda d: False)
    tracer.event("x", {})
    tracer.stop()
    assert tracer.buffer.dropped == 1


def test_tail_is_flushed_from_the_event_loop() -> None:
    async def scenario() -> list[bytes]:
        tracer, sent = _collecting_tracer()
        tracer.event("x", {})
        assert sent == []
        await asyncio.sleep(0.1)
        tracer.stop()
        return sent

    assert len(asyncio.run(scenario())) == 1


def test_emit_event_is_a_no_op_while_off() -> None:
    assert not trace.TRACER.on
    trace.emit_event("failover", session=1)


@pytest.fixture
def unread_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_flood_drops_and_never_blocks(unread_socket: socket.socket) -> None:
    """A flood into a receiver that does not read: every record is sent or counted dropped."""
    port = unread_socket.getsockname()[1]
    tracer = trace.start_trace(("127.0.0.1", port), rate=5000.0, burst=1000, max_queue=500)
    try:
        tracer.identify(1)
        data = encode_asap(Registration(b"FloodPool", _pe(7)))
        count = 50_000
        for _ in range(count):
            tracer.message("tx", int(PPID.ASAP), data, ("127.0.0.1", 1), ("127.0.0.1", 2))
        tracer.flush()
    finally:
        trace.stop_trace()
    buffer = tracer.buffer
    assert buffer.next_seq == count
    assert buffer.dropped > 0
    assert buffer.sent_records + buffer.dropped == count
    # What the kernel kept: valid datagrams whose seq gaps agree with the drops.
    unread_socket.setblocking(False)
    parser = TraceParser()
    received = 0
    while True:
        try:
            received += len(parser.feed(unread_socket.recv(2000)))
        except BlockingIOError:
            break
    assert 0 < received <= buffer.sent_records
    assert parser.bad_datagrams == 0
