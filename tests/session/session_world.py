"""Pool-user session machines against a real registrar core and scripted pool elements.

No sockets, a fake clock. The registrar core and every ASAP client are the real
sans-IO cores (``tests.asap.core_world``); the pool elements register through
their own ASAP clients, and their *session* side is a script that plays one
behaviour per PE:

* ``serve``  -- accepts, answers a Cookie Echo with a new cookie first, sends
  ``DATA`` for every data message it gets and a cookie after it;
* ``hang``   -- accepts the connection and never answers (a SIGSTOPped PE): the
  session's heartbeats time out after ``heartbeat_timeout``;
* ``refuse`` -- closes the session gracefully right after a Cookie Echo (a refused
  cookie), serves sessions without one;
* ``busy``   -- resets every new connection at once (all session slots taken);
* ``dead``   -- the connect is refused (the process is gone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rsplib.asap import AsapClient, AsapConfig
from rsplib.core_actions import CloseConnection, LogEvent, SendMessage
from rsplib.errors import CloseKind
from rsplib.session.control import classify, encode_cookie
from rsplib.session.pu_machine import (
    ConnectFailure,
    Event,
    OpenConnection,
    PuSessionMachine,
    SessionConfig,
)
from rsplib.wire.asap import CookieEcho
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.params import PolicyParam, TcpTransport, ip
from tests.asap.core_world import CoreWorld

POOL = b"FractalGeneratorPool"
RR = PolicyParam(PolicyType.ROUND_ROBIN)
FAST_CLIENT = AsapConfig(reregistration_interval=2.0, registrar_connect_timeout=2.0)
DATA = 32  # the application's PPID (FGP's)


@dataclass
class ScriptedPe:
    name: str
    client: AsapClient
    identifier: int
    port: int
    behaviour: str = "serve"
    sessions: int = 0
    echoes_seen: list[bytes] = field(default_factory=list)
    data_seen: list[bytes] = field(default_factory=list)


@dataclass
class _Link:
    session: str
    pe: ScriptedPe
    first: bool = True


class SessionWorld(CoreWorld):
    """One registrar ``A``, scripted PEs, and PU sessions sharing the ``pu`` ASAP client."""

    def __init__(self, *, heartbeat_timeout: float = 3.0, seed: int = 1) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.pes: dict[int, ScriptedPe] = {}
        self.sessions: dict[str, PuSessionMachine] = {}
        self.session_events: dict[str, list[Event]] = {}
        self.links: dict[tuple[str, int], _Link] = {}
        self.timeouts: list[tuple[float, str, int]] = []  # (due, session, conn)
        self.cookie_counter = 0
        super().__init__(seed)
        self.add_registrar("A", 0xA)
        self.advance(1.0)
        self.pu = self.add_client("pu", FAST_CLIENT, static=("A",))

    # ------------------------------------------------------------------ building

    def add_pe(self, name: str, behaviour: str = "serve") -> ScriptedPe:
        client = self.add_client(name, FAST_CLIENT, static=("A",))
        port = 5000 + len(self.pes)
        identifier = client.register(
            POOL, None, TcpTransport(port, (ip("127.0.0.1"),)), RR, self.now
        )
        pe = ScriptedPe(name, client, identifier, port, behaviour)
        self.pes[port] = pe
        self.advance(0.1)
        return pe

    def add_session(self, name: str, config: SessionConfig | None = None) -> PuSessionMachine:
        machine = PuSessionMachine(POOL, self.pu, config)
        self.sessions[name] = machine
        self.session_events[name] = []
        return machine

    def open(self, name: str, timeout: float | None = None) -> None:
        self.sessions[name].open(self.now, timeout)
        self.pump()

    # ------------------------------------------------------------------ faults

    def kill_pe(self, pe: ScriptedPe) -> None:
        """SIGKILL: registrar connection and sessions reset; later connects refused."""
        pe.behaviour = "dead"
        for conn in sorted(self.client_conns[pe.name]):
            self._break(pe.client, conn)
        del self.clients[pe.name]
        for (session, conn), link in list(self.links.items()):
            if link.pe is pe:
                del self.links[(session, conn)]
                self.sessions[session].connection_lost(conn, CloseKind.RESET, self.now)
        self.pump()

    def hang_pe(self, pe: ScriptedPe) -> None:
        """SIGSTOP: open sessions fall silent (their heartbeats time out); new ones hang."""
        pe.behaviour = "hang"
        for session, conn in list(self.links):
            if self.links[(session, conn)].pe is pe:
                self.timeouts.append((self.now + self.heartbeat_timeout, session, conn))

    def events(self, name: str, kind: type[object]) -> list[object]:
        return [e for e in self.session_events[name] if isinstance(e, kind)]

    # ------------------------------------------------------------------ time and routing

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            self.pump()
            deadlines = [
                d
                for d in (
                    *(r.core.next_deadline() for r in self.registrars.values() if r.alive),
                    *(c.next_deadline() for c in self.clients.values()),
                    *(m.next_deadline() for m in self.sessions.values()),
                    *(due for due, _s, _c in self.timeouts),
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
        super()._tick()
        for due, session, conn in sorted(self.timeouts):
            if due <= self.now:
                self.timeouts.remove((due, session, conn))
                if self.links.pop((session, conn), None) is not None:
                    self.sessions[session].connection_lost(conn, CloseKind.TIMEOUT, self.now)
        for machine in self.sessions.values():
            machine.handle_timer(self.now)
        self.pump()

    def pump(self) -> None:
        super().pump()
        progress = True
        while progress:
            progress = False
            for name, machine in self.sessions.items():
                for action in machine.pop_actions():
                    progress = True
                    self._session_action(name, machine, action)
            if progress:
                super().pump()

    def _client_action(self, name: str, client: AsapClient, action: object) -> None:
        super()._client_action(name, client, action)
        if name == "pu":
            for machine in self.sessions.values():
                machine.asap_event(action, self.now)

    def _session_action(self, name: str, machine: PuSessionMachine, action: object) -> None:
        if isinstance(action, OpenConnection):
            pe = self.pes.get(action.pe.port)
            if pe is None or pe.behaviour == "dead":
                machine.connect_failed(action.conn, ConnectFailure.REFUSED, self.now)
                return
            pe.sessions += 1
            machine.connected(action.conn, self.now)
            if pe.behaviour == "busy":
                machine.connection_lost(action.conn, CloseKind.RESET, self.now)
                return
            self.links[(name, action.conn)] = _Link(name, pe)
            if pe.behaviour == "hang":
                self.timeouts.append((self.now + self.heartbeat_timeout, name, action.conn))
        elif isinstance(action, SendMessage):
            link = self.links.get((name, action.conn))
            if link is not None:
                self._pe_receives(machine, action.conn, link, action.ppid, action.data)
        elif isinstance(action, CloseConnection):
            self.links.pop((name, action.conn), None)
        elif isinstance(action, LogEvent):
            pass
        else:
            self.session_events[name].append(action)  # type: ignore[arg-type]

    def _pe_receives(
        self, machine: PuSessionMachine, conn: int, link: _Link, ppid: int, data: bytes
    ) -> None:
        pe = link.pe
        if pe.behaviour == "hang":
            return
        first, link.first = link.first, False
        message = classify(ppid, data)
        if isinstance(message, CookieEcho):
            pe.echoes_seen.append(message.cookie)
            if pe.behaviour == "refuse" and first:
                del self.links[(link.session, conn)]
                machine.connection_lost(conn, CloseKind.EOF, self.now)
                return
            self._send_cookie(machine, conn)
            return
        pe.data_seen.append(data)
        machine.received(conn, DATA, b"DATA:" + data, self.now)
        self._send_cookie(machine, conn)

    def _send_cookie(self, machine: PuSessionMachine, conn: int) -> None:
        self.cookie_counter += 1
        cookie = b"CK%06d" % self.cookie_counter
        machine.received(conn, int(PPID.ASAP), encode_cookie(cookie), self.now)
