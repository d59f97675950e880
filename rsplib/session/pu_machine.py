"""The pool user's side of a session, as a sans-IO state machine.

A session is "some pool element of the pool" for the application (RFC 5351,
section 3.3). This machine decides everything that happens while the session
looks for, uses, loses and replaces a pool element; its driver
(:mod:`rsplib.session.pu_session`) only carries out what it asks for and feeds
back what the network did, each time with ``now`` (seconds, monotonic).

It is layered on the ASAP client core the way an HTTP/3 connection sits on a
QUIC connection: handle resolutions and Endpoint Unreachable reports are calls
into the :class:`AsapPort` it is given (the process's
:class:`~rsplib.asap.client.AsapClient`), and the ASAP events that answer them
come back through :meth:`PuSessionMachine.asap_event`.

The failover sequence (RFC 5351, section 3.3; RFC 5352, section 3.5 for the
report), as this machine runs it:

1. A connection to the current PE ends (EOF, reset, heartbeat timeout, a
   failed send) or the application asks for a failover:
   :class:`FailoverStarted`. The connection is aborted.
2. The PE is reported with an Endpoint Unreachable only for a real transport
   failure: a connect that was refused or timed out, a connection whose
   heartbeats or sends timed out, or the application asking for it. A PE that
   closed or reset the connection is alive enough to answer; it may simply be
   busy (all session slots taken), so it is not reported (a report from one pool
   user must not evict a busy PE).
3. The pool handle is resolved again (the PU cache may answer); PEs that
   failed during this failover are skipped while others exist.
4. A connection to the chosen PE is opened; if the session holds a cookie, a
   Cookie Echo goes first (:class:`CookieEchoed`), since a PE takes it only as
   the first message.
5. Without a cookie the failover is complete once the connection is up. With
   one, the PE's verdict decides:

   * its first message (a new Cookie or data) accepts the cookie:
     :class:`FailoverCompleted`;
   * a graceful close before anything arrived is an explicit refusal:
     :class:`CookieRejected`, the cookie is dropped, and the machine connects
     again without it (the application then restarts its work);
   * a reset or a timeout (a hung PE, a PE that died) says nothing about the
     cookie: the machine keeps it and tries another PE. Only after the same
     cookie went unanswered at ``max_unanswered_echoes`` different PEs in a row
     does it give the cookie up (:class:`CookieAbandoned`), so that a pool whose
     PEs all silently drop it cannot hold the session forever. (One hung PE
     tried again and again counts once.)

6. Nothing reachable: wait ``retry_delay`` and resolve again, until the
   failover deadline (if any): :class:`SessionLost`. A failover away from a
   connection that never carried a message also waits ``retry_delay`` first,
   so a PE that resets every new connection costs one attempt per delay, not
   a loop at full speed.

States and inputs are a table (:data:`TRANSITIONS`): a (state, input) pair that
is not in it cannot happen with a correct driver and raises
:class:`~rsplib.errors.LocalProtocolError`. News about a connection or a
request the machine has already left behind is ignored before the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from rsplib.asap.actions import NoRegistrar, RequestTimedOut, ResolutionResult
from rsplib.core_actions import CloseConnection, LogEvent, SendMessage
from rsplib.errors import (
    CloseKind,
    LocalProtocolError,
    SessionProtocolError,
    TimeoutReason,
)
from rsplib.session.control import (
    DataMessage,
    PoolElementIdentity,
    classify,
    encode_cookie_echo,
)
from rsplib.wire.asap import Cookie, CookieEcho
from rsplib.wire.constants import PPID
from rsplib.wire.params import PoolElementParam

log = logging.getLogger("rsplib.session")

ConnId = int


class AsapPort(Protocol):
    """What the machine needs of the ASAP client core."""

    def resolve(self, pool_handle: bytes, items: int, now: float) -> int: ...

    def report_unreachable(self, pool_handle: bytes, identifier: int, now: float) -> None: ...


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SessionConfig:
    """Timing and policy knobs of one session (times in seconds)."""

    #: Pool elements asked for per handle resolution.
    items: int = 3
    #: Pause before resolving again when no PE could be used.
    retry_delay: float = 0.25
    #: Give a failover up after this long (None: keep trying, as rsplib does).
    failover_timeout: float | None = None
    #: Different PEs in a row that ended the connection before answering our Cookie Echo,
    #: after which the cookie is given up (a graceful close right after the echo, an
    #: explicit refusal, drops it at once).
    max_unanswered_echoes: int = 3

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ValueError("items must be at least 1")
        if self.retry_delay < 0:
            raise ValueError("retry_delay must not be negative")
        if self.max_unanswered_echoes < 1:
            raise ValueError("max_unanswered_echoes must be at least 1")


# --------------------------------------------------------------------------- typed reasons


class FailoverReason(Enum):
    """Why the session left its pool element."""

    EOF = "eof"
    RESET = "reset"
    TIMEOUT = "heartbeat-timeout"
    SEND_FAILED = "send-failed"
    PROTOCOL_ERROR = "protocol-error"
    REQUESTED = "requested"

    @classmethod
    def from_close(cls, kind: CloseKind) -> FailoverReason:
        return _REASON_OF_CLOSE[kind]


_REASON_OF_CLOSE = {
    CloseKind.EOF: FailoverReason.EOF,
    CloseKind.RESET: FailoverReason.RESET,
    CloseKind.TIMEOUT: FailoverReason.TIMEOUT,
    CloseKind.LOCAL: FailoverReason.RESET,
    CloseKind.PROTOCOL: FailoverReason.PROTOCOL_ERROR,
    CloseKind.OVERFLOW: FailoverReason.SEND_FAILED,
}


class ConnectFailure(Enum):
    """Why a connection to a pool element could not be opened."""

    REFUSED = "refused"
    TIMEOUT = "timed out"
    UNREACHABLE = "unreachable"
    UNSUPPORTED = "transport not supported here"

    @property
    def is_transport_failure(self) -> bool:
        """A failure that says the PE cannot be reached (worth an Endpoint Unreachable)."""
        return self is not ConnectFailure.UNSUPPORTED


class LostReason(Enum):
    """Why a session ended for good."""

    NO_REGISTRAR = "no registrar reachable"
    NO_POOL_ELEMENT = "no pool element reachable"
    FAILOVER_TIMEOUT = "failover timed out"
    CLOSED = "closed by the application"


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """Connect to ``pe`` (any of its addresses) and call ``connected``/``connect_failed``."""

    conn: ConnId
    pe: PoolElementIdentity


# SendMessage, CloseConnection (always ``abort=True`` or a graceful close on closing)
# and LogEvent come from rsplib.core_actions.


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Connected:
    """The session's first pool element is connected (not a failover)."""

    pe: PoolElementIdentity


