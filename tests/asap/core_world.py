"""ASAP clients and real registrar cores in one in-memory network with a fake clock.

Every connection has two ends; a message sent on one end is delivered (FIFO, like TCP) to
the other. Registrars reach each other by ENRP address, clients reach registrars by ASAP
address. Killing a registrar makes all its connections fail at the other end and refuses
new ones (a SIGKILL); announces go to every client with the registrar's ASAP address as
the datagram's source.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

from rsplib.asap import AsapClient, AsapConfig, ConnectToRegistrar, Event
from rsplib.asap import CloseConnection as ClientClose
from rsplib.asap import LogEvent as ClientLog
from rsplib.asap import SendMessage as ClientSend
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

#: Short registrar timers so scenarios finish in a few simulated seconds.
FAST_REGISTRAR = {
    "endpoint_keepalive_interval": 1.0,
    "endpoint_keepalive_timeout": 1.0,
    "peer_heartbeat_cycle": 0.5,
    "peer_max_time_last_heard": 1.5,
    "peer_max_time_no_response": 1.0,
    "mentor_discovery_timeout": 1.0,
    "takeover_expiry": 2.0,
    "min_address_scope": AddressScope.LOOPBACK,
}

Endpoint = RegistrarCore | AsapClient
E = TypeVar("E", bound=Event)


@dataclass
class Registrar:
    core: RegistrarCore
    asap: PeerAddress
    enrp: PeerAddress
    alive: bool = True
    conns: set[int] = field(default_factory=set)


class CoreWorld:
    def __init__(self, seed: int = 1) -> None:
        self.now = 0.0
        self.seed = seed
        self.registrars: dict[str, Registrar] = {}
        self.clients: dict[str, AsapClient] = {}
        self.clients_made = 0
        self.events: dict[str, list[Event]] = {}
        self.client_conns: dict[str, set[int]] = {}
        self.other_end: dict[tuple[int, int], tuple[Endpoint, int]] = {}
        self.queue: deque[tuple[Endpoint, int, int, bytes]] = deque()
        self._conn = 0
        self._port = 40000

    # ------------------------------------------------------------------ building

    def add_registrar(self, name: str, server_id: int, peers: tuple[str, ...] = ()) -> Registrar:
        index = len(self.registrars) + 1
        asap = PeerAddress("127.0.0.1", 3000 + index)
        enrp = PeerAddress("127.0.0.1", 9000 + index)
        config = RegistrarConfig(
            static_peers=tuple(self.registrars[p].enrp for p in peers),
            enrp_endpoint=enrp,
            asap_endpoints=(asap,),
            enrp_announce=False,
            **FAST_REGISTRAR,  # type: ignore[arg-type]
        )
        core = RegistrarCore(config, server_id, random.Random(server_id), self.now)
        registrar = Registrar(core, asap, enrp)
        self.registrars[name] = registrar
        self.pump()
        return registrar

    def add_client(self, name: str, config: AsapConfig, static: tuple[str, ...] = ()) -> AsapClient:
        # Every client its own random source (PE identifiers!), also after others were killed.
        self.clients_made += 1
        client = AsapClient(config, random.Random(self.seed + self.clients_made), self.now)
        for registrar in static:
            client.add_static_registrar(self.registrars[registrar].asap)
        self.clients[name] = client
        self.events[name] = []
        self.client_conns[name] = set()
        return client

    # ------------------------------------------------------------------ time

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        self.pump()
        while True:
            deadlines = [
                d
                for d in (
                    *(r.core.next_deadline() for r in self.registrars.values() if r.alive),
                    *(c.next_deadline() for c in self.clients.values()),
                )
                if d is not None
            ]
            soonest = min(deadlines, default=None)
            if soonest is None or soonest > end:
                break
            self.now = max(self.now, soonest)
            self._tick()
        self.now = end
        self._tick()

    def _tick(self) -> None:
        for registrar in self.registrars.values():
            if registrar.alive:
                registrar.core.handle_timer(self.now)
        for client in self.clients.values():
            client.handle_timer(self.now)
        self.pump()

    # ------------------------------------------------------------------ faults

    def kill(self, name: str) -> None:
        registrar = self.registrars[name]
        registrar.alive = False
        for conn in sorted(registrar.conns):
            self._break(registrar.core, conn)
        registrar.conns.clear()
        self.pump()

    def _break(self, endpoint: Endpoint, conn: int) -> None:
        """The connection ``conn`` of ``endpoint`` is gone: tell the other end."""
        other = self.other_end.pop((id(endpoint), conn), None)
        if other is None:
            return
        self.other_end.pop((id(other[0]), other[1]), None)
        target, target_conn = other
        target.connection_lost(target_conn, self.now)
        for registrar in self.registrars.values():
            registrar.conns.discard(target_conn)

    # ------------------------------------------------------------------ routing

    def _link(self, a: Endpoint, b: Endpoint) -> int:
        self._conn += 1
        conn = self._conn
        self.other_end[(id(a), conn)] = (b, conn)
        self.other_end[(id(b), conn)] = (a, conn)
        return conn

    def _registrar_at(self, address: PeerAddress, kind: str) -> Registrar | None:
        for registrar in self.registrars.values():
            if getattr(registrar, kind) == address and registrar.alive:
                return registrar
        return None

    def pump(self) -> None:
        progress = True
        while progress:
            progress = False
            for registrar in self.registrars.values():
                if registrar.alive:
                    for action in registrar.core.pop_actions():
                        progress = True
                        self._registrar_action(registrar, action)
            for name, client in self.clients.items():
                for client_action in client.pop_actions():
                    progress = True
                    self._client_action(name, client, client_action)
            while self.queue:
                progress = True
                target, conn, ppid, data = self.queue.popleft()
                target.receive(conn, ppid, data, self.now)

    def _send(self, sender: Endpoint, conn: int, ppid: int, data: bytes) -> None:
        other = self.other_end.get((id(sender), conn))
        if other is not None:
            self.queue.append((other[0], other[1], ppid, data))

    def _registrar_action(self, registrar: Registrar, action: object) -> None:
        core = registrar.core
        if isinstance(action, SendMessage):
            self._send(core, action.conn, action.ppid, action.data)
        elif isinstance(action, CloseConnection):
            registrar.conns.discard(action.conn)
            self._break(core, action.conn)
        elif isinstance(action, ConnectToPeer):
            peer = self._registrar_at(action.peer, "enrp")
            if peer is None:
                core.peer_connect_failed(action.peer, self.now)
                return
            conn = self._link(core, peer.core)
            registrar.conns.add(conn)
            peer.conns.add(conn)
            core.enrp_connection_opened(conn, action.peer, self.now, outbound_to=action.peer)
            peer.core.enrp_connection_opened(conn, registrar.enrp, self.now)
        elif isinstance(action, SendAsapAnnounce):
            for client in self.clients.values():
                client.receive_announce(action.data, registrar.asap, self.now)
        elif isinstance(action, SendEnrpPresence | LogEvent):
            pass

    def _client_action(self, name: str, client: AsapClient, action: object) -> None:
        if isinstance(action, ConnectToRegistrar):
            winner = False
            for address in action.addresses:
                registrar = self._registrar_at(address, "asap")
                if registrar is None:
                    client.connect_failed(address, self.now)
                elif not winner:
                    winner = True
                    conn = self._link(client, registrar.core)
                    registrar.conns.add(conn)
                    self.client_conns[name].add(conn)
                    self._port += 1
                    peer = PeerAddress("127.0.0.1", self._port)
                    registrar.core.asap_connection_opened(conn, peer, "tcp-mapping", self.now)
                    client.connected(conn, address, self.now)
        elif isinstance(action, ClientSend):
            self._send(client, action.conn, action.ppid, action.data)
        elif isinstance(action, ClientClose):
            self._break(client, action.conn)
        elif isinstance(action, ClientLog):
            pass
        else:
            self.events[name].append(action)  # type: ignore[arg-type]

    def events_of(self, name: str, kind: type[E]) -> list[E]:
        return [e for e in self.events[name] if isinstance(e, kind)]
