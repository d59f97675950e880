"""Registrar core, ASAP side: registration checks, deregistration, resolution, keep-alives,
unreachable reports, rate limits and announces (sans-IO, fake clock)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rsplib.registrar.config import AddressScope
from rsplib.wire.asap import (
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointUnreachable,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    ServerAnnounce,
    decode_asap,
)
from rsplib.wire.constants import ErrorCause, PolicyType, TransportUse
from rsplib.wire.params import PolicyParam, TcpTransport, ip
from tests.registrar.core_harness import FAST, POOL, FakePE, Net

REG = 0x100


def single(**overrides: Any) -> tuple[Net, FakePE, int]:
    net = Net()
    net.add_registrar("A", REG, **overrides)
    pe = FakePE(net)
    return net, pe, net.connect_pe(pe, "A")


def test_registration_is_accepted_and_filled_in_from_the_connection() -> None:
    net, pe, conn = single()
    pe.register(conn, 0x11)
    response = pe.last(RegistrationResponse)
    assert response == RegistrationResponse(POOL, 0x11)
    entry = net.core("A").handlespace.get(POOL, 0x11)
    assert entry is not None
    assert entry.home_registrar_id == REG
    assert entry.asap_transport == TcpTransport(pe.port, (ip(pe.host),), TransportUse.DATA_ONLY)
    assert entry.connection == net.core_conn_of(pe, conn)
    assert net.core("A").status().owned_pe_count == 1


@pytest.mark.parametrize(
    ("mutate", "cause"),
    [
        ("asap_transport", ErrorCause.INVALID_REGISTRATOR),
        ("foreign_address", ErrorCause.NO_USABLE_USER_ADDRESSES),
        ("long_handle", ErrorCause.INVALID_POOL_HANDLE),
    ],
)
def test_registration_rejects(mutate: str, cause: int) -> None:
    net, pe, conn = single()
    param = pe.param(0x21)
    pool = POOL
    if mutate == "asap_transport":
        param = replace(param, asap_transport=TcpTransport(1, (ip("127.0.0.1"),)))
    elif mutate == "foreign_address":
        param = pe.param(0x21, address="127.0.0.2")
    elif mutate == "long_handle":
        pool = b"x" * 33
    pe.send(conn, Registration(pool, param))
    response = pe.last(RegistrationResponse)
    assert response.rejected
    assert response.error.first_code == cause
    assert response.identifier == 0x21
    assert len(net.core("A").handlespace) == 0


def test_default_scope_rejects_loopback_and_accepts_site_local() -> None:
    net = Net()
    net.add_registrar("A", REG, min_address_scope=AddressScope.SITE_LOCAL)
    local = FakePE(net, host="127.0.0.1")
    conn = net.connect_pe(local, "A")
    local.register(conn, 1)
    assert local.last(RegistrationResponse).error.first_code == ErrorCause.NO_USABLE_USER_ADDRESSES
    site = FakePE(net, host="10.1.2.3")
    conn = net.connect_pe(site, "A")
    site.register(conn, 2)
    assert not site.last(RegistrationResponse).rejected


def test_wildcard_user_address_means_the_connection_address() -> None:
    net, pe, conn = single()
    pe.register(conn, 5, address="0.0.0.0")
    assert not pe.last(RegistrationResponse).rejected
    entry = net.core("A").handlespace.get(POOL, 5)
    assert entry is not None and entry.user_transport.addresses == (ip(pe.host),)


def test_pe_identifier_zero_is_rejected_with_a_registration_response() -> None:
    _net, pe, conn = single()
    data = bytearray(_registration_bytes(pe, 0x77))
    # The PE identifier is the first field of the Pool Element parameter.
    at = data.index(bytes.fromhex("00000077"))
    data[at : at + 4] = bytes(4)
    pe.send_raw(conn, bytes(data))
    response = pe.last(RegistrationResponse)
    assert response.rejected and response.error.first_code == ErrorCause.INVALID_PE_IDENTIFIER


def _registration_bytes(pe: FakePE, identifier: int) -> bytes:
    from rsplib.wire.asap import encode_asap

    return encode_asap(Registration(POOL, pe.param(identifier)))


def test_inconsistent_policy_is_rejected() -> None:
    _net, pe, conn = single()
    pe.register(conn, 1)
    pe.register(conn, 2, policy=PolicyParam(PolicyType.LEAST_USED, load=3))
    assert pe.last(RegistrationResponse).error.first_code == ErrorCause.INCONSISTENT_POOLING_POLICY


def test_pes_per_connection_limit() -> None:
    _net, pe, conn = single(max_pes_per_connection=2)
    for identifier in (1, 2, 3):
        pe.register(conn, identifier)
    responses = pe.received(RegistrationResponse)
    assert [r.rejected for r in responses] == [False, False, True]
    assert responses[-1].error.first_code == ErrorCause.LACK_OF_RESOURCES
    pe.register(conn, 1)  # re-registration of a known PE is not a new one
    assert not pe.last(RegistrationResponse).rejected


def test_pe_identity_is_bound_to_its_connection() -> None:
    net, pe, conn = single()
    pe.register(conn, 9)
    other = FakePE(net, host="127.0.0.2")
    other_conn = net.connect_pe(other, "A")
    other.send(other_conn, Registration(POOL, pe.param(9, address="127.0.0.2")))
    assert other.last(RegistrationResponse).error.first_code == ErrorCause.REJECTION_DUE_TO_SECURITY
    # Same host, another connection: refused too while the first one is open.
    second = net.connect_pe(pe, "A")
    pe.register(second, 9)
    assert pe.last(RegistrationResponse).error.first_code == ErrorCause.REJECTION_DUE_TO_SECURITY
    entry = net.core("A").handlespace.get(POOL, 9)
    assert entry is not None and entry.connection == net.core_conn_of(pe, conn)
    pe.register(conn, 9)  # the owner still updates
    assert not pe.last(RegistrationResponse).rejected
    net.close_pe_connection(pe, conn)  # a PE that reconnected registers once the old one is gone
    pe.register(second, 9)
    assert not pe.last(RegistrationResponse).rejected
    entry = net.core("A").handlespace.get(POOL, 9)
    assert entry is not None and entry.connection == net.core_conn_of(pe, second)


def test_deregistration_only_from_the_registering_connection() -> None:
    net, pe, conn = single()
    pe.register(conn, 3)
    intruder = FakePE(net)
    intruder_conn = net.connect_pe(intruder, "A")
    intruder.send(intruder_conn, Deregistration(POOL, 3))
    answer = intruder.last(DeregistrationResponse)
    assert answer.error is not None
    assert answer.error.first_code == ErrorCause.REJECTION_DUE_TO_SECURITY
    assert net.core("A").handlespace.get(POOL, 3) is not None
    pe.send(conn, Deregistration(POOL, 3))
    assert pe.last(DeregistrationResponse) == DeregistrationResponse(POOL, 3)
    assert net.core("A").handlespace.get(POOL, 3) is None
    pe.send(conn, Deregistration(POOL, 3))  # unknown: success, as rsplib
    assert pe.last(DeregistrationResponse).error is None


def test_handle_resolution_semantics() -> None:
    net, pe, conn = single(max_hr_items=2)
    user = FakePE(net)
    user_conn = net.connect_pe(user, "A")
    user.send(user_conn, HandleResolution(POOL))
    assert user.last(HandleResolutionResponse).error.first_code == ErrorCause.UNKNOWN_POOL_HANDLE
    for identifier in range(1, 6):
        pe.register(conn, identifier, policy=PolicyParam(PolicyType.LEAST_USED, load=identifier))
    user.send(user_conn, HandleResolution(POOL))
    answer = user.last(HandleResolutionResponse)
    assert [p.identifier for p in answer.pool_elements] == [1, 2]  # configured default, LU
    assert answer.policy == answer.pool_elements[0].policy
    assert all(p.asap_transport is None for p in answer.pool_elements)
    user.send(user_conn, HandleResolution(POOL, items=4))
    assert len(user.last(HandleResolutionResponse).pool_elements) == 4
    user.send(user_conn, HandleResolution(POOL, items=0xFFFFFFFF))
    assert len(user.last(HandleResolutionResponse).pool_elements) == 5


def test_handle_resolution_rate_limit() -> None:
    net, pe, conn = single(max_hr_rate=5.0)
    pe.register(conn, 1)
    for _ in range(40):  # all at the same instant: far above 5/s
        pe.send(conn, HandleResolution(POOL))
    answers = pe.received(HandleResolutionResponse)
    refused = [a for a in answers if a.error is not None]
    assert len(answers) == 40
    assert refused and all(a.error.first_code == ErrorCause.UNKNOWN_POOL_HANDLE for a in refused)
    assert len(refused) < 40  # the first few of a burst pass
    net.run(30.0)
    pe.send(conn, HandleResolution(POOL))
    assert pe.last(HandleResolutionResponse).error is None


def test_keep_alive_cycle_and_timeout_removes_only_the_silent_pe() -> None:
    net, pe, conn = single()
    pe.register(conn, 1)
    pe.register(conn, 2)
    net.run(2.5)
    keepalives = pe.received(EndpointKeepAlive)
    assert keepalives, "no keep-alive after two intervals"
    assert {k.identifier for k in keepalives} == {1, 2}
    assert all(k.server_id == REG and not k.home for k in keepalives)
    hs = net.core("A").handlespace
    assert len(hs) == 2
    # PE 2 stops answering: it disappears within interval + timeout, PE 1 stays.
    original = pe.receive

    def selective(c: int, data: bytes) -> None:
        msg = decode_asap(data)
        if isinstance(msg, EndpointKeepAlive) and msg.identifier == 2:
            return
        original(c, data)

    pe.receive = selective  # type: ignore[method-assign,assignment]
    net.run(2.0 + 0.1)
    assert hs.get(POOL, 2) is None
    assert hs.get(POOL, 1) is not None
    assert conn in pe.open  # the connection carrying the other PE stays open
    hs.check_invariants()


def test_unreachable_report_probes_the_pe_which_stays_when_it_answers() -> None:
    net, pe, conn = single(max_bad_pe_reports=3)
    pe.register(conn, 7)
    hs = net.core("A").handlespace
    for _ in range(3):  # three pool users, each reporting many times
        user = FakePE(net)
        user_conn = net.connect_pe(user, "A")
        for _ in range(5):
            user.send(user_conn, EndpointUnreachable(POOL, 7))
    # One immediate probe (not one per report); the PE answered it and stays.
    probes = pe.received(EndpointKeepAlive, conn)
    assert len(probes) == 1
    assert hs.get(POOL, 7) is not None
    net.run(FAST["endpoint_keepalive_interval"] + 0.1)
    assert hs.get(POOL, 7) is not None
    assert net.core("A").asap.bad_report_count(POOL, 7) == 0  # settled by its answers


def test_unreachable_pe_that_does_not_answer_the_probe_is_removed() -> None:
    net, pe, conn = single()
    pe.register(conn, 7)
    pe.answer_keepalives = False
    user = FakePE(net)
    user_conn = net.connect_pe(user, "A")
    user.send(user_conn, EndpointUnreachable(POOL, 7))
    hs = net.core("A").handlespace
    assert hs.get(POOL, 7) is not None
    net.run(FAST["endpoint_keepalive_timeout"] + 0.1)
    assert hs.get(POOL, 7) is None


def test_unreachable_reports_count_once_per_connection_for_pes_not_ours() -> None:
    net, pe, conn = single(max_bad_pe_reports=3)
    pe.register(conn, 7)
    core = net.core("A")
    entry = core.handlespace.get(POOL, 7)
    assert entry is not None
    entry.connection = None  # as a taken-over PE: nothing to probe
    users = [FakePE(net) for _ in range(3)]
    conns = [net.connect_pe(user, "A") for user in users]
    for _ in range(10):
        users[0].send(conns[0], EndpointUnreachable(POOL, 7))
    users[1].send(conns[1], EndpointUnreachable(POOL, 7))
    assert core.handlespace.get(POOL, 7) is not None
    assert core.asap.bad_report_count(POOL, 7) == 2
    users[2].send(conns[2], EndpointUnreachable(POOL, 7))
    assert core.handlespace.get(POOL, 7) is None


@pytest.mark.parametrize("limit", [None, 1.0])
def test_unreachable_rate_limit_applies_from_the_first_report(limit: float | None) -> None:
    net, pe, conn = single(max_eu_rate=limit)
    pe.register(conn, 7)
    user = FakePE(net)
    user_conn = net.connect_pe(user, "A")
    asap = net.core("A").asap
    user.send(user_conn, EndpointUnreachable(POOL, 7))  # probed; the answer settles it
    assert asap.bad_report_count(POOL, 7) == 0
    user.send(user_conn, EndpointUnreachable(POOL, 7))  # the second report at once
    assert asap.bad_report_count(POOL, 7) == (0 if limit else 1)
    # Probes are not repeated at the rate of the reports: one per keep-alive interval.
    assert len(pe.received(EndpointKeepAlive, conn)) == 1


def test_connection_loss_removes_all_its_pes() -> None:
    net, pe, conn = single()
    for identifier in range(1, 4):
        pe.register(conn, identifier)
    other = FakePE(net)
    other_conn = net.connect_pe(other, "A")
    other.register(other_conn, 10)
    net.close_pe_connection(pe, conn)
    hs = net.core("A").handlespace
    assert len(hs) == 1 and hs.get(POOL, 10) is not None
    hs.check_invariants()


def test_server_announces_start_after_startup_and_are_jittered() -> None:
    net = Net()
    net.add_registrar("A", REG, server_announce_cycle=1.0, mentor_discovery_timeout=3.0)
    net.run(2.9)
    assert net.nodes["A"].announces == []
    assert not net.core("A").status().ready
    net.run(20.0)
    node = net.nodes["A"]
    assert net.core("A").status().ready
    announce = decode_asap(node.announces[0])
    assert isinstance(announce, ServerAnnounce) and announce.server_id == REG
    assert announce.transports[0].port == 3001
    # ~1 s +-12.5 % apart: 17..23 announces in about 20 s
    assert 17 <= len(node.announces) <= 23


def test_a_new_tcp_mapping_connection_is_greeted_with_the_registrar_identifier() -> None:
    import random

    from rsplib.addressing import PeerAddress
    from rsplib.registrar import RegistrarConfig, RegistrarCore
    from rsplib.registrar.actions import SendMessage
    from rsplib.wire.asap import ServerAnnounce, decode_asap

    core = RegistrarCore(RegistrarConfig(), 0x1234ABCD, random.Random(1), 0.0)
    core.pop_actions()
    core.asap_connection_opened(1, PeerAddress("127.0.0.1", 5000), "tcp-mapping", 0.0)
    sent = [a for a in core.pop_actions() if isinstance(a, SendMessage)]
    assert [(a.conn, decode_asap(a.data)) for a in sent] == [(1, ServerAnnounce(0x1234ABCD))]
    # rsplib's components speak SCTP only and get no such message.
    core.asap_connection_opened(2, PeerAddress("127.0.0.1", 5001), "sctp", 0.0)
    assert not [a for a in core.pop_actions() if isinstance(a, SendMessage)]