@dataclass(frozen=True, slots=True)
class FailoverStarted:
    """The session left ``old_pe`` and looks for another one.

    ``last_rx`` is when the last message from the old PE arrived (None if none did):
    with ``at`` it tells how long the PE was silent before the session gave up on it.
    """

    old_pe: PoolElementIdentity | None
    reason: FailoverReason
    at: float
    last_rx: float | None


@dataclass(frozen=True, slots=True)
class CookieEchoed:
    """A Cookie Echo went to ``pe`` as the first message of the new connection."""

    pe: PoolElementIdentity
    at: float


@dataclass(frozen=True, slots=True)
class CookieRejected:
    """``pe`` closed the connection right after our Cookie Echo: the cookie is dropped."""

    pe: PoolElementIdentity
    at: float


@dataclass(frozen=True, slots=True)
class CookieAbandoned:
    """The cookie went unanswered at ``attempts`` different PEs in a row; it is given up."""

    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class PoolElementReported:
    """An Endpoint Unreachable for ``pe`` went to the registrar."""

    pe: PoolElementIdentity
    why: str


@dataclass(frozen=True, slots=True)
class FailoverCompleted:
    """The session continues on ``new_pe``.

    ``had_cookie``: the new PE accepted our Cookie Echo (its first message arrived);
    otherwise the session starts fresh there and the application restarts its work.
    ``started_at``/``completed_at`` bound the failover; ``last_rx`` is as in
    :class:`FailoverStarted`; ``attempts`` counts the PEs tried.
    """

    old_pe: PoolElementIdentity | None
    new_pe: PoolElementIdentity
    had_cookie: bool
    reason: FailoverReason
    started_at: float
    completed_at: float
    last_rx: float | None
    attempts: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Application data from the current pool element."""

    message: DataMessage


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The session is over for good; ``detail`` says more in words."""

    reason: LostReason
    detail: str


