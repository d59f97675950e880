"""Registrar core, ENRP side: peers, mentor start-up, handle updates, chunked table
transfer, audit resync, expiry of peer-owned PEs, multicast discovery, lists, allow-list."""

from __future__ import annotations

import ipaddress
import random

from rsplib.handlespace import TimerKind
from rsplib.registrar import ConnectToPeer, PeerAddress, RegistrarCore, SendMessage
from rsplib.wire.asap import (
    Deregistration,
    HandleResolution,
    HandleResolutionResponse,
    RegistrationResponse,
)
from rsplib.wire.codec import decode_enrp, encode_enrp
from rsplib.wire.enrp import HandleTableRequest, HandleTableResponse, ListResponse, Presence
from rsplib.wire.params import PolicyParam, SctpTransport
from tests.registrar.core_harness import POOL, FakePE, Net, config_with

A, B, C = 0x10, 0x20, 0x30


def trio(net: Net) -> None:
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.add_registrar("C", C, peers=("A", "B"))
    net.run(3.0)


def pool_ids(net: Net, name: str) -> set[int]:
    return {e.identifier for e in net.core(name).handlespace.entries()}


def test_peers_find_each_other_and_handle_updates_spread() -> None:
    net = Net()
    trio(net)
    for name, others in (("A", {B, C}), ("B", {A, C}), ("C", {A, B})):
        assert {p.server_id for p in net.core(name).status().peers} == others
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for identifier in (1, 2, 3):
        pe.register(conn, identifier)
    assert pool_ids(net, "B") == pool_ids(net, "C") == {1, 2, 3}
    entry = net.core("C").handlespace.get(POOL, 2)
    assert entry is not None and entry.home_registrar_id == A
    assert entry.asap_transport is not None and entry.asap_transport.port == pe.port
    # A pool user at C resolves the PEs registered at A.
    user = FakePE(net)
    user_conn = net.connect_pe(user, "C")
    user.send(user_conn, HandleResolution(POOL, items=3))
    assert len(user.last(HandleResolutionResponse).pool_elements) == 3
    # Deregistration and connection loss are propagated as DEL.
    pe.send(conn, Deregistration(POOL, 1))
    assert pool_ids(net, "B") == {2, 3}
    net.close_pe_connection(pe, conn)
    assert pool_ids(net, "B") == pool_ids(net, "C") == set()


def test_mentor_sync_at_startup_ends_the_startup_phase_early() -> None:
    net = Net()
    net.add_registrar("A", A)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for identifier in range(1, 11):
        pe.register(conn, identifier)
    net.run(3.0)
    net.add_registrar("B", B, peers=("A",), mentor_discovery_timeout=10.0)
    net.run(0.01)
    b = net.core("B")
    assert b.enrp.mentor == A
    assert b.status().ready  # long before the 10 s discovery timeout
    assert pool_ids(net, "B") == set(range(1, 11))
    requests = [m for _, m in net.nodes["B"].sent_enrp if isinstance(m, HandleTableRequest)]
    assert requests and not requests[0].own_children_only  # mentor: all PEs


def test_chunked_table_transfer_with_more_to_send() -> None:
    net = Net()
    net.add_registrar("A", A)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    pools = [b"P1", b"second-pool", b"P3"]
    for identifier in range(1, 301):
        pe.register(conn, identifier, pool=pools[identifier % 3])
    net.run(3.0)
    net.add_registrar("B", B, peers=("A",))
    net.run(0.01)
    responses = [m for _, m in net.nodes["A"].sent_enrp if isinstance(m, HandleTableResponse)]
    assert len(responses) >= 3
    assert [r.more_to_send for r in responses] == [True] * (len(responses) - 1) + [False]
    for response in responses:
        assert sum(len(pes) for _, pes in response.entries) <= 128
        assert len(encode_enrp(response)) <= 1400
    assert len(net.core("B").handlespace) == 300
    net.core("B").handlespace.check_invariants()


