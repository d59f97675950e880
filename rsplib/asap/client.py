"""The PE/PU side of ASAP as a sans-IO, clock-free core.

One :class:`AsapClient` per process (or component) keeps its pool elements
registered and answers pool users' handle resolutions. It never touches a
socket or a clock: the service feeds it bytes, connection events and timer
ticks (always with ``now``, monotonic seconds) and carries out the actions it
hands back from :meth:`AsapClient.pop_actions`.

Registrar hunt (docs/protocol-notes.md#registrar-discovery and #timers-pe-pu)
    The client needs a *home registrar* while it has pool elements to keep
    registered or requests to send. A hunt round asks the service to connect
    to up to ``registrar_parallel_connects`` known registrars at once (static
    ones and those heard in Server Announces); the first connection up wins.
    Failed attempts make room for the next candidates; registrars announced
    during the round are tried at once. A round lasts
    ``registrar_connect_timeout``; after ``registrar_connect_max_trials``
    rounds without success a :class:`NoRegistrar` event says so, every queued
    request fails with a clear event, and - if pool elements still need a
    home - the next hunt starts after ``registrar_hunt_retry_delay``.

Requests and responses
    Registration Responses are matched by (pool handle, PE identifier),
    Deregistration Responses likewise, Handle Resolution Responses in order
    per pool handle (the registrar answers one connection's requests in
    order). A request without an answer within ``registrar_response_timeout``
    means the registrar is gone: its connection is closed, the hunt starts
    again, registrations are repeated at the new registrar and other requests
    move over to it until they have used ``registrar_request_max_trials``
    transmissions. A lost connection moves requests over without using up a
    trial.

Pool elements keep their identity
    When the home registrar is lost, the client hunts for another one and
    registers every pool element there again *with the same identifier*, so
    pool users and peers see the same PE come back, not a new one.
    Re-registration runs every ``reregistration_interval`` (Registration Life
    = 3 x that) and immediately when the policy information (load) changes.
    A registration refused for security (0x000A: the registrar still binds the
    identifier to our previous connection, which it has not seen go yet) is
    retried every ``SECURITY_RETRY`` seconds; other refusals are final.

Endpoint Keep-Alive and the H flag over the TCP mapping
    A Keep-Alive naming a PE is answered for that PE; one naming none is
    answered for every PE of this client (one Ack each), as rsplib does.
    With SCTP a registrar that took the PEs over opens a *new* association to
    the PE and sends a Keep-Alive with the H flag there; the service reports
    such inbound connections with :meth:`AsapClient.registrar_connection_accepted`
    and the client adopts that connection as its home. Over the TCP mapping a
    registrar cannot open a connection to a PE, so the Keep-Alive with the H
    flag arrives on the connection the client already has (the new home has
    taken over the PEs of the registrar it was connected to, or the client
    re-registered there after losing its home): the client then adopts the
    sender's server id as its home registrar id, which goes into later
    Registrations, and reports :class:`HomeRegistrarChanged`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from rsplib.addressing import PeerAddress
from rsplib.asap.actions import (
    Action,
    AsapErrorReceived,
    CloseConnection,
    ConnectToRegistrar,
    ConnId,
    Deregistered,
    HomeRegistrarChanged,
    LogEvent,
    NoRegistrar,
    RegistrationFailed,
    RegistrationSucceeded,
    RequestTimedOut,
    ResolutionResult,
    SendMessage,
)
from rsplib.asap.config import AsapConfig
from rsplib.asap.registrar_table import RegistrarTable, announce_addresses
from rsplib.errors import TimeoutReason
from rsplib.handlespace.cache import PoolUserCache
from rsplib.handlespace.entry import PeKey
from rsplib.wire.asap import (
    AsapError,
    AsapMessage,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    ServerAnnounce,
    asap_message_name,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID, ErrorCause, cause_name
from rsplib.wire.errors import ProtocolError, UnknownMessageError, UnrecognizedParameterError
from rsplib.wire.params import (
    ErrorCauseItem,
    OperationError,
    PolicyParam,
    PoolElementParam,
    Transport,
)
from rsplib.wire.tlv import DEFAULT_LIMITS

_U32_MAX = 0xFFFFFFFF


class _Kind(Enum):
    REGISTRATION = "registration"
    DEREGISTRATION = "deregistration"
    RESOLUTION = "handle resolution"
    UNREACHABLE = "unreachable report"


@dataclass(slots=True)
class _Request:
    """A request that is queued (no connection) or awaiting its response."""

    kind: _Kind
    request_id: int
    pool_handle: bytes
    identifier: int = 0  # registration, deregistration, unreachable
    items: int = 0  # resolution: what the caller asked for
    trials: int = 0  # transmissions that ended in a response timeout
    sent_at: float = 0.0

    def describe(self) -> str:
        what = f"{self.kind.value} for pool {self.pool_handle!r}"
        if self.kind is not _Kind.RESOLUTION:
            what += f" (PE 0x{self.identifier:08x})"
        return what


#: Retry interval of a registration refused with "Rejection due to Security".
SECURITY_RETRY = 2.0


@dataclass(slots=True)
class _PoolElement:
    pool_handle: bytes
    identifier: int
    user_transport: Transport
    policy: PolicyParam
    registered: bool = False  # confirmed by the current home registrar
    due: float | None = None  # next re-registration (while connected)
    refused: bool = False  # the last attempt was refused for security (being retried)


@dataclass(slots=True)
class _Home:
    conn: ConnId
    address: PeerAddress
    server_id: int


@dataclass(slots=True)
class _Hunt:
    trial: int
    deadline: float
    attempting: set[PeerAddress]
    tried: set[PeerAddress]
    waiting_logged: bool = False


class AsapClient:
    """PE registrations and PU resolutions over one home-registrar connection."""

    def __init__(self, config: AsapConfig, rng: random.Random, now: float) -> None:
        self.config = config
        self._rng = rng
        self._actions: list[Action] = []
        self._table = RegistrarTable(config.registrar_announce_timeout)
        self._pes: dict[PeKey, _PoolElement] = {}
        self._home: _Home | None = None
        self._side: dict[ConnId, PeerAddress] = {}  # inbound registrar connections
        self._hunt: _Hunt | None = None
        self._retry_at: float | None = None
        self._queue: list[_Request] = []  # waiting for a registrar connection
        self._awaiting: list[_Request] = []  # sent, in send order
        self._next_request_id = 1
        self._cache = PoolUserCache(config.stale_cache_value, rng)
        self._logged: set[str] = set()  # one-time log keys of the current connection
        self._suspects: set[PeerAddress] = set()  # dropped for a response timeout

    # ------------------------------------------------------------------ read-only views

    @property
    def home_registrar(self) -> tuple[PeerAddress, int] | None:
        """Address and server id (0 = unknown) of the home registrar, if connected."""
        return None if self._home is None else (self._home.address, self._home.server_id)

    @property
    def home_connection(self) -> ConnId | None:
        return None if self._home is None else self._home.conn

    @property
    def hunting(self) -> bool:
        return self._hunt is not None

    @property
    def registrar_table(self) -> RegistrarTable:
        return self._table

    @property
    def cache(self) -> PoolUserCache:
        return self._cache

    def pool_elements(self) -> list[tuple[bytes, int, bool]]:
        """(pool handle, identifier, registered at the current home) of every PE."""
        return [(pe.pool_handle, pe.identifier, pe.registered) for pe in self._pes.values()]

    def pending_requests(self) -> int:
        return len(self._queue) + len(self._awaiting)

    # ------------------------------------------------------------------ registrar discovery

    def add_static_registrar(self, addr: PeerAddress) -> None:
        self._table.add_static(addr)

    def receive_announce(self, data: bytes, source: PeerAddress, now: float) -> None:
        """A datagram from the Server Announce multicast group."""
        try:
            msg = decode_asap(data)
        except ProtocolError as exc:
            self._log_once(
                f"announce-bad:{source}",
                logging.WARNING,
                f"malformed Server Announce from {source}: {exc}",
            )
            return
        if not isinstance(msg, ServerAnnounce):
            self._log_once(
                f"announce-type:{source}",
                logging.WARNING,
                f"{asap_message_name(msg)} on the announce socket from {source}",
            )
            return
        addresses = announce_addresses(msg, source, self.config.transport)
        if not addresses:
            self._log_once(
                f"announce-kind:{source}",
                logging.INFO,
                f"Server Announce from {source} offers no {self.config.transport} "
                "transport; ignored",
            )
        fresh = False
        for address in addresses:
            fresh |= self._table.heard(address, msg.server_id, now)
        if self._home is not None and self._home.address in addresses and msg.server_id:
            self._home.server_id = self._home.server_id or msg.server_id
        if fresh and self._hunt is not None:
            self._launch(now)
        elif fresh and self._retry_at is not None:
            self._retry_at = None  # a registrar appeared: no need to wait for the retry
            self._ensure_hunt(now)

    # ------------------------------------------------------------------ connection events

    def connected(self, conn: ConnId, registrar: PeerAddress, now: float) -> None:
        """A connection to ``registrar`` is up (the winner of a hunt)."""
        if self._home is not None:
            self._actions.append(CloseConnection(conn, "already connected to a registrar"))
            return
        if self._hunt is not None:
            self._hunt.attempting.discard(registrar)
        self._hunt = None
        self._retry_at = None
        self._suspects.discard(registrar)
        self._adopt_home(conn, registrar, self._table.server_id(registrar), "connected", now)

    def registrar_connection_accepted(self, conn: ConnId, peer: PeerAddress, now: float) -> None:
        """A registrar opened a connection to us (SCTP: a takeover's Keep-Alive follows)."""
        self._side[conn] = peer

    def connect_failed(self, registrar: PeerAddress, now: float) -> None:
        self._table.demote(registrar)
        if self._hunt is None or registrar not in self._hunt.attempting:
            return
        self._hunt.attempting.discard(registrar)
        self._log(logging.INFO, f"registrar {registrar} did not answer")
        self._launch(now)

    def connection_lost(self, conn: ConnId, now: float) -> None:
        if self._side.pop(conn, None) is not None:
            return
        if self._home is None or conn != self._home.conn:
            return
        self._log(logging.WARNING, f"lost the connection to registrar {self._home.address}")
        self._drop_home(now, count_trial=False)

    # ------------------------------------------------------------------ incoming messages

    def receive(self, conn: ConnId, ppid: int, data: bytes, now: float) -> None:
        on_home = self._home is not None and conn == self._home.conn
        if not on_home and conn not in self._side:
            return  # a connection we already closed; late data
        if ppid != PPID.ASAP:
            self._log_once(
                f"ppid:{conn}:{ppid}",
                logging.WARNING,
                f"ignoring a message with PPID {ppid} from a registrar",
            )
            return
        try:
            msg = decode_asap(data)
        except ProtocolError as exc:
            self._bad_message(conn, exc)
            return
        if msg.unrecognized and not isinstance(msg, AsapError):
            causes = tuple(
                ErrorCauseItem(ErrorCause.UNRECOGNIZED_PARAMETER, tlv) for tlv in msg.unrecognized
            )
            self._send(conn, AsapError(OperationError(causes)))
        if isinstance(msg, EndpointKeepAlive):
            self._on_keep_alive(conn, msg, now)
        elif not on_home:
            self._log_once(
                f"side:{conn}:{msg.TYPE}",
                logging.WARNING,
                f"ignoring {asap_message_name(msg)} on a non-home registrar connection",
            )
        elif isinstance(msg, RegistrationResponse):
            self._on_registration_response(msg, now)
        elif isinstance(msg, DeregistrationResponse):
            self._on_deregistration_response(msg)
        elif isinstance(msg, HandleResolutionResponse):
            self._on_resolution_response(msg, now)
        elif isinstance(msg, ServerAnnounce):
            self._on_greeting(msg)
        elif isinstance(msg, AsapError):
            text = error_text(msg.error.causes) or "no cause"
            self._log_once(
                f"asap-error:{text}", logging.WARNING, f"registrar reported an ASAP Error: {text}"
            )
            self._actions.append(AsapErrorReceived(msg.error.first_code, text))
        else:
            self._log_once(
                f"unexpected:{msg.TYPE}",
                logging.WARNING,
                f"ignoring unexpected {asap_message_name(msg)} from the registrar",
            )

    def _bad_message(self, conn: ConnId, exc: ProtocolError) -> None:
        self._log_once(
            f"malformed:{conn}:{type(exc).__name__}",
            logging.WARNING,
            f"malformed ASAP message from a registrar: {exc}",
        )
        report = isinstance(exc, UnknownMessageError) or (
            isinstance(exc, UnrecognizedParameterError) and exc.report
        )
        if report:
            self._send(conn, AsapError(OperationError.of(exc.cause, exc.offending)))

    def _on_keep_alive(self, conn: ConnId, msg: EndpointKeepAlive, now: float) -> None:
        home = self._home
        if conn in self._side:
            if msg.home:
                self._take_side_as_home(conn, msg.server_id, now)
        elif home is not None and msg.server_id and msg.server_id != home.server_id:
            old = home.server_id
            home.server_id = msg.server_id
            self._table.learn_id(home.address, msg.server_id)
            if msg.home and old:
                self._actions.append(
                    HomeRegistrarChanged(
                        old,
                        msg.server_id,
                        home.address,
                        f"registrar 0x{msg.server_id:08x} took over (H flag)",
                    )
                )
        if msg.identifier is None:
            targets = list(self._pes.values())
        else:
            pe = self._pes.get((msg.pool_handle, msg.identifier))
            targets = [] if pe is None else [pe]
        for pe in targets:
            self._send(conn, EndpointKeepAliveAck(pe.pool_handle, pe.identifier))

    def _on_greeting(self, msg: ServerAnnounce) -> None:
        """A registrar names itself on a new TCP-mapping connection (a Server Announce on the
        connection): learn its identifier without waiting for the first keep-alive."""
        home = self._home
        if home is None or not msg.server_id or home.server_id == msg.server_id:
            return
        home.server_id = msg.server_id
        self._table.learn_id(home.address, msg.server_id)

    def _take_side_as_home(self, conn: ConnId, server_id: int, now: float) -> None:
        address = self._side.pop(conn)
        old = self._home
        if old is not None:
            self._actions.append(
                CloseConnection(old.conn, f"registrar 0x{server_id:08x} is the new home")
            )
            self._requeue_awaiting(count_trial=False)
        self._hunt = None
        self._retry_at = None
        reason = f"registrar 0x{server_id:08x} took over (H flag on its connection)"
        keep = {key for key, pe in self._pes.items() if pe.registered}
        self._adopt_home(conn, address, server_id, reason, now, old_id=old.server_id if old else 0)
        # The new home owns the PEs already; they stay "registered" (no repeated event).
        for key in keep:
            pe = self._pes.get(key)
            if pe is not None:
                pe.registered = True

    def _on_registration_response(self, msg: RegistrationResponse, now: float) -> None:
        request = self._take_awaiting(_Kind.REGISTRATION, msg.pool_handle, msg.identifier)
        if request is None:
            self._log_once(
                f"unmatched-reg:{msg.pool_handle!r}:{msg.identifier}",
                logging.WARNING,
                "Registration Response matches no registration we sent",
            )
            return
        pe = self._pes.get((msg.pool_handle, msg.identifier))
        if pe is None:
            return  # deregistered meanwhile
        if msg.error is not None and msg.error.first_code == ErrorCause.REJECTION_DUE_TO_SECURITY:
            self._refused_for_security(pe, error_text(msg.error.causes) or "rejected", now)
            return
        if msg.error is not None:
            del self._pes[(pe.pool_handle, pe.identifier)]
            text = error_text(msg.error.causes) or "rejected"
            self._log(
                logging.ERROR,
                f"registration of PE 0x{pe.identifier:08x} in pool "
                f"{pe.pool_handle!r} refused: {text}",
            )
            self._actions.append(
                RegistrationFailed(pe.pool_handle, pe.identifier, msg.error.first_code, text)
            )
            return
        if not pe.registered:
            pe.registered = True
            pe.refused = False
            home_id = 0 if self._home is None else self._home.server_id
            self._actions.append(RegistrationSucceeded(pe.pool_handle, pe.identifier, home_id))

    def _refused_for_security(self, pe: _PoolElement, text: str, now: float) -> None:
        """Refused because the identifier is bound to another connection: most likely our
        own previous one, not yet seen gone by the registrar. Tell once, retry soon."""
        pe.registered = False
        pe.due = now + min(SECURITY_RETRY, self.config.reregistration_interval)
        if pe.refused:
            return
        pe.refused = True
        self._log(
            logging.WARNING,
            f"registration of PE 0x{pe.identifier:08x} in pool {pe.pool_handle!r} refused: "
            f"{text}; retrying every {SECURITY_RETRY:g} s",
        )
        self._actions.append(
            RegistrationFailed(
                pe.pool_handle, pe.identifier, ErrorCause.REJECTION_DUE_TO_SECURITY, text
            )
        )

    def _on_deregistration_response(self, msg: DeregistrationResponse) -> None:
        request = self._take_awaiting(_Kind.DEREGISTRATION, msg.pool_handle, msg.identifier)
        if request is None:
            return
        error = None
        if msg.error is not None:
            error = error_text(msg.error.causes) or "rejected"
        self._actions.append(Deregistered(msg.pool_handle, msg.identifier, error))

    def _on_resolution_response(self, msg: HandleResolutionResponse, now: float) -> None:
        request = self._take_awaiting(_Kind.RESOLUTION, msg.pool_handle, None)
        if request is None:
            self._log_once(
                f"unmatched-hr:{msg.pool_handle!r}",
                logging.WARNING,
                "Handle Resolution Response matches no request we sent",
            )
            return
        if msg.error is not None:
            self._actions.append(
                ResolutionResult(request.request_id, msg.pool_handle, (), msg.error.first_code)
            )
            return
        pes = msg.pool_elements
        if self.config.stale_cache_value > 0 and pes:
            self._cache.store(msg.pool_handle, pes, now)
            chosen = self._cache.select(msg.pool_handle, self._cap(request.items), now)
            if chosen:
                pes = tuple(entry.to_param(False) for entry in chosen)
        if request.items:
            pes = pes[: self._cap(request.items)]
        self._actions.append(ResolutionResult(request.request_id, msg.pool_handle, pes))

    @staticmethod
    def _cap(items: int) -> int:
        return 3 if items == 0 else items

    # ------------------------------------------------------------------ PE API

    def register(
        self,
        pool_handle: bytes,
        identifier: int | None,
        user_transport: Transport,
        policy: PolicyParam,
        now: float,
    ) -> int:
        """Register (and keep registered) a PE; returns its identifier.

        ``identifier`` None picks a random unused one in 1..0xFFFFFFFF. Registering a known
        (pool handle, identifier) again updates its transport and policy.
        """
        _check_pool_handle(pool_handle)
        if identifier is None:
            identifier = self._new_identifier(pool_handle)
        elif not 1 <= identifier <= _U32_MAX:
            raise ValueError(f"PE identifier must be in 1..0xFFFFFFFF, not {identifier}")
        key = (bytes(pool_handle), identifier)
        pe = self._pes.get(key)
        if pe is None:
            pe = _PoolElement(key[0], identifier, user_transport, policy)
            self._pes[key] = pe
        else:
            pe.user_transport = user_transport
            pe.policy = policy
        self._register_now(pe, now)
        return identifier

    def update_policy(
        self, pool_handle: bytes, identifier: int, policy: PolicyParam, now: float
    ) -> None:
        """New policy information (e.g. load): re-register at once."""
        pe = self._pes.get((pool_handle, identifier))
        if pe is None:
            raise KeyError(f"no PE 0x{identifier:08x} in pool {pool_handle!r}")
        if pe.policy == policy:
            return
        pe.policy = policy
        self._register_now(pe, now)

    def deregister(self, pool_handle: bytes, identifier: int, now: float) -> None:
        """Stop keeping the PE registered and tell the registrar (:class:`Deregistered`)."""
        # Forgetting the PE first also makes a late Registration Response for it a no-op.
        self._pes.pop((pool_handle, identifier), None)
        request = _Request(_Kind.DEREGISTRATION, self._new_request_id(), pool_handle, identifier)
        self._submit(request, now)

    # ------------------------------------------------------------------ PU API

    def resolve(self, pool_handle: bytes, items: int, now: float) -> int:
        """Ask for up to ``items`` PEs of a pool; the answer is a :class:`ResolutionResult`.

        With a stale-cache value > 0 fresh cached PEs answer at once (selected locally by
        the pool policy); otherwise the registrar is asked: with the Handle Resolution
        option ``items`` when there is no cache, without it (registrar default) when the
        answer goes into the cache (docs/protocol-notes.md#pu-cache). ``items`` 0 means
        the registrar's default, 0xFFFFFFFF as many as allowed.
        """
        _check_pool_handle(pool_handle)
        if not 0 <= items <= _U32_MAX:
            raise ValueError(f"items must be in 0..0xFFFFFFFF, not {items}")
        request_id = self._new_request_id()
        if self.config.stale_cache_value > 0:
            chosen = self._cache.select(pool_handle, self._cap(items), now)
            if chosen:
                pes = tuple(entry.to_param(False) for entry in chosen)
                self._actions.append(ResolutionResult(request_id, pool_handle, pes, None, True))
                return request_id
        request = _Request(_Kind.RESOLUTION, request_id, bytes(pool_handle), items=items)
        self._submit(request, now)
        return request_id

    def report_unreachable(self, pool_handle: bytes, identifier: int, now: float) -> None:
        """Tell the registrar a PE did not answer, and forget it in the PU cache."""
        self._cache.remove(pool_handle, identifier)
        request = _Request(_Kind.UNREACHABLE, 0, bytes(pool_handle), identifier)
        self._submit(request, now)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        times: list[float] = []
        if self._hunt is not None:
            times.append(self._hunt.deadline)
        if self._retry_at is not None:
            times.append(self._retry_at)
        if self._awaiting:
            times.append(self._awaiting[0].sent_at + self.config.registrar_response_timeout)
        if self._home is not None:
            times.extend(pe.due for pe in self._pes.values() if pe.due is not None)
        expiry = self._table.next_expiry()
        if expiry is not None:
            times.append(expiry)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for address in self._table.expire(now):
            self._log(logging.INFO, f"registrar {address} no longer announced")
        timeout = self.config.registrar_response_timeout
        if self._home is not None and self._awaiting and self._awaiting[0].sent_at + timeout <= now:
            stuck = self._awaiting[0]
            self._log(
                logging.WARNING,
                f"registrar {self._home.address} did not answer a "
                f"{stuck.kind.value} within {timeout:g} s; dropping it",
            )
            self._actions.append(CloseConnection(self._home.conn, "registrar response timeout"))
            self._suspects.add(self._home.address)
            self._table.demote(self._home.address)
            self._drop_home(now, count_trial=True)
        if self._hunt is not None and self._hunt.deadline <= now:
            self._hunt_round_over(now)
        if self._retry_at is not None and self._retry_at <= now:
            self._retry_at = None
            self._ensure_hunt(now)
        if self._home is not None:
            for pe in list(self._pes.values()):
                if pe.due is not None and pe.due <= now:
                    self._send_registration(pe, now)

    # ------------------------------------------------------------------ actions

    def pop_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # ------------------------------------------------------------------ internals: home

    def _adopt_home(
        self,
        conn: ConnId,
        address: PeerAddress,
        server_id: int,
        reason: str,
        now: float,
        old_id: int = 0,
    ) -> None:
        self._home = _Home(conn, address, server_id)
        self._logged.clear()
        self._actions.append(HomeRegistrarChanged(old_id, server_id, address, reason))
        self._log(logging.INFO, f"home registrar is now {address}")
        for pe in self._pes.values():
            pe.registered = False
            self._send_registration(pe, now)
        queued, self._queue = self._queue, []
        for request in queued:
            self._transmit(request, now)

    def _drop_home(self, now: float, count_trial: bool) -> None:
        """The home connection is gone (lost or closed by us): requeue, hunt again."""
        self._home = None
        self._logged.clear()
        for pe in self._pes.values():
            pe.registered = False
            pe.due = None
        self._requeue_awaiting(count_trial)
        self._ensure_hunt(now)

    def _requeue_awaiting(self, count_trial: bool) -> None:
        awaiting, self._awaiting = self._awaiting, []
        requeued: list[_Request] = []
        for request in awaiting:
            if request.kind is _Kind.REGISTRATION:
                continue  # the PE table re-registers everything at the next home
            if count_trial:
                request.trials += 1
                if request.trials >= self.config.registrar_request_max_trials:
                    self._fail(request, TimeoutReason.NO_RESPONSE)
                    continue
            requeued.append(request)
        self._queue[:0] = requeued  # older requests stay first

    def _fail(self, request: _Request, reason: TimeoutReason, detail: str = "") -> None:
        text = f"{request.describe()}: {detail or reason.value}"
        if request.kind is _Kind.RESOLUTION:
            self._actions.append(RequestTimedOut(request.request_id, text, reason))
        elif request.kind is _Kind.DEREGISTRATION:
            self._actions.append(
                Deregistered(request.pool_handle, request.identifier, reason.value)
            )
        # Unreachable reports are best effort; registrations are retried by the PE table.

    # ------------------------------------------------------------------ internals: hunt

    def _needs_registrar(self) -> bool:
        return bool(self._pes or self._queue)

    def _ensure_hunt(self, now: float) -> None:
        idle = self._home is None and self._hunt is None and self._retry_at is None
        if idle and self._needs_registrar():
            self._start_round(1, now)

    def _start_round(self, trial: int, now: float) -> None:
        deadline = now + self.config.registrar_connect_timeout
        self._hunt = _Hunt(trial, deadline, set(), set())
        self._launch(now)

    def _launch(self, now: float) -> None:
        hunt = self._hunt
        if hunt is None:
            return
        room = self.config.registrar_parallel_connects - len(hunt.attempting)
        if room <= 0:
            return
        candidates = self._table.candidates(exclude=hunt.tried | hunt.attempting)
        # A registrar dropped for not answering goes last: a stopped process still
        # completes TCP handshakes from its listen backlog and would win the race.
        healthy = [a for a in candidates if a not in self._suspects]
        if healthy or hunt.attempting:
            candidates = healthy
        fresh = candidates[:room]
        if not fresh:
            if not hunt.attempting and not hunt.waiting_logged:
                hunt.waiting_logged = True
                known = len(self._table)
                what = "no registrar known" if not known else f"all {known} known registrars failed"
                self._log(
                    logging.INFO, f"{what}; waiting for Server Announces until the hunt round ends"
                )
            return
        hunt.attempting.update(fresh)
        hunt.tried.update(fresh)
        self._log(logging.INFO, "connecting to registrar(s) " + ", ".join(map(str, fresh)))
        self._actions.append(ConnectToRegistrar(tuple(fresh)))

    def _hunt_round_over(self, now: float) -> None:
        hunt = self._hunt
        assert hunt is not None
        self._hunt = None
        if hunt.trial < self.config.registrar_connect_max_trials:
            self._start_round(hunt.trial + 1, now)
            return
        rounds = hunt.trial
        if hunt.tried:
            tried = ", ".join(sorted(map(str, hunt.tried)))
            reason = (
                f"no registrar answered within {self.config.registrar_connect_timeout:g} s "
                f"x {rounds} round(s) (tried {tried})"
            )
        else:
            reason = (
                "no registrar known: no static registrar configured and no Server "
                f"Announce heard within {self.config.registrar_connect_timeout:g} s "
                f"x {rounds} round(s)"
            )
        self._log(logging.ERROR, reason)
        self._actions.append(NoRegistrar(reason))
        queued, self._queue = self._queue, []
        for request in queued:
            self._fail(request, TimeoutReason.NO_REGISTRAR, reason)
        if self._pes:
            self._retry_at = now + self.config.registrar_hunt_retry_delay

    # ------------------------------------------------------------------ internals: requests

    def _new_request_id(self) -> int:
        request_id = self._next_request_id
        self._next_request_id += 1
        return request_id

    def _new_identifier(self, pool_handle: bytes) -> int:
        while True:
            candidate = self._rng.randint(1, _U32_MAX)
            if (pool_handle, candidate) not in self._pes:
                return candidate

    def _submit(self, request: _Request, now: float) -> None:
        if self._home is not None:
            self._transmit(request, now)
        else:
            self._queue.append(request)
            self._ensure_hunt(now)

    def _transmit(self, request: _Request, now: float) -> None:
        assert self._home is not None
        msg: AsapMessage
        if request.kind is _Kind.RESOLUTION:
            msg = HandleResolution(request.pool_handle, self._hr_option(request.items))
        elif request.kind is _Kind.DEREGISTRATION:
            msg = Deregistration(request.pool_handle, request.identifier)
        elif request.kind is _Kind.UNREACHABLE:
            self._send(
                self._home.conn, EndpointUnreachable(request.pool_handle, request.identifier)
            )
            return  # no answer expected
        else:
            raise AssertionError("registrations are sent from the PE table")
        request.sent_at = now
        self._awaiting.append(request)
        self._send(self._home.conn, msg)

    def _hr_option(self, items: int) -> int | None:
        if self.config.stale_cache_value > 0 and items != _U32_MAX:
            return None  # fill the cache with the registrar's default answer size
        return items

    def _register_now(self, pe: _PoolElement, now: float) -> None:
        if self._home is not None:
            self._send_registration(pe, now)
        else:
            self._ensure_hunt(now)

    def _send_registration(self, pe: _PoolElement, now: float) -> None:
        assert self._home is not None
        param = PoolElementParam(
            identifier=pe.identifier,
            home_registrar_id=self._home.server_id,
            registration_life=self.config.registration_life_ms,
            user_transport=pe.user_transport,
            policy=pe.policy,
        )
        request = _Request(_Kind.REGISTRATION, 0, pe.pool_handle, pe.identifier, sent_at=now)
        self._awaiting.append(request)
        pe.due = now + self.config.reregistration_interval
        self._send(self._home.conn, Registration(pe.pool_handle, param))

    def _take_awaiting(
        self, kind: _Kind, pool_handle: bytes, identifier: int | None
    ) -> _Request | None:
        for index, request in enumerate(self._awaiting):
            if (
                request.kind is kind
                and request.pool_handle == pool_handle
                and (identifier is None or request.identifier == identifier)
            ):
                del self._awaiting[index]
                return request
        return None

    def _send(self, conn: ConnId, msg: AsapMessage) -> None:
        self._actions.append(SendMessage(conn, PPID.ASAP, encode_asap(msg)))

    # ------------------------------------------------------------------ internals: logging

    def _log(self, level: int, message: str) -> None:
        self._actions.append(LogEvent(level, message))

    def _log_once(self, key: str, level: int, message: str) -> None:
        """Log ``message`` once per key and home connection (a peer cannot flood the log)."""
        if key in self._logged or len(self._logged) >= 1024:
            return
        self._logged.add(key)
        self._log(level, message)


def error_text(causes: Iterable[ErrorCauseItem]) -> str:
    """Human-readable list of cause names."""
    return ", ".join(cause_name(item.code) for item in causes)


def _check_pool_handle(pool_handle: bytes) -> None:
    """Refuse locally what no registrar accepts (and what our decoder would refuse in the
    answer, leaving the request to time out instead of failing clearly)."""
    if not 1 <= len(pool_handle) <= DEFAULT_LIMITS.max_pool_handle:
        raise ValueError(
            f"pool handle must be 1..{DEFAULT_LIMITS.max_pool_handle} bytes, not {len(pool_handle)}"
        )