#: What the application hears about (data comes separately, as :class:`DataReceived`).
SessionEvent = (
    Connected
    | FailoverStarted
    | CookieEchoed
    | CookieRejected
    | CookieAbandoned
    | PoolElementReported
    | FailoverCompleted
    | SessionLost
)
Event = SessionEvent | DataReceived
Action = OpenConnection | SendMessage | CloseConnection | LogEvent | Event


# --------------------------------------------------------------------------- the table


class PuState(Enum):
    RESOLVING = "resolving the pool handle"
    CONNECTING = "connecting to a pool element"
    ECHOING = "waiting for the answer to a Cookie Echo"
    CONNECTED = "connected"
    WAITING = "waiting before trying again"
    CLOSED = "closed"


class PuInput(Enum):
    RESOLVED = "handle resolution answered"
    RESOLUTION_FAILED = "handle resolution failed"
    CONNECTED = "connection up"
    CONNECT_FAILED = "connection could not be opened"
    MESSAGE = "message from the pool element"
    PEER_CLOSED = "pool element closed the connection"
    PEER_LOST = "connection reset or timed out"
    SEND_FAILED = "send failed"
    FAILOVER_REQUESTED = "failover requested"
    RETRY_DUE = "retry delay over"
    DEADLINE = "deadline reached"
    CLOSE = "close"


_S, _I = PuState, PuInput
#: (state, input) -> name of the transition method. Every pair not listed is impossible.
TRANSITIONS: dict[tuple[PuState, PuInput], str] = {
    (_S.RESOLVING, _I.RESOLVED): "_on_resolved",
    (_S.RESOLVING, _I.RESOLUTION_FAILED): "_on_round_failed",
    (_S.RESOLVING, _I.FAILOVER_REQUESTED): "_ignore",
    (_S.RESOLVING, _I.DEADLINE): "_give_up",
    (_S.RESOLVING, _I.CLOSE): "_on_close",
    (_S.CONNECTING, _I.CONNECTED): "_on_connected",
    (_S.CONNECTING, _I.CONNECT_FAILED): "_on_connect_failed",
    (_S.CONNECTING, _I.FAILOVER_REQUESTED): "_ignore",
    (_S.CONNECTING, _I.DEADLINE): "_give_up",
    (_S.CONNECTING, _I.CLOSE): "_on_close",
    (_S.ECHOING, _I.MESSAGE): "_on_echo_answered",
    (_S.ECHOING, _I.PEER_CLOSED): "_on_echo_refused",
    (_S.ECHOING, _I.PEER_LOST): "_on_echo_unanswered",
    (_S.ECHOING, _I.SEND_FAILED): "_on_echo_unanswered",
    (_S.ECHOING, _I.FAILOVER_REQUESTED): "_on_echo_unanswered",
    (_S.ECHOING, _I.DEADLINE): "_give_up",
    (_S.ECHOING, _I.CLOSE): "_on_close",
    (_S.CONNECTED, _I.MESSAGE): "_on_message",
    (_S.CONNECTED, _I.PEER_CLOSED): "_start_failover",
    (_S.CONNECTED, _I.PEER_LOST): "_start_failover",
    (_S.CONNECTED, _I.SEND_FAILED): "_start_failover",
    (_S.CONNECTED, _I.FAILOVER_REQUESTED): "_start_failover",
    (_S.CONNECTED, _I.CLOSE): "_on_close",
    (_S.WAITING, _I.RETRY_DUE): "_resolve",
    (_S.WAITING, _I.FAILOVER_REQUESTED): "_ignore",
    (_S.WAITING, _I.DEADLINE): "_give_up",
    (_S.WAITING, _I.CLOSE): "_on_close",
    (_S.CLOSED, _I.CLOSE): "_ignore",
}


