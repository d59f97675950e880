"""Registrar core: peer monitoring and takeover with three and with two registrars, the
concurrent takeover race, abandoned takeovers, and restart with resync (fake clock)."""

from __future__ import annotations

from rsplib.wire.asap import (
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    HandleResolution,
    HandleResolutionResponse,
)
from rsplib.wire.enrp import InitTakeover, InitTakeoverAck, TakeoverServer
from tests.registrar.core_harness import FAST, POOL, FakePE, Net

A, B, C = 0x10, 0x20, 0x30
#: Silence needed before a takeover starts: last heard + no response (+ one cycle).
DETECTION: float = FAST["peer_max_time_last_heard"] + FAST["peer_max_time_no_response"]
EXPIRY: float = FAST["takeover_expiry"]


def setup(names: tuple[str, ...], pes: int = 5) -> tuple[Net, FakePE]:
    net = Net()
    ids = {"A": A, "B": B, "C": C}
    started: list[str] = []
    for name in names:
        net.add_registrar(name, ids[name], peers=tuple(started))
        started.append(name)
    net.run(3.0)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for identifier in range(1, pes + 1):
        pe.register(conn, identifier)
    return net, pe


def homes(net: Net, name: str) -> set[int]:
    return {e.home_registrar_id for e in net.core(name).handlespace.entries()}


def sent(net: Net, name: str, kind: type) -> list[object]:
    return [m for _, m in net.nodes[name].sent_enrp if isinstance(m, kind)]


def test_takeover_with_three_registrars() -> None:
    net, _ = setup(("A", "B", "C"))
    net.kill("A")
    net.run(DETECTION + EXPIRY)
    # B (the lower id) took over; C acked and re-homed the PEs to B.
    assert homes(net, "B") == homes(net, "C") == {B}
    assert len(net.core("B").handlespace) == len(net.core("C").handlespace) == 5
    assert sent(net, "C", InitTakeoverAck)
    assert sent(net, "B", TakeoverServer)
    assert A not in {p.server_id for p in net.core("B").status().peers}
    b, c = net.core("B").handlespace, net.core("C").handlespace
    assert b.ownership_checksum(B) == c.ownership_checksum(B)
    # Still resolvable at both survivors.
    for name in ("B", "C"):
        user = FakePE(net)
        conn = net.connect_pe(user, name)
        user.send(conn, HandleResolution(POOL))
        assert len(user.last(HandleResolutionResponse).pool_elements) == 3


def test_takeover_completes_with_only_two_registrars() -> None:
    net, _ = setup(("A", "B"))
    net.kill("A")
    net.run(DETECTION + 0.6)
    assert homes(net, "B") == {B}
    assert "takeover of 0x00000010 complete: 5 PE(s)" in net.log_text("B")
    # Taken-over PEs without a connection are supervised by their registration life.
    net.run(31.0)
    assert len(net.core("B").handlespace) == 0


def test_taken_over_pe_is_refreshed_by_its_re_registration() -> None:
    net, pe = setup(("A", "B"), pes=1)
    net.kill("A")
    net.run(DETECTION + 0.6)
    conn = net.connect_pe(pe, "B")  # the PE hunted for a new registrar
    pe.register(conn, 1)
    entry = net.core("B").handlespace.get(POOL, 1)
    assert entry is not None and entry.home_registrar_id == B
    net.run(40.0)  # beyond the registration life: keep-alives supervise it now
    assert net.core("B").handlespace.get(POOL, 1) is not None
    assert pe.received(EndpointKeepAlive, conn)


def test_peer_update_does_not_move_a_pe_registered_over_an_open_connection() -> None:
    net = Net()
    net.add_registrar("A", A)
    net.add_registrar("B", B, peers=("A",))
    net.run(3.0)
    pe = FakePE(net)
    to_b = net.connect_pe(pe, "B")
    pe.register(to_b, 1)
    to_a = net.connect_pe(pe, "A")
    pe.register(to_a, 1)  # registered at A too; the connection to B stays open
    entry = net.core("B").handlespace.get(POOL, 1)
    # Only the PE's own connection changes B's entry: A's Handle Update is refused.
    assert entry is not None and entry.home_registrar_id == B
    assert entry.connection == net.core_conn_of(pe, to_b)
    assert "PE is registered here" in net.log_text("B")
    net.kill("A")
    net.run(DETECTION + 0.6)
    entry = net.core("B").handlespace.get(POOL, 1)
    assert entry is not None and entry.home_registrar_id == B
    net.run(40.0)  # kept alive by the keep-alives on its own connection
    assert net.core("B").handlespace.get(POOL, 1) is not None
    assert pe.received(EndpointKeepAlive, to_b)


def test_concurrent_takeover_lower_id_wins() -> None:
    net, _ = setup(("A", "B", "C"))
    net.hang("A")
    net.run(FAST["peer_max_time_last_heard"] + 0.1)  # both are probing A by now
    b, c = net.core("B"), net.core("C")
    # Both detect A's death at the same moment and start before either hears the other.
    b.enrp.start_takeover(A, net.now)
    c.enrp.start_takeover(A, net.now)
    net.deliver()
    assert homes(net, "B") == homes(net, "C") == {B}
    assert "left to 0x00000020" in net.log_text("C")
    assert not sent(net, "C", TakeoverServer)
    assert not b.enrp.takeover.takeovers and not c.enrp.takeover.takeovers


def test_takeover_is_abandoned_without_all_acks() -> None:
    net, _ = setup(("A", "B", "C"))
    net.hang("A")
    net.hang("C")  # C's connection stays open but it never acks
    b = net.core("B")
    b.enrp.start_takeover(A, net.now)
    net.deliver()
    net.run(EXPIRY + 0.1)
    assert "takeover of 0x00000010 abandoned" in net.log_text("B")
    assert homes(net, "B") == {A}  # PEs are kept until their registration life ends
    net.run(31.0)
    assert len(b.handlespace) == 0


def test_target_that_is_alive_cancels_the_takeover() -> None:
    net, _ = setup(("A", "B", "C"))
    net.hang("C")  # C will not ack, so only A's answer can end B's takeover
    b = net.core("B")
    b.enrp.start_takeover(A, net.now)
    net.deliver()
    assert any(isinstance(m, InitTakeover) for m in sent(net, "B", InitTakeover))
    assert not b.enrp.takeover.takeovers
    assert "cancelled: the peer is alive" in net.log_text("B")
    assert homes(net, "B") == {A}


def test_restarted_registrar_resyncs_from_a_mentor() -> None:
    net, _ = setup(("A", "B", "C"))
    net.kill("A")
    net.run(DETECTION + EXPIRY)
    net.restart("A", 0x11, peers=("B", "C"))
    net.run(1.0)
    a = net.core("A")
    assert a.status().ready and a.enrp.mentor in (B, C)
    assert {e.identifier for e in a.handlespace.entries()} == set(range(1, 6))
    assert homes(net, "A") == {B}
    # And the others accepted it as a peer again.
    net.run(2.0)
    assert 0x11 in {p.server_id for p in net.core("B").status().peers}


def test_a_stranger_cannot_claim_a_taken_over_pe_with_a_keep_alive_ack() -> None:
    net, _ = setup(("A", "B"), pes=1)
    net.kill("A")
    net.run(DETECTION + 0.6)
    stranger = FakePE(net, host="127.0.0.66")
    conn = net.connect_pe(stranger, "B")
    stranger.send(conn, EndpointKeepAliveAck(POOL, 1))
    entry = net.core("B").handlespace.get(POOL, 1)
    assert entry is not None and entry.connection is None
