"""A socket-free network for registrar cores and fake PEs, driven by a fake clock.

``Net`` routes the cores' actions: SendMessage to the other end of the connection,
ConnectToPeer to the registrar listening on that address, multicast Presence to every other
core, CloseConnection as a loss at the other end. Deliveries are FIFO, so message order per
connection is kept, like TCP. Killing a core makes its connections fail at the other ends
(as a SIGKILL's RST does); hanging it silently drops everything to and from it.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from rsplib.registrar import (
    CloseConnection,
    ConnectToPeer,
    LogEvent,
    PeerAddress,
    RegistrarConfig,
    RegistrarCore,
    SendAsapAnnounce,
    SendEnrpPresence,
    SendMessage,
)
from rsplib.registrar.config import AddressScope
from rsplib.wire.asap import (
    AsapMessage,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    Registration,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.enrp import EnrpMessage, decode_enrp, encode_enrp
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport, ip
from rsplib.wire.tlv import DecodeLimits

POOL = b"TestPool"
#: Fake PEs accept over-long pool handles so they can read the registrar's rejections.
LENIENT = DecodeLimits(max_pool_handle=1024)
#: Short timers so scenarios finish in a few simulated seconds.
FAST: dict[str, Any] = {
    "endpoint_keepalive_interval": 1.0,
    "endpoint_keepalive_timeout": 1.0,
    "peer_heartbeat_cycle": 0.5,
    "peer_max_time_last_heard": 1.5,
    "peer_max_time_no_response": 1.0,
    "mentor_discovery_timeout": 2.0,
    "takeover_expiry": 2.0,
    "min_address_scope": AddressScope.LOOPBACK,
}


@dataclass
class End:
    """One end of a connection: a core (with its conn id) or a fake PE."""

    owner: Any
    conn: int


@dataclass
class Node:
    name: str
    core: RegistrarCore
    enrp_address: PeerAddress
    alive: bool = True
    hung: bool = False
    logs: list[LogEvent] = field(default_factory=list)
    announces: list[bytes] = field(default_factory=list)
    sent_enrp: list[tuple[int, EnrpMessage]] = field(default_factory=list)


class FakePE:
    """A pool element process: one or more ASAP connections, answers keep-alives."""

    def __init__(self, net: Net, host: str = "127.0.0.1") -> None:
        self.net = net
        self.host = host
        self.port = net.next_port()
        self.inbox: list[tuple[int, AsapMessage]] = []
        self.answer_keepalives = True
        self.open: set[int] = set()

    def receive(self, conn: int, data: bytes) -> None:
        msg = decode_asap(data, LENIENT)
        self.inbox.append((conn, msg))
        if isinstance(msg, EndpointKeepAlive) and self.answer_keepalives:
            assert msg.identifier is not None
            self.send(conn, EndpointKeepAliveAck(msg.pool_handle, msg.identifier))

    def lost(self, conn: int) -> None:
        self.open.discard(conn)

    def send(self, conn: int, msg: AsapMessage) -> None:
        self.send_raw(conn, encode_asap(msg))

    def send_raw(self, conn: int, data: bytes, ppid: int = PPID.ASAP) -> None:
        self.net.send_from_pe(self, conn, ppid, data)

    def register(
        self,
        conn: int,
        identifier: int,
        pool: bytes = POOL,
        *,
        policy: PolicyParam | None = None,
        life_ms: int = 30_000,
        address: str | None = None,
    ) -> None:
        self.send(conn, Registration(pool, self.param(identifier, policy, life_ms, address)))

    def param(
        self,
        identifier: int,
        policy: PolicyParam | None = None,
        life_ms: int = 30_000,
        address: str | None = None,
    ) -> PoolElementParam:
        return PoolElementParam(
            identifier,
            0,
            life_ms,
            TcpTransport(5000 + identifier % 1000, (ip(address or self.host),)),
            policy or PolicyParam(PolicyType.ROUND_ROBIN),
        )

    def received(self, kind: type, conn: int | None = None) -> list[Any]:
        return [m for c, m in self.inbox if isinstance(m, kind) and (conn is None or c == conn)]

    def last(self, kind: type) -> Any:
        found = self.received(kind)
        assert found, f"no {kind.__name__} received"
        return found[-1]


class FakePeer(FakePE):
    """A registrar driven by hand over ENRP (e.g. a rogue one): sends and records ENRP."""

    def receive(self, conn: int, data: bytes) -> None:
        self.inbox.append((conn, decode_enrp(data)))

    def send(self, conn: int, msg: Any) -> None:
        self.send_raw(conn, encode_enrp(msg), PPID.ENRP)


class Net:
    def __init__(self, *, multicast: bool = False, seed: int = 1) -> None:
        self.now = 0.0
        self.multicast = multicast
        self.rng = random.Random(seed)
        self.nodes: dict[str, Node] = {}
        self.routes: dict[tuple[int, int], End] = {}  # (id(owner), conn) -> other end
        self.queue: deque[tuple[End, int, bytes]] = deque()
        self._conn = 100
        self._port = 20000
        self.allow_errors = False
        self._delivering = False

    # --- ids ---------------------------------------------------------------------------

    def next_conn(self) -> int:
        self._conn += 1
        return self._conn

    def next_port(self) -> int:
        self._port += 1
        return self._port

    # --- registrars --------------------------------------------------------------------

    def add_registrar(
        self, name: str, server_id: int, peers: tuple[str, ...] = (), **overrides: Any
    ) -> RegistrarCore:
        enrp_address = PeerAddress("127.0.0.1", 9000 + len(self.nodes) + 1)
        known = {n.name: n.enrp_address for n in self.nodes.values()}
        settings = {**FAST, **overrides}
        config = RegistrarConfig(
            static_peers=tuple(known[p] for p in peers),
            enrp_endpoint=enrp_address,
            asap_endpoints=(PeerAddress("127.0.0.1", 3000 + len(self.nodes) + 1),),
            enrp_announce=self.multicast,
            **settings,
        )
        core = RegistrarCore(config, server_id, random.Random(server_id), self.now)
        self.nodes[name] = Node(name, core, enrp_address)
        self.deliver()
        return core

    def restart(self, name: str, server_id: int, peers: tuple[str, ...], **overrides: Any) -> None:
        node = self.nodes.pop(name)
        assert not node.alive
        address = node.enrp_address
        settings = {**FAST, **overrides}
        config = RegistrarConfig(
            static_peers=tuple(self.nodes[p].enrp_address for p in peers),
            enrp_endpoint=address,
            enrp_announce=self.multicast,
            **settings,
        )
        core = RegistrarCore(config, server_id, random.Random(server_id + 7), self.now)
        self.nodes[name] = Node(name, core, address)
        self.deliver()

    def core(self, name: str) -> RegistrarCore:
        return self.nodes[name].core

    def kill(self, name: str) -> None:
        """SIGKILL: the process is gone and its connections reset."""
        node = self.nodes[name]
        node.alive = False
        for key, other in list(self.routes.items()):
            if key[0] == id(node.core):
                del self.routes[key]
                self.routes.pop((id(other.owner), other.conn), None)
                self._lost(other)
        self.deliver()

    def hang(self, name: str) -> None:
        """SIGSTOP: nothing reaches it and it sends nothing; connections stay open."""
        self.nodes[name].hung = True

    # --- connections -------------------------------------------------------------------

    def _link(self, a: Any, conn_a: int, b: Any, conn_b: int) -> None:
        self.routes[(id(a), conn_a)] = End(b, conn_b)
        self.routes[(id(b), conn_b)] = End(a, conn_a)

    def connect_peer(self, peer: FakePeer, name: str) -> int:
        """An ENRP connection from ``peer`` (a hand-driven registrar) to core ``name``."""
        core = self.core(name)
        peer_conn, core_conn = self.next_conn(), self.next_conn()
        self._link(peer, peer_conn, core, core_conn)
        peer.open.add(peer_conn)
        core.enrp_connection_opened(core_conn, PeerAddress(peer.host, peer.port), self.now)
        self.deliver()
        return peer_conn

    def connect_pe(self, pe: FakePE, name: str, transport: str = "tcp-mapping") -> int:
        core = self.core(name)
        pe_conn, core_conn = self.next_conn(), self.next_conn()
        self._link(pe, pe_conn, core, core_conn)
        pe.open.add(pe_conn)
        core.asap_connection_opened(core_conn, PeerAddress(pe.host, pe.port), transport, self.now)
        self.deliver()
        return pe_conn

    def close_pe_connection(self, pe: FakePE, conn: int) -> None:
        other = self.routes.pop((id(pe), conn))
        self.routes.pop((id(other.owner), other.conn), None)
        pe.open.discard(conn)
        self._lost(other)
        self.deliver()

    def core_conn_of(self, pe: FakePE, conn: int) -> int:
        return self.routes[(id(pe), conn)].conn

    def _node_of(self, core: RegistrarCore) -> Node | None:
        for node in self.nodes.values():
            if node.core is core:
                return node
        return None

    def _usable(self, owner: Any) -> bool:
        if isinstance(owner, RegistrarCore):
            node = self._node_of(owner)
            return node is not None and node.alive and not node.hung
        return True

    def _lost(self, end: End) -> None:
        if isinstance(end.owner, RegistrarCore):
            if self._usable(end.owner):
                end.owner.connection_lost(end.conn, self.now)
        else:
            end.owner.lost(end.conn)

    def send_from_pe(self, pe: FakePE, conn: int, ppid: int, data: bytes) -> None:
        other = self.routes.get((id(pe), conn))
        if other is not None:
            self.queue.append((other, ppid, data))
        if not self._delivering:
            self.deliver()

    # --- the event loop ----------------------------------------------------------------

    def deliver(self) -> None:
        """Run until no core has actions left and no message is in flight."""
        if self._delivering:
            return
        self._delivering = True
        try:
            self._deliver()
        finally:
            self._delivering = False

    def _deliver(self) -> None:
        for _ in range(1_000_000):
            progressed = False
            for node in list(self.nodes.values()):
                if not node.alive:
                    continue
                actions = node.core.pop_actions()
                if actions:
                    progressed = True
                if node.hung:
                    continue
                for action in actions:
                    self._perform(node, action)
            while self.queue:
                progressed = True
                end, ppid, data = self.queue.popleft()
                if isinstance(end.owner, RegistrarCore):
                    if self._usable(end.owner):
                        end.owner.receive(end.conn, ppid, data, self.now)
                else:
                    end.owner.receive(end.conn, data)
                break  # let the receiver's actions go out before the next delivery
            if not progressed:
                return
        raise AssertionError("network did not settle")

    def _perform(self, node: Node, action: object) -> None:
        core = node.core
        if isinstance(action, SendMessage):
            other = self.routes.get((id(core), action.conn))
            if action.ppid == PPID.ENRP:
                node.sent_enrp.append((action.conn, decode_enrp(action.data)))
            if other is not None:
                self.queue.append((other, action.ppid, action.data))
        elif isinstance(action, CloseConnection):
            other = self.routes.pop((id(core), action.conn), None)
            if other is not None:
                self.routes.pop((id(other.owner), other.conn), None)
                self._lost(other)
        elif isinstance(action, ConnectToPeer):
            target = next(
                (
                    n
                    for n in self.nodes.values()
                    if n.enrp_address == action.peer and n.alive and not n.hung
                ),
                None,
            )
            if target is None:
                core.peer_connect_failed(action.peer, self.now)
                return
            conn_a, conn_b = self.next_conn(), self.next_conn()
            self._link(core, conn_a, target.core, conn_b)
            core.enrp_connection_opened(conn_a, action.peer, self.now, outbound_to=action.peer)
            target.core.enrp_connection_opened(
                conn_b, PeerAddress("127.0.0.1", self.next_port()), self.now
            )
        elif isinstance(action, SendEnrpPresence):
            if self.multicast:
                source = PeerAddress(node.enrp_address.host, self.next_port())
                for listener in self.nodes.values():
                    if listener is not node and listener.alive and not listener.hung:
                        listener.core.receive_multicast(PPID.ENRP, action.data, source, self.now)
        elif isinstance(action, SendAsapAnnounce):
            node.announces.append(action.data)
        elif isinstance(action, LogEvent):
            node.logs.append(action)
            if action.level >= logging.ERROR and not self.allow_errors:
                raise AssertionError(f"{node.name} logged an error: {action.message}")

    def run(self, seconds: float) -> None:
        """Advance the fake clock by ``seconds``, firing every timer on the way."""
        end = self.now + seconds
        while True:
            deadlines = [
                d
                for n in self.nodes.values()
                if n.alive and not n.hung and (d := n.core.next_deadline()) is not None
            ]
            soonest = min(deadlines, default=None)
            if soonest is None or soonest > end:
                self.now = end
                return
            self.now = max(self.now, soonest)
            for node in list(self.nodes.values()):
                if node.alive and not node.hung:
                    node.core.handle_timer(self.now)
            self.deliver()

    def log_text(self, name: str) -> str:
        return "\n".join(e.message for e in self.nodes[name].logs)


def config_with(**overrides: Any) -> RegistrarConfig:
    return replace(RegistrarConfig(), **{**FAST, **overrides})