def test_own_children_only_request_sends_only_own_pes() -> None:
    net = Net()
    trio(net)
    pa, pb = FakePE(net), FakePE(net)
    ca, cb = net.connect_pe(pa, "A"), net.connect_pe(pb, "B")
    pa.register(ca, 1)
    pb.register(cb, 2)
    net.nodes["A"].sent_enrp.clear()
    b = net.core("B")
    peer = b.enrp.peers[A]
    assert peer.conn is not None
    b.enrp.send(peer.conn, HandleTableRequest(B, A, own_children_only=True))
    net.deliver()
    response = next(m for _, m in net.nodes["A"].sent_enrp if isinstance(m, HandleTableResponse))
    assert [pe.identifier for _, pes in response.entries for pe in pes] == [1]


def test_audit_resyncs_a_diverged_peer_and_purges_stale_pes() -> None:
    net = Net()
    trio(net)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for identifier in (1, 2, 3):
        pe.register(conn, identifier)
    b_hs = net.core("B").handlespace
    # Divergence: B lost PE 2 and believes in a PE 99 of A that does not exist.
    entry = b_hs.get(POOL, 2)
    assert entry is not None
    b_hs.remove(entry)
    b_hs.register(POOL, pe.param(99), home_registrar_id=A, now=net.now)
    assert b_hs.ownership_checksum(A) != net.core("A").handlespace.ownership_checksum(A)
    net.run(1.0)  # the next Presence of A carries its checksum
    assert pool_ids(net, "B") == {1, 2, 3}
    assert b_hs.ownership_checksum(A) == net.core("A").handlespace.ownership_checksum(A)
    requests = [m for _, m in net.nodes["B"].sent_enrp if isinstance(m, HandleTableRequest)]
    assert any(r.own_children_only for r in requests)
    assert "purged 1 stale" in net.log_text("B")


def test_peer_owned_pes_expire_after_their_registration_life() -> None:
    net = Net()
    # Slow peer monitoring: no takeover during this test, only expiry.
    net.add_registrar("A", A, peer_max_time_last_heard=60.0, peer_max_time_no_response=60.0)
    net.add_registrar(
        "B", B, peers=("A",), peer_max_time_last_heard=60.0, peer_max_time_no_response=60.0
    )
    net.run(1.0)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    pe.register(conn, 1, life_ms=4000)
    entry = net.core("B").handlespace.get(POOL, 1)
    assert entry is not None and entry.timer_kind == TimerKind.EXPIRY
    net.hang("A")  # no more updates from A
    net.run(3.5)
    assert net.core("B").handlespace.get(POOL, 1) is not None
    net.run(1.0)
    assert net.core("B").handlespace.get(POOL, 1) is None


def test_re_registration_refreshes_expiry_at_peers() -> None:
    net = Net()
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.run(1.0)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for _ in range(5):
        pe.register(conn, 1, life_ms=3000)
        net.run(2.0)
    assert net.core("B").handlespace.get(POOL, 1) is not None


def test_multicast_presence_discovers_peers() -> None:
    net = Net(multicast=True)
    net.add_registrar("A", A)
    net.add_registrar("B", B)  # no static peers at all
    net.run(2.0)
    assert {p.server_id for p in net.core("B").status().peers} == {A}
    assert {p.server_id for p in net.core("A").status().peers} == {B}
    assert all(p.connected for p in net.core("A").status().peers)


def test_list_response_introduces_further_peers() -> None:
    net = Net()
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.run(2.0)
    net.add_registrar("C", C, peers=("A",))  # C is told about B by its mentor A
    net.run(1.0)
    lists = [m for _, m in net.nodes["A"].sent_enrp if isinstance(m, ListResponse)]
    assert any(B in {s.server_id for s in m.servers} for m in lists)
    assert {p.server_id for p in net.core("C").status().peers} == {A, B}
    assert C in {p.server_id for p in net.core("B").status().peers}


def test_allow_list_refuses_other_peers() -> None:
    net = Net()
    net.add_registrar("A", A, peer_allow_list=frozenset({"127.0.0.9"}))
    net.add_registrar("B", B, peers=("A",))
    net.run(3.0)
    assert net.core("A").status().peers == ()
    assert "allow-list" in net.log_text("A")