@dataclass(frozen=True, slots=True)
class _Input:
    """One input with what came with it (only the fields its kind uses are set)."""

    kind: PuInput
    now: float
    answer: tuple[PoolElementParam, ...] = ()
    failure: str = ""
    no_registrar: bool = False
    close_kind: CloseKind | None = None
    connect_failure: ConnectFailure | None = None
    ppid: int = 0
    data: bytes = b""
    report: bool = False


@dataclass
class _Episode:
    """A failover in progress (or the first connect, with ``initial``)."""

    initial: bool
    started_at: float
    deadline: float | None
    old_pe: PoolElementIdentity | None = None
    reason: FailoverReason = FailoverReason.REQUESTED
    last_rx: float | None = None
    avoid: set[int] = field(default_factory=set)
    candidates: list[PoolElementIdentity] = field(default_factory=list)
    attempts: int = 0
    saw_candidates: bool = False
    fallback_used: bool = False
    logged_retry: bool = False


class PuSessionMachine:
    """One pool-user session; see the module docstring for what it does."""

    def __init__(
        self,
        pool_handle: bytes,
        asap: AsapPort,
        config: SessionConfig | None = None,
    ) -> None:
        if not pool_handle:
            raise ValueError("pool handle must not be empty")
        self.pool_handle = bytes(pool_handle)
        self.config = config or SessionConfig()
        self._asap = asap
        self.state = PuState.CLOSED
        self._opened = False
        self._actions: list[Action] = []
        self._conn: ConnId | None = None
        self._next_conn: ConnId = 1
        self._pe: PoolElementIdentity | None = None
        self._cookie: bytes | None = None
        self._unanswered: set[int] = set()  # PEs that left the cookie unanswered
        self._request_id: int | None = None
        self._retry_at: float | None = None
        self._episode: _Episode | None = None
        self._last_rx: float | None = None
        self.failovers = 0

    # ------------------------------------------------------------------ read-only views

    @property
    def pool_element(self) -> PoolElementIdentity | None:
        """The PE the application's data goes to (None while there is none)."""
        return self._pe if self.state in (PuState.CONNECTED, PuState.ECHOING) else None

    @property
    def current_connection(self) -> ConnId | None:
        """The connection writes go to, once usable (connected or echoing)."""
        return self._conn if self.state in (PuState.CONNECTED, PuState.ECHOING) else None

    @property
    def cookie(self) -> bytes | None:
        """The newest cookie received from a PE (the session's recovery point)."""
        return self._cookie

    @property
    def failing_over(self) -> bool:
        return self._episode is not None and not self._episode.initial

    @property
    def closed(self) -> bool:
        return self._opened and self.state is PuState.CLOSED

    @property
    def is_open(self) -> bool:
        """Opened and not closed or lost yet."""
        return self._opened and self.state is not PuState.CLOSED

    def owns(self, conn: ConnId) -> bool:
        """Is ``conn`` the connection the machine is using or opening right now?"""
        return conn == self._conn

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` wants to run next."""
        times = [self._retry_at] if self.state is PuState.WAITING else []
        deadline = self._failover_deadline()
        if deadline is not None:
            times.append(deadline)
        return min((t for t in times if t is not None), default=None)

    def pop_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    # ------------------------------------------------------------------ inputs: application

    def open(self, now: float, timeout: float | None = None) -> None:
        """Find the first PE; keep trying for ``timeout`` seconds (None: one round)."""
        if self._opened:
            raise LocalProtocolError("the session was opened already")
        self._opened = True
        self._episode = _Episode(initial=True, started_at=now, deadline=now + (timeout or 0.0))
        self._resolve(_Input(PuInput.RETRY_DUE, now))

    def request_failover(self, now: float, *, report: bool = False) -> None:
        """Leave the current PE (rsplib's ``rsp_forcefailover``); ``report`` sends an
        Endpoint Unreachable for it first."""
        self._input(_Input(PuInput.FAILOVER_REQUESTED, now, report=report))

    def forget_cookie(self) -> None:
        """Connect the next PE without a Cookie Echo (the application restarts its work)."""
        self._cookie = None
        self._unanswered.clear()

    def close(self, now: float) -> None:
        """End the session; the current connection is closed gracefully."""
        self._input(_Input(PuInput.CLOSE, now))

    # ------------------------------------------------------------------ inputs: network

    def asap_event(self, event: object, now: float) -> None:
        """An event of the ASAP core; the machine picks the answers to its own requests."""
        if self._request_id is None:
            return
        if isinstance(event, ResolutionResult) and event.request_id == self._request_id:
            self._request_id = None
            if event.error is None:
                self._input(_Input(PuInput.RESOLVED, now, answer=event.pool_elements))
            else:
                failure = f"handle resolution failed (cause 0x{event.error:04x})"
                self._input(_Input(PuInput.RESOLUTION_FAILED, now, failure=failure))
        elif isinstance(event, RequestTimedOut) and event.request_id == self._request_id:
            self._request_id = None
            self._input(
                _Input(
                    PuInput.RESOLUTION_FAILED,
                    now,
                    failure=event.what,
                    no_registrar=event.reason is TimeoutReason.NO_REGISTRAR,
                )
            )
        elif isinstance(event, NoRegistrar):
            pass  # the pending request fails with RequestTimedOut(NO_REGISTRAR) as well

    def connected(self, conn: ConnId, now: float) -> None:
        if conn == self._conn:
            self._input(_Input(PuInput.CONNECTED, now))

    def connect_failed(self, conn: ConnId, failure: ConnectFailure, now: float) -> None:
        if conn == self._conn:
            self._input(_Input(PuInput.CONNECT_FAILED, now, connect_failure=failure))

    def received(self, conn: ConnId, ppid: int, data: bytes, now: float) -> None:
        if conn == self._conn:
            self._input(_Input(PuInput.MESSAGE, now, ppid=ppid, data=data))

    def connection_lost(self, conn: ConnId, kind: CloseKind, now: float) -> None:
        if conn != self._conn:
            return
        what = PuInput.PEER_CLOSED if kind is CloseKind.EOF else PuInput.PEER_LOST
        self._input(_Input(what, now, close_kind=kind))

    def send_failed(self, conn: ConnId, kind: CloseKind, now: float) -> None:
        if conn == self._conn:
            self._input(_Input(PuInput.SEND_FAILED, now, close_kind=kind))

    def handle_timer(self, now: float) -> None:
        deadline = self._failover_deadline()
        if deadline is not None and now >= deadline:
            self._input(_Input(PuInput.DEADLINE, now))
            return
        if self.state is PuState.WAITING and self._retry_at is not None and now >= self._retry_at:
            self._input(_Input(PuInput.RETRY_DUE, now))

    # ------------------------------------------------------------------ the table

    def _input(self, item: _Input) -> None:
        if not self._opened:
            raise LocalProtocolError("the session is not open yet")
        try:
            name = TRANSITIONS[(self.state, item.kind)]
        except KeyError:
            raise LocalProtocolError(
                f"{item.kind.value} cannot happen while {self.state.value}"
            ) from None
        handler: Callable[[_Input], None] = getattr(self, name)
        handler(item)

    # ------------------------------------------------------------------ transitions

    def _ignore(self, item: _Input) -> None:
        pass

    def _resolve(self, item: _Input) -> None:
        self.state = PuState.RESOLVING
        self._retry_at = None
        self._request_id = self._asap.resolve(self.pool_handle, self.config.items, item.now)

    def _on_resolved(self, item: _Input) -> None:
        episode = self._require_episode()
        candidates = [PoolElementIdentity.from_param(p) for p in item.answer]
        if candidates:
            episode.saw_candidates = True
        episode.candidates = candidates
        episode.fallback_used = False
        self._try_next_candidate(item.now)

    def _try_next_candidate(self, now: float) -> None:
        episode = self._require_episode()
        untried = [c for c in episode.candidates if c.identifier not in episode.avoid]
        if untried:
            chosen = untried[0]
        elif episode.candidates and not episode.fallback_used:
            # Every PE of this answer failed in this failover already. Try the first once
            # more (it may have restarted; the registrar may not know better yet).
            chosen = episode.candidates[0]
            episode.fallback_used = True
        else:
            self._round_failed(now, self._nothing_found_text(episode))
            return
        episode.candidates.remove(chosen)
        episode.attempts += 1
        self._conn = self._next_conn
        self._next_conn += 1
        self._pe = chosen
        self._last_rx = None
        self.state = PuState.CONNECTING
        self._actions.append(OpenConnection(self._conn, chosen))

    def _on_round_failed(self, item: _Input) -> None:
        episode = self._require_episode()
        if item.no_registrar and episode.initial:
            self._lose(LostReason.NO_REGISTRAR, item.failure, item.now)
            return
        self._round_failed(item.now, item.failure)

    def _round_failed(self, now: float, why: str) -> None:
        episode = self._require_episode()
        if episode.initial and episode.deadline is not None and now >= episode.deadline:
            self._lose(LostReason.NO_POOL_ELEMENT, self._nothing_found_text(episode), now)
            return
        if not episode.logged_retry:
            episode.logged_retry = True
            self._log(logging.INFO, f"pool {self._pool_text()}: {why}; trying again")
        self._wait(now)

    def _wait(self, now: float) -> None:
        self.state = PuState.WAITING
        self._retry_at = now + self.config.retry_delay
        self._require_episode().candidates = []

    def _on_connect_failed(self, item: _Input) -> None:
        episode = self._require_episode()
        pe = self._require_pe()
        failure = item.connect_failure or ConnectFailure.UNREACHABLE
        episode.avoid.add(pe.identifier)
        self._conn = None
        if failure.is_transport_failure:
            self._report(pe, f"connect {failure.value}", item.now)
        self._try_next_candidate(item.now)

    def _on_connected(self, item: _Input) -> None:
        pe = self._require_pe()
        conn = self._conn
        assert conn is not None
        if self._cookie is not None:
            # The Cookie Echo must be the very first message of the new connection.
            self._actions.append(
                SendMessage(conn, int(PPID.ASAP), encode_cookie_echo(self._cookie))
            )
            self.state = PuState.ECHOING
            self._emit(CookieEchoed(pe, item.now))
            return
        self._finish_episode(item.now, had_cookie=False)

    def _on_echo_answered(self, item: _Input) -> None:
        self._unanswered.clear()
        self._finish_episode(item.now, had_cookie=True)
        self._on_message(item)

    def _on_echo_refused(self, item: _Input) -> None:
        pe = self._require_pe()
        self._drop_connection()
        self._cookie = None
        self._unanswered.clear()
        self._emit(CookieRejected(pe, item.now))
        self._require_episode().avoid.add(pe.identifier)
        self._resolve(item)

    def _on_echo_unanswered(self, item: _Input) -> None:
        pe = self._require_pe()
        self._drop_connection()
        if item.report or self._is_timeout(item):
            self._report(pe, self._report_text(item), item.now)
        self._unanswered.add(pe.identifier)
        if len(self._unanswered) >= self.config.max_unanswered_echoes:
            self._emit(CookieAbandoned(len(self._unanswered), item.now))
            self.forget_cookie()
        self._require_episode().avoid.add(pe.identifier)
        self._resolve(item)

    def _on_message(self, item: _Input) -> None:
        self._last_rx = item.now
        try:
            message = classify(item.ppid, item.data)
        except SessionProtocolError as exc:
            self._log(logging.WARNING, f"ignoring a bad session-layer message from the PE: {exc}")
            return
        if isinstance(message, DataMessage):
            self._emit(DataReceived(message))
        elif isinstance(message, Cookie):
            self._cookie = bytes(message.cookie)  # only the newest cookie is kept
            self._unanswered.clear()
        elif isinstance(message, CookieEcho):
            self._log(logging.WARNING, "ignoring a Cookie Echo from a PE (only PUs send them)")
        # Business Cards are ignored, as rsplib does.

    def _start_failover(self, item: _Input) -> None:
        old = self._require_pe()
        reason = self._failover_reason(item)
        last_rx = self._last_rx
        self._drop_connection()
        deadline = None
        if self.config.failover_timeout is not None:
            deadline = item.now + self.config.failover_timeout
        self._episode = _Episode(
            initial=False,
            started_at=item.now,
            deadline=deadline,
            old_pe=old,
            reason=reason,
            last_rx=last_rx,
            avoid={old.identifier},
        )
        self._emit(FailoverStarted(old, reason, item.now, last_rx))
        if item.report or self._is_timeout(item):
            self._report(old, self._report_text(item), item.now)
        if last_rx is None:
            # The connection ended before the PE sent anything (a PE that resets every
            # connection, say): pause first, so such a PE cannot make us loop at full speed.
            self._wait(item.now)
        else:
            self._resolve(item)

    def _give_up(self, item: _Input) -> None:
        episode = self._require_episode()
        if episode.initial:
            self._lose(LostReason.NO_POOL_ELEMENT, self._nothing_found_text(episode), item.now)
        else:
            timeout = self.config.failover_timeout or 0.0
            self._lose(
                LostReason.FAILOVER_TIMEOUT,
                f"no pool element of pool {self._pool_text()} within {timeout:g} s",
                item.now,
            )

    def _on_close(self, item: _Input) -> None:
        if self._conn is not None:
            self._actions.append(CloseConnection(self._conn, "session closed"))
        self._conn = None
        self._lose(LostReason.CLOSED, "session closed", item.now)

    # ------------------------------------------------------------------ helpers

    def _finish_episode(self, now: float, *, had_cookie: bool) -> None:
        episode = self._require_episode()
        pe = self._require_pe()
        self.state = PuState.CONNECTED
        self._episode = None
        if episode.initial:
            self._emit(Connected(pe))
            return
        self.failovers += 1
        self._emit(
            FailoverCompleted(
                old_pe=episode.old_pe,
                new_pe=pe,
                had_cookie=had_cookie,
                reason=episode.reason,
                started_at=episode.started_at,
                completed_at=now,
                last_rx=episode.last_rx,
                attempts=episode.attempts,
            )
        )

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._actions.append(CloseConnection(self._conn, "failover", abort=True))
        self._conn = None

    def _lose(self, reason: LostReason, detail: str, now: float) -> None:
        self.state = PuState.CLOSED
        self._episode = None
        self._request_id = None
        self._retry_at = None
        if self._conn is not None:
            self._actions.append(CloseConnection(self._conn, detail, abort=True))
            self._conn = None
        self._emit(SessionLost(reason, detail))

    def _report(self, pe: PoolElementIdentity, why: str, now: float) -> None:
        self._asap.report_unreachable(self.pool_handle, pe.identifier, now)
        self._emit(PoolElementReported(pe, why))

    @staticmethod
    def _is_timeout(item: _Input) -> bool:
        # Heartbeats or the transport timed out: the PE cannot be reached. (A reset or a
        # close came from the PE's host, which therefore answers.)
        return item.close_kind is CloseKind.TIMEOUT

    @staticmethod
    def _report_text(item: _Input) -> str:
        return "requested by the application" if item.report else "transport timeout"

    @staticmethod
    def _failover_reason(item: _Input) -> FailoverReason:
        if item.kind is PuInput.FAILOVER_REQUESTED:
            return FailoverReason.REQUESTED
        kind = item.close_kind
        if kind in (CloseKind.EOF, CloseKind.RESET, CloseKind.TIMEOUT, CloseKind.PROTOCOL):
            # Whoever noticed it first (reader or writer), this is what ended the connection.
            return FailoverReason.from_close(kind)
        return FailoverReason.SEND_FAILED

    def _nothing_found_text(self, episode: _Episode) -> str:
        what = f"no pool element of pool {self._pool_text()}"
        return f"{what} could be reached" if episode.saw_candidates else f"{what} is registered"

    def _pool_text(self) -> str:
        return repr(self.pool_handle.decode(errors="replace"))

    def _failover_deadline(self) -> float | None:
        """A running failover's give-up time. (The first connect's deadline is checked
        after each failed round instead: without a timeout it still gets one round.)"""
        episode = self._episode
        if episode is None or episode.initial or self.state is PuState.CLOSED:
            return None
        return episode.deadline

    def _require_episode(self) -> _Episode:
        if self._episode is None:
            raise LocalProtocolError(f"no connection attempt in progress ({self.state.value})")
        return self._episode

    def _require_pe(self) -> PoolElementIdentity:
        if self._pe is None:
            raise LocalProtocolError("no pool element chosen")
        return self._pe

    def _emit(self, event: Event) -> None:
        self._actions.append(event)

    def _log(self, level: int, message: str) -> None:
        self._actions.append(LogEvent(level, message))


def describe(event: Event) -> str:
    """One line for the log."""
    if isinstance(event, FailoverStarted):
        return f"failover from {event.old_pe or 'no PE'} started: {event.reason.value}"
    if isinstance(event, FailoverCompleted):
        cookie = "cookie accepted" if event.had_cookie else "without cookie"
        return f"failover from {event.old_pe or 'no PE'} to {event.new_pe} completed ({cookie})"
    if isinstance(event, CookieEchoed):
        return f"Cookie Echo sent to {event.pe}"
    if isinstance(event, CookieRejected):
        return f"{event.pe} rejected the cookie; continuing without it"
    if isinstance(event, CookieAbandoned):
        return f"cookie unanswered {event.attempts} times in a row; continuing without it"
    if isinstance(event, PoolElementReported):
        return f"reported {event.pe} as unreachable ({event.why})"
    if isinstance(event, Connected):
        return f"connected to {event.pe}"
    if isinstance(event, SessionLost):
        return f"session lost: {event.detail}"
    return type(event).__name__


__all__ = [
    "TRANSITIONS",
    "Action",
    "AsapPort",
    "ConnectFailure",
    "Connected",
    "CookieAbandoned",
    "CookieEchoed",
    "CookieRejected",
    "DataReceived",
    "Event",
    "FailoverCompleted",
    "FailoverReason",
    "FailoverStarted",
    "LostReason",
    "OpenConnection",
    "PoolElementReported",
    "PuInput",
    "PuSessionMachine",
    "PuState",
    "SessionConfig",
    "SessionEvent",
    "SessionLost",
    "describe",
]
