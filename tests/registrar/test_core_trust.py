"""What ENRP peers may change (docs/trust-model.md): the trust rules of the registrar core,
socket-free with a fake clock. A hand-driven ``FakePeer`` plays a rogue or confused peer."""

from __future__ import annotations

from typing import Any

from rsplib.wire.asap import RegistrationResponse
from rsplib.wire.constants import ErrorCause, UpdateAction
from rsplib.wire.enrp import (
    HandleTableResponse,
    HandleUpdate,
    Presence,
    TakeoverServer,
)
from rsplib.wire.params import PoolElementParam, ServerInformation, TcpTransport, ip
from tests.registrar.core_harness import FAST, POOL, FakePE, FakePeer, Net

A, B, ROGUE = 0x10, 0x20, 0xBAD


def setup(**overrides: Any) -> tuple[Net, FakePeer, int]:
    """Registrar A (B peered with it) and a rogue peer that introduced itself."""
    net = Net()
    net.add_registrar("A", A, **overrides)
    net.add_registrar("B", B, peers=("A",), **overrides)
    net.run(3.0)
    rogue = FakePeer(net, host="127.0.0.66")
    conn = net.connect_peer(rogue, "A")
    rogue.send(conn, presence(ROGUE))
    assert ROGUE in net.core("A").enrp.peers
    return net, rogue, conn


def presence(sender: int, receiver: int = 0) -> Presence:
    info = ServerInformation(sender, TcpTransport(40000, (ip("127.0.0.66"),)))
    return Presence(sender, receiver, 0xFFFF, info)


def param(pe: FakePE, identifier: int, home: int, port: int = 50000) -> PoolElementParam:
    base = pe.param(identifier)
    return PoolElementParam(
        identifier,
        home,
        base.registration_life,
        TcpTransport(port, (ip("127.0.0.1"),)),
        base.policy,
        TcpTransport(port + 1, (ip("127.0.0.1"),)),
    )


def update(add: bool, pe: PoolElementParam, sender: int = ROGUE) -> HandleUpdate:
    action = UpdateAction.ADD_PE if add else UpdateAction.DEL_PE
    return HandleUpdate(sender, A, action, POOL, pe)


def port_of(net: Net, name: str, identifier: int) -> int | None:
    entry = net.core(name).handlespace.get(POOL, identifier)
    return None if entry is None else entry.user_transport.port


def test_a_pe_registered_here_is_changed_only_by_its_own_connection() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    pe_conn = net.connect_pe(pe, "A")
    pe.register(pe_conn, 1)
    own_port = port_of(net, "A", 1)
    for home in (ROGUE, A):  # claiming itself or us as the home
        rogue.send(conn, update(True, param(pe, 1, home)))
        rogue.send(conn, update(False, param(pe, 1, home)))
    assert port_of(net, "A", 1) == own_port
    entry = net.core("A").handlespace.get(POOL, 1)
    assert entry is not None and entry.home_registrar_id == A
    assert "PE is registered here" in net.log_text("A")


def test_deletions_come_only_from_the_home_registrar() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    pe.register(net.connect_pe(pe, "B"), 2)  # B's PE, known at A through B's update
    assert net.core("A").handlespace.get(POOL, 2) is not None
    rogue.send(conn, update(False, param(pe, 2, B)))
    assert net.core("A").handlespace.get(POOL, 2) is not None


def test_a_live_registrars_pe_cannot_be_moved_but_a_dead_ones_can() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    pe.register(net.connect_pe(pe, "B"), 3)
    rogue.send(conn, update(True, param(pe, 3, ROGUE, port=51000)))
    assert port_of(net, "A", 3) != 51000
    assert "PE of live registrar 0x00000020" in net.log_text("A")
    net.hang("B")
    net.run(FAST["peer_max_time_last_heard"] + 0.1)  # A probes B now: not alive any more
    rogue.send(conn, presence(ROGUE))  # the rogue itself stays heard
    rogue.send(conn, update(True, param(pe, 3, ROGUE, port=51000)))
    assert port_of(net, "A", 3) == 51000  # the PE moved to the sender (re-registered there)


def test_handle_update_speaks_only_for_the_senders_own_pes() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    rogue.send(conn, update(True, param(pe, 4, 0x77)))
    assert net.core("A").handlespace.get(POOL, 4) is None


def test_unsolicited_handle_table_response_is_dropped() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    rogue.send(conn, HandleTableResponse(ROGUE, A, ((POOL, (param(pe, 5, ROGUE),)),)))
    assert net.core("A").handlespace.get(POOL, 5) is None
    assert "Handle Table Response we did not ask for" in net.log_text("A")


def test_takeover_of_a_live_registrar_is_refused() -> None:
    net, rogue, conn = setup()
    pe = FakePE(net)
    pe.register(net.connect_pe(pe, "B"), 6)
    rogue.send(conn, TakeoverServer(ROGUE, A, B))
    entry = net.core("A").handlespace.get(POOL, 6)
    assert entry is not None and entry.home_registrar_id == B
    assert B in net.core("A").enrp.peers
    assert "which is alive here: refused" in net.log_text("A")


def test_per_peer_quota_and_rate_budget() -> None:
    net, rogue, conn = setup(max_pes_per_peer=5, max_peer_pe_rate=20.0, max_peer_pe_burst=8.0)
    pe = FakePE(net)
    for identifier in range(100, 120):  # 20 at once: 8 pass the budget, 5 fit the quota
        rogue.send(conn, update(True, param(pe, identifier, ROGUE)))
    hs = net.core("A").handlespace
    assert hs.count_of_home(ROGUE) == 5
    log = net.log_text("A")
    assert "more than 5 PEs of registrar 0x00000bad" in log
    assert "more than 20 PE changes per second" in log


def test_a_registrar_id_connected_from_one_host_cannot_be_claimed_from_another() -> None:
    net, _rogue, _conn = setup()
    impostor = FakePeer(net, host="127.0.0.99")
    conn = net.connect_peer(impostor, "A")
    impostor.send(conn, presence(B, A))  # B is connected from 127.0.0.1
    pe = FakePE(net)
    impostor.send(conn, update(True, param(pe, 7, B), sender=B))
    assert net.core("A").handlespace.get(POOL, 7) is None
    assert "claims id 0x00000020" in net.log_text("A")


def test_peer_table_is_bounded() -> None:
    net, _rogue, _conn = setup(max_enrp_peers=2)  # B and the rogue
    other = FakePeer(net, host="127.0.0.67")
    other.send(net.connect_peer(other, "A"), presence(0xC0FFEE))
    assert 0xC0FFEE not in net.core("A").enrp.peers
    assert "ignoring new ENRP peers beyond 2" in net.log_text("A")


def test_handlespace_limit_refuses_registrations() -> None:
    net = Net()
    net.add_registrar("A", A, max_pool_elements=2)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for identifier in (1, 2, 3):
        pe.register(conn, identifier)
    assert pe.last(RegistrationResponse).error.first_code == ErrorCause.LACK_OF_RESOURCES
    pe.register(conn, 2)  # an update of a stored PE still works
    assert pe.last(RegistrationResponse).error is None