def test_handle_table_request_from_unknown_registrar_is_rejected() -> None:
    net = Net()
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.run(0.01)
    # A connection of a registrar that never sent a Presence.
    a = net.core("A")
    a.enrp_connection_opened(999, PeerAddress("127.0.0.1", 1), net.now)
    a.receive(999, 12, encode_enrp(HandleTableRequest(0x77, A)), net.now)
    sent = [act for act in a.pop_actions() if isinstance(act, SendMessage) and act.conn == 999]
    answer = decode_enrp(sent[0].data)
    assert isinstance(answer, HandleTableResponse) and answer.reject


def test_updates_from_peers_do_not_override_own_pes() -> None:
    net = Net()
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.run(1.0)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    pe.register(conn, 1, policy=PolicyParam(1))
    assert not pe.last(RegistrationResponse).rejected
    # B's Handle Table Response containing A's own PE must not touch A's entry.
    a_entry = net.core("A").handlespace.get(POOL, 1)
    assert a_entry is not None and a_entry.connection is not None
    b = net.core("B")
    peer = b.enrp.peers[A]
    assert peer.conn is not None
    b.enrp.send(
        peer.conn,
        HandleTableResponse(B, A, ((POOL, (a_entry.to_param(True),)),)),
    )
    net.deliver()
    assert a_entry.connection is not None and a_entry.timer_kind != TimerKind.EXPIRY


def _first_presence(enrp_host: str, local: PeerAddress | None) -> Presence:
    """The Presence a core sends on a fresh outbound SCTP connection to its static peer."""
    peer = PeerAddress("10.0.0.2", 9901)
    config = config_with(
        enrp_endpoint=PeerAddress(enrp_host, 9901), static_peers=(peer,), transport="sctp"
    )
    core = RegistrarCore(config, A, random.Random(1), 0.0)
    core.pop_actions()
    core.enrp_connection_opened(7, peer, 0.0, outbound_to=peer, local=local)
    sent = [act for act in core.pop_actions() if isinstance(act, SendMessage) and act.conn == 7]
    presence = decode_enrp(sent[0].data)
    assert isinstance(presence, Presence)
    return presence


def test_presence_names_our_end_of_the_association_for_a_wildcard_endpoint() -> None:
    # rsplib keeps only Presence addresses of the association it arrived on: a wildcard
    # (0.0.0.0) would leave it without any and it would refuse us as a peer.
    info = _first_presence("0.0.0.0", PeerAddress("10.0.0.1", 9901)).server_info
    assert isinstance(info.transport, SctpTransport)
    assert info.transport.addresses == (ipaddress.ip_address("10.0.0.1"),)
    assert info.transport.port == 9901


def test_presence_keeps_an_explicit_endpoint_address() -> None:
    info = _first_presence("10.0.0.9", PeerAddress("10.0.0.1", 9901)).server_info
    assert info.transport.addresses == (ipaddress.ip_address("10.0.0.9"),)


def test_static_peer_that_dialled_us_from_its_endpoint_is_not_dialled_again() -> None:
    # Over SCTP both ends use their ENRP port, so a peer's inbound association comes from
    # the very address we would dial; the kernel refuses a second one between the two.
    peer = PeerAddress("10.0.0.2", 9901)
    config = config_with(
        enrp_endpoint=PeerAddress("10.0.0.1", 9901), static_peers=(peer,), transport="sctp"
    )
    core = RegistrarCore(config, A, random.Random(1), 0.0)
    assert any(isinstance(a, ConnectToPeer) for a in core.pop_actions())
    core.peer_connect_failed(peer, 0.1)
    core.enrp_connection_opened(8, peer, 0.2)
    core.pop_actions()
    for step in range(1, 40):
        core.handle_timer(step * 0.5)
        assert not any(isinstance(a, ConnectToPeer) for a in core.pop_actions())
    # Once that association is gone, the static peer is dialled again.
    core.connection_lost(8, 20.0)
    dialled = False
    for step in range(41, 200):
        core.handle_timer(step * 0.5)
        dialled = dialled or any(isinstance(a, ConnectToPeer) for a in core.pop_actions())
    assert dialled
