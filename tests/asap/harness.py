"""A socket-free world for the ASAP client: scripted registrars, an in-memory network, a fake clock.

The fake registrars speak real ASAP bytes (the project's codecs) and behave like a
registrar as far as the client can tell: they answer registrations, deregistrations and
handle resolutions, and can be told to stay silent (a stopped process), refuse connections
or swallow connection attempts (an unreachable host), reject registrations, and send
Endpoint Keep-Alives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TypeVar

from rsplib.addressing import PeerAddress
from rsplib.asap import (
    Action,
    AsapClient,
    AsapConfig,
    CloseConnection,
    ConnectToRegistrar,
    Event,
    LogEvent,
    SendMessage,
)
from rsplib.wire.asap import (
    AsapMessage,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    ServerAnnounce,
)
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import PPID, ErrorCause, PolicyType
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    PoolElementParam,
    TcpTransport,
    Transport,
    ip,
)

M = TypeVar("M", bound=AsapMessage)
E = TypeVar("E", bound=Event)

POOL = b"EchoPool"
RR = PolicyParam(PolicyType.ROUND_ROBIN)


def user_transport(port: int = 7000) -> TcpTransport:
    return TcpTransport(port, (ip("127.0.0.1"),))


def lu(load: int) -> PolicyParam:
    return PolicyParam(PolicyType.LEAST_USED, load=load)


@dataclass
class FakeRegistrar:
    """``mode``: "up" (answers), "silent" (accepts, never answers), "refuse", "blackhole"."""

    address: PeerAddress
    server_id: int
    mode: str = "up"
    reject_cause: int | None = None
    received: list[tuple[int, AsapMessage]] = field(default_factory=list)
    pools: dict[bytes, dict[int, PoolElementParam]] = field(default_factory=dict)
    conns: set[int] = field(default_factory=set)

    def handle(self, conn: int, data: bytes) -> list[bytes]:
        msg = decode_asap(data)
        self.received.append((conn, msg))
        if self.mode == "silent":
            return []
        if isinstance(msg, Registration):
            if self.reject_cause is not None:
                error = OperationError.of(self.reject_cause)
                reply: AsapMessage = RegistrationResponse(
                    msg.pool_handle, msg.pool_element.identifier, error
                )
            else:
                pe = msg.pool_element
                self.pools.setdefault(msg.pool_handle, {})[pe.identifier] = pe
                reply = RegistrationResponse(msg.pool_handle, pe.identifier)
            return [encode_asap(reply)]
        if isinstance(msg, Deregistration):
            self.pools.get(msg.pool_handle, {}).pop(msg.identifier, None)
            return [encode_asap(DeregistrationResponse(msg.pool_handle, msg.identifier))]
        if isinstance(msg, HandleResolution):
            pes = list(self.pools.get(msg.pool_handle, {}).values())
            if not pes:
                error = OperationError.of(ErrorCause.UNKNOWN_POOL_HANDLE)
                return [encode_asap(HandleResolutionResponse(msg.pool_handle, error=error))]
            items = 3 if not msg.items else min(msg.items, 128)
            chosen = tuple(pes[:items])
            response = HandleResolutionResponse(msg.pool_handle, chosen[0].policy, chosen)
            return [encode_asap(response)]
        return []

    def of_type(self, kind: type[M]) -> list[M]:
        return [m for _, m in self.received if isinstance(m, kind)]


class World:
    """Wires one AsapClient to fake registrars; delivers everything synchronously."""

    def __init__(self, config: AsapConfig | None = None, seed: int = 1) -> None:
        self.now = 1000.0
        self.config = config or AsapConfig()
        self.client = AsapClient(self.config, random.Random(seed), self.now)
        self.registrars: dict[PeerAddress, FakeRegistrar] = {}
        self.conn_owner: dict[int, FakeRegistrar] = {}
        self.events: list[Event] = []
        self.actions: list[Action] = []
        self.connect_requests: list[tuple[PeerAddress, ...]] = []
        self.closed: list[tuple[int, str]] = []
        self._next_conn = 1

    def add_registrar(self, port: int, server_id: int, *, static: bool = True) -> FakeRegistrar:
        address = PeerAddress("127.0.0.1", port)
        registrar = FakeRegistrar(address, server_id)
        self.registrars[address] = registrar
        if static:
            self.client.add_static_registrar(address)
        return registrar

    # ------------------------------------------------------------------ driving

    def settle(self) -> None:
        """Carry out actions until the client has nothing more to say."""
        while True:
            actions = self.client.pop_actions()
            if not actions:
                return
            self.actions.extend(actions)
            for action in actions:
                self._perform(action)

    def advance(self, seconds: float) -> None:
        """Let time pass, firing every timer on the way."""
        end = self.now + seconds
        self.settle()
        while True:
            deadline = self.client.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.client.handle_timer(self.now)
            self.settle()
        self.now = end
        self.client.handle_timer(self.now)
        self.settle()

    def _perform(self, action: Action) -> None:
        if isinstance(action, ConnectToRegistrar):
            self.connect_requests.append(action.addresses)
            self._connect(action.addresses)
        elif isinstance(action, SendMessage):
            registrar = self.conn_owner.get(action.conn)
            if registrar is None:
                return
            assert action.ppid == PPID.ASAP
            for reply in registrar.handle(action.conn, action.data):
                self.client.receive(action.conn, PPID.ASAP, reply, self.now)
        elif isinstance(action, CloseConnection):
            self.closed.append((action.conn, action.reason))
            registrar = self.conn_owner.pop(action.conn, None)
            if registrar is not None:
                registrar.conns.discard(action.conn)
        elif isinstance(action, LogEvent):
            pass
        else:
            self.events.append(action)

    def _connect(self, addresses: tuple[PeerAddress, ...]) -> None:
        winner_done = False
        for address in addresses:
            registrar = self.registrars.get(address)
            mode = "refuse" if registrar is None else registrar.mode
            if mode == "refuse":
                self.client.connect_failed(address, self.now)
            elif mode == "blackhole":
                continue  # the attempt hangs until the hunt round ends
            elif not winner_done and self.client.home_connection is None:
                assert registrar is not None
                winner_done = True
                conn = self.open_conn(registrar)
                self.client.connected(conn, address, self.now)

    def open_conn(self, registrar: FakeRegistrar) -> int:
        conn = self._next_conn
        self._next_conn += 1
        self.conn_owner[conn] = registrar
        registrar.conns.add(conn)
        return conn

    # ------------------------------------------------------------------ faults and stimuli

    def kill(self, registrar: FakeRegistrar) -> None:
        """The registrar process dies: connections drop, new attempts are refused."""
        registrar.mode = "refuse"
        for conn in sorted(registrar.conns):
            del self.conn_owner[conn]
            self.client.connection_lost(conn, self.now)
        registrar.conns.clear()
        self.settle()

    def keep_alive(
        self,
        registrar: FakeRegistrar,
        conn: int,
        identifier: int | None,
        *,
        home: bool = False,
        pool_handle: bytes = POOL,
    ) -> None:
        msg = EndpointKeepAlive(registrar.server_id, pool_handle, identifier, home)
        self.client.receive(conn, PPID.ASAP, encode_asap(msg), self.now)
        self.settle()

    def announce(
        self, source: PeerAddress, server_id: int, transports: tuple[Transport, ...] = ()
    ) -> None:
        data = encode_asap(ServerAnnounce(server_id, transports))
        self.client.receive_announce(data, source, self.now)
        self.settle()

    def events_of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]
