"""The pool-user session machine alone: a fake ASAP port, a fake clock, no sockets.

Each test feeds the machine what the network would do and checks what it asks for
(connections, sends, closes) and what it tells the application (events).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsplib.asap.actions import RequestTimedOut, ResolutionResult
from rsplib.core_actions import CloseConnection, SendMessage
from rsplib.errors import CloseKind, LocalProtocolError, TimeoutReason
from rsplib.session.control import DataMessage, encode_cookie
from rsplib.session.pu_machine import (
    TRANSITIONS,
    Connected,
    ConnectFailure,
    CookieAbandoned,
    CookieEchoed,
    CookieRejected,
    DataReceived,
    FailoverCompleted,
    FailoverReason,
    FailoverStarted,
    LostReason,
    OpenConnection,
    PoolElementReported,
    PuInput,
    PuSessionMachine,
    PuState,
    SessionConfig,
    SessionLost,
    _Input,
)
from rsplib.wire.asap import CookieEcho, decode_asap
from rsplib.wire.constants import PPID, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport, ip

POOL = b"FractalGeneratorPool"
RR = PolicyParam(PolicyType.ROUND_ROBIN)


def pe_param(pe_id: int) -> PoolElementParam:
    return PoolElementParam(pe_id, 0xA, 6000, TcpTransport(5000 + pe_id, (ip("127.0.0.1"),)), RR)


@dataclass
class FakeAsap:
    """Records what the machine asks of the ASAP core."""

    requests: list[int] = field(default_factory=list)
    reports: list[int] = field(default_factory=list)

    def resolve(self, pool_handle: bytes, items: int, now: float) -> int:
        assert pool_handle == POOL
        self.requests.append(len(self.requests) + 100)
        return self.requests[-1]

    def report_unreachable(self, pool_handle: bytes, identifier: int, now: float) -> None:
        self.reports.append(identifier)


class Harness:
    def __init__(self, config: SessionConfig | None = None) -> None:
        self.asap = FakeAsap()
        self.machine = PuSessionMachine(POOL, self.asap, config)
        self.now = 0.0
        self.actions: list[object] = []

    def take(self) -> list[object]:
        actions = self.machine.pop_actions()
        self.actions.extend(actions)
        return actions

    def retry_if_waiting(self) -> None:
        """Let a pause before the next resolution run out (see the machine's step 6)."""
        if self.machine.state is PuState.WAITING:
            deadline = self.machine.next_deadline()
            assert deadline is not None
            self.now = deadline
            self.machine.handle_timer(self.now)

    def answer(self, *pe_ids: int) -> list[object]:
        """Answer the pending resolution; returns the actions that the answer caused."""
        self.retry_if_waiting()
        self.take()
        request = self.asap.requests[-1]
        params = tuple(pe_param(i) for i in pe_ids)
        self.machine.asap_event(ResolutionResult(request, POOL, params), self.now)
        return self.take()

    def opened(self) -> OpenConnection:
        opens = [a for a in self.take() if isinstance(a, OpenConnection)]
        assert len(opens) == 1, opens
        return opens[0]

    def connect(self, *pe_ids: int) -> int:
        """Answer the pending resolution and bring the first chosen PE's connection up."""
        self.retry_if_waiting()
        self.take()
        request = self.asap.requests[-1]
        params = tuple(pe_param(i) for i in pe_ids)
        self.machine.asap_event(ResolutionResult(request, POOL, params), self.now)
        opening = self.opened()
        self.machine.connected(opening.conn, self.now)
        return opening.conn

    def cookie(self, conn: int, cookie: bytes) -> None:
        self.machine.received(conn, int(PPID.ASAP), encode_cookie(cookie), self.now)

    def data(self, conn: int, payload: bytes = b"px") -> None:
        self.machine.received(conn, 32, payload, self.now)

    def events(self, kind: type[object]) -> list[object]:
        self.take()
        return [a for a in self.actions if isinstance(a, kind)]


def connected_harness(config: SessionConfig | None = None) -> tuple[Harness, int]:
    h = Harness(config)
    h.machine.open(h.now, timeout=5.0)
    h.take()
    conn = h.connect(1, 2, 3)
    assert h.events(Connected) and h.machine.state is PuState.CONNECTED
    return h, conn


# ------------------------------------------------------------------ first connect


def test_the_first_connect_resolves_and_opens_the_policy_s_first_choice() -> None:
    h = Harness()
    h.machine.open(h.now)
    assert h.asap.requests and h.machine.state is PuState.RESOLVING
    assert h.machine.next_deadline() is None  # no timer for the first round
    h.now = 0.01
    opening = h.answer(2, 1)[0]
    assert isinstance(opening, OpenConnection) and opening.pe.identifier == 2
    h.machine.connected(opening.conn, h.now)
    assert h.events(Connected)[0] == Connected(opening.pe)
    assert h.machine.pool_element == opening.pe
    assert h.machine.current_connection == opening.conn


def test_without_a_timeout_an_empty_pool_ends_the_session_after_one_round() -> None:
    h = Harness()
    h.machine.open(h.now)
    h.answer()
    (lost,) = h.events(SessionLost)
    assert isinstance(lost, SessionLost) and lost.reason is LostReason.NO_POOL_ELEMENT
    assert "is registered" in lost.detail and h.machine.closed


def test_with_a_timeout_the_first_connect_keeps_trying_until_it_expires() -> None:
    h = Harness(SessionConfig(retry_delay=0.5))
    h.machine.open(h.now, timeout=2.0)
    h.answer()
    assert h.machine.state is PuState.WAITING and h.machine.next_deadline() == 0.5
    rounds = 1
    while h.machine.state is not PuState.CLOSED:
        deadline = h.machine.next_deadline()
        assert deadline is not None
        h.now = deadline
        h.machine.handle_timer(h.now)
        h.take()
        h.answer()
        rounds += 1
    assert rounds == 5  # at 0, 0.5, 1.0, 1.5 and 2.0 s
    assert isinstance(h.events(SessionLost)[0], SessionLost)


def test_no_registrar_ends_the_first_connect_at_once() -> None:
    h = Harness()
    h.machine.open(h.now, timeout=10.0)
    request = h.asap.requests[-1]
    h.machine.asap_event(
        RequestTimedOut(request, "handle resolution: no registrar", TimeoutReason.NO_REGISTRAR),
        h.now,
    )
    (lost,) = h.events(SessionLost)
    assert isinstance(lost, SessionLost) and lost.reason is LostReason.NO_REGISTRAR


def test_a_refused_connect_is_reported_and_the_next_candidate_tried() -> None:
    h = Harness()
    h.machine.open(h.now)
    first = h.answer(1, 2)[0]
    assert isinstance(first, OpenConnection)
    h.machine.connect_failed(first.conn, ConnectFailure.REFUSED, h.now)
    second = h.opened()
    assert second.pe.identifier == 2 and h.asap.reports == [1]
    assert isinstance(h.events(PoolElementReported)[0], PoolElementReported)


def test_an_unsupported_transport_is_skipped_without_a_report() -> None:
    h = Harness()
    h.machine.open(h.now)
    first = h.answer(1, 2)[0]
    assert isinstance(first, OpenConnection)
    h.machine.connect_failed(first.conn, ConnectFailure.UNSUPPORTED, h.now)
    assert h.opened().pe.identifier == 2 and h.asap.reports == []


# ------------------------------------------------------------------ failover


def test_eof_fails_over_without_reporting_and_skips_the_lost_pe() -> None:
    h, conn = connected_harness()
    h.data(conn)
    h.now = 1.0
    h.machine.connection_lost(conn, CloseKind.EOF, h.now)
    started = h.events(FailoverStarted)[0]
    assert isinstance(started, FailoverStarted)
    assert started.reason is FailoverReason.EOF and started.last_rx == 0.0 and started.at == 1.0
    assert h.asap.reports == []
    new = h.connect(1, 2)
    assert new != conn
    (done,) = h.events(FailoverCompleted)
    assert isinstance(done, FailoverCompleted)
    assert done.new_pe.identifier == 2 and not done.had_cookie and done.attempts == 1
    assert h.machine.failovers == 1


def test_a_busy_pe_that_resets_is_not_reported() -> None:
    """A reset says the PE answered (maybe busy): no Endpoint Unreachable (RFC 5352, 3.5)."""
    h, conn = connected_harness()
    h.machine.connection_lost(conn, CloseKind.RESET, h.now)
    h.answer(1, 2)
    opening = [a for a in h.actions if isinstance(a, OpenConnection)][-1]
    h.machine.connected(opening.conn, h.now)
    h.machine.connection_lost(opening.conn, CloseKind.RESET, h.now)  # busy: reset at once
    assert h.asap.reports == []


def test_a_heartbeat_timeout_or_a_timed_out_send_reports_the_pe() -> None:
    h, conn = connected_harness()
    h.machine.connection_lost(conn, CloseKind.TIMEOUT, h.now)
    assert h.asap.reports == [1]
    assert h.events(FailoverStarted)[0].reason is FailoverReason.TIMEOUT  # type: ignore[attr-defined]
    conn = h.connect(2)
    h.machine.send_failed(conn, CloseKind.TIMEOUT, h.now)
    assert h.asap.reports == [1, 2]


def test_a_requested_failover_reports_only_when_asked() -> None:
    h, _conn = connected_harness()
    h.machine.request_failover(h.now)
    assert h.asap.reports == []
    h.connect(2)
    h.machine.request_failover(h.now, report=True)
    assert h.asap.reports == [2]
    reasons = [e.reason for e in h.events(FailoverStarted)]  # type: ignore[attr-defined]
    assert reasons == [FailoverReason.REQUESTED, FailoverReason.REQUESTED]


def test_news_of_an_old_connection_is_ignored() -> None:
    h, old = connected_harness()
    h.machine.connection_lost(old, CloseKind.EOF, h.now)
    h.connect(2)
    h.take()
    h.machine.connection_lost(old, CloseKind.RESET, h.now)
    h.data(old)
    h.machine.send_failed(old, CloseKind.RESET, h.now)
    assert h.take() == [] and h.machine.state is PuState.CONNECTED


def test_when_every_pe_failed_the_first_is_retried_once_then_the_machine_waits() -> None:
    h, conn = connected_harness(SessionConfig(retry_delay=0.25))
    h.machine.connection_lost(conn, CloseKind.RESET, h.now)
    retry = h.answer(1)[0]  # only the PE we just lost is registered
    assert isinstance(retry, OpenConnection) and retry.pe.identifier == 1
    h.machine.connect_failed(retry.conn, ConnectFailure.REFUSED, h.now)
    assert h.machine.state is PuState.WAITING
    h.now += 0.25
    h.machine.handle_timer(h.now)
    assert len(h.asap.requests) == 3 and h.machine.state is PuState.RESOLVING


def test_a_failover_that_finds_nothing_gives_up_at_its_timeout() -> None:
    h, conn = connected_harness(SessionConfig(failover_timeout=1.0, retry_delay=0.3))
    h.now = 10.0
    h.machine.connection_lost(conn, CloseKind.EOF, h.now)
    while h.machine.state is not PuState.CLOSED:
        if h.machine.state is PuState.RESOLVING:
            h.answer()
        deadline = h.machine.next_deadline()
        assert deadline is not None and deadline <= 11.0
        h.now = deadline
        h.machine.handle_timer(h.now)
        h.take()
    (lost,) = h.events(SessionLost)
    assert isinstance(lost, SessionLost) and lost.reason is LostReason.FAILOVER_TIMEOUT
    assert h.now == 11.0


# ------------------------------------------------------------------ cookies


def _lose_with_cookie(h: Harness, conn: int, kind: CloseKind = CloseKind.RESET) -> None:
    h.cookie(conn, b"state-7!")
    h.machine.connection_lost(conn, kind, h.now)


def test_the_cookie_echo_goes_first_and_the_pe_s_first_message_accepts_it() -> None:
    h, conn = connected_harness()
    h.cookie(conn, b"state-1!")
    h.cookie(conn, b"state-2!")  # only the newest cookie is kept
    assert h.machine.cookie == b"state-2!"
    h.machine.connection_lost(conn, CloseKind.RESET, h.now)
    conn = h.connect(2)
    sends = [a for a in h.take() if isinstance(a, SendMessage)]
    assert sends and sends[0].conn == conn and sends[0].ppid == PPID.ASAP
    assert decode_asap(sends[0].data) == CookieEcho(b"state-2!")
    assert h.machine.state is PuState.ECHOING and h.events(CookieEchoed)
    assert h.machine.current_connection == conn  # writes may follow the echo
    assert not h.events(FailoverCompleted)
    h.now = 0.5
    h.cookie(conn, b"state-3!")
    (done,) = h.events(FailoverCompleted)
    assert isinstance(done, FailoverCompleted) and done.had_cookie and done.completed_at == 0.5
    h.data(conn, b"more")
    assert h.events(DataReceived)[-1] == DataReceived(DataMessage(32, b"more"))


def test_a_graceful_close_after_the_echo_rejects_the_cookie() -> None:
    h, conn = connected_harness()
    _lose_with_cookie(h, conn)
    conn = h.connect(2, 3)
    h.machine.connection_lost(conn, CloseKind.EOF, h.now)
    (rejected,) = h.events(CookieRejected)
    assert isinstance(rejected, CookieRejected) and rejected.pe.identifier == 2
    assert h.machine.cookie is None and h.asap.reports == []
    conn = h.connect(2, 3)  # the refusing PE is skipped, and no echo goes out
    assert not [a for a in h.take() if isinstance(a, SendMessage)]
    (done,) = h.events(FailoverCompleted)
    assert isinstance(done, FailoverCompleted) and done.new_pe.identifier == 3
    assert not done.had_cookie and done.attempts == 2


def test_a_silent_pe_after_the_echo_keeps_the_cookie_for_the_next_pe() -> None:
    """A hung PE is no rejection: the cookie survives and goes to the next PE."""
    h, conn = connected_harness()
    _lose_with_cookie(h, conn)
    conn = h.connect(2, 3)
    h.now = 3.0
    h.machine.connection_lost(conn, CloseKind.TIMEOUT, h.now)  # heartbeat timeout
    assert not h.events(CookieRejected) and h.machine.cookie == b"state-7!"
    assert h.asap.reports == [2]  # a timeout is a real transport failure
    conn = h.connect(2, 3)
    sends = [a for a in h.take() if isinstance(a, SendMessage)]
    assert decode_asap(sends[0].data) == CookieEcho(b"state-7!")
    h.cookie(conn, b"state-8!")
    done = h.events(FailoverCompleted)[-1]
    assert isinstance(done, FailoverCompleted) and done.had_cookie and done.attempts == 2
    assert done.new_pe.identifier == 3 and done.started_at == 0.0


def test_a_cookie_nobody_answers_is_given_up_after_the_limit() -> None:
    h, conn = connected_harness(SessionConfig(max_unanswered_echoes=2))
    _lose_with_cookie(h, conn)
    conn = h.connect(2, 3)
    h.machine.connection_lost(conn, CloseKind.RESET, h.now)
    assert h.machine.cookie is not None
    conn = h.connect(3)
    h.machine.connection_lost(conn, CloseKind.RESET, h.now)
    (abandoned,) = h.events(CookieAbandoned)
    assert isinstance(abandoned, CookieAbandoned) and abandoned.attempts == 2
    assert h.machine.cookie is None and not h.events(CookieRejected)


def test_one_hung_pe_tried_again_and_again_never_costs_the_cookie() -> None:
    h, conn = connected_harness(SessionConfig(max_unanswered_echoes=2))
    _lose_with_cookie(h, conn)
    for _ in range(5):  # only the hung PE is registered; every round tries it again
        conn = h.connect(2)
        h.machine.connection_lost(conn, CloseKind.TIMEOUT, h.now)
    assert h.machine.cookie == b"state-7!" and not h.events(CookieAbandoned)


def test_close_closes_the_connection_gracefully_and_ends_the_session() -> None:
    h, conn = connected_harness()
    h.machine.close(h.now)
    actions = h.take()
    assert CloseConnection(conn, "session closed") in actions
    lost = [a for a in actions if isinstance(a, SessionLost)]
    assert lost and lost[0].reason is LostReason.CLOSED
    h.machine.close(h.now)  # closing twice is harmless
    with pytest.raises(LocalProtocolError):
        h.machine.request_failover(h.now)


# ------------------------------------------------------------------ the table


def _machine_in(state: PuState) -> Harness:
    """A machine brought into ``state`` the way a driver would."""
    h = Harness()
    if state is PuState.CLOSED:
        h.machine.open(h.now)
        h.answer()
        return h
    h.machine.open(h.now, timeout=60.0)
    h.take()
    if state is PuState.RESOLVING:
        return h
    if state is PuState.WAITING:
        h.answer()
        return h
    if state is PuState.CONNECTING:
        h.answer(1)
        return h
    conn = h.connect(1, 2)
    if state is PuState.CONNECTED:
        return h
    _lose_with_cookie(h, conn)
    h.connect(2)
    assert h.machine.state is PuState.ECHOING
    return h


@pytest.mark.parametrize(("state", "kind"), list(itertools.product(list(PuState), list(PuInput))))
def test_every_state_input_pair_is_in_the_table_or_refused(state: PuState, kind: PuInput) -> None:
    h = _machine_in(state)
    assert h.machine.state is state
    item = _Input(kind, h.now, answer=(pe_param(2),), close_kind=CloseKind.RESET)
    if (state, kind) not in TRANSITIONS:
        with pytest.raises(LocalProtocolError):
            h.machine._input(item)
        return
    h.machine._input(item)
    h.take()
    assert h.machine.state in PuState


# ------------------------------------------------------------------ random walks

_STEPS = st.lists(
    st.sampled_from(
        [
            "answer",
            "answer-empty",
            "connected",
            "refused",
            "eof",
            "reset",
            "timeout",
            "send-failed",
            "cookie",
            "data",
            "failover",
            "timer",
        ]
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_STEPS)
def test_random_network_news_keep_the_machine_consistent(steps: list[str]) -> None:
    """Whatever the network does, the machine never breaks its own rules."""
    h = Harness(SessionConfig(retry_delay=0.1, max_unanswered_echoes=3))
    h.machine.open(h.now, timeout=1e9)
    pending: OpenConnection | None = None
    conn: int | None = None
    for step in steps:
        h.now += 0.05
        state = h.machine.state
        if step.startswith("answer") and state is PuState.RESOLVING:
            h.machine.asap_event(
                ResolutionResult(
                    h.asap.requests[-1],
                    POOL,
                    () if step == "answer-empty" else (pe_param(1), pe_param(2), pe_param(3)),
                ),
                h.now,
            )
        elif step in ("connected", "refused") and pending is not None:
            if step == "connected":
                h.machine.connected(pending.conn, h.now)
                conn = pending.conn
            else:
                h.machine.connect_failed(pending.conn, ConnectFailure.REFUSED, h.now)
            pending = None
        elif step in ("eof", "reset", "timeout") and conn is not None:
            kind = {"eof": CloseKind.EOF, "reset": CloseKind.RESET, "timeout": CloseKind.TIMEOUT}
            h.machine.connection_lost(conn, kind[step], h.now)
        elif step == "send-failed" and conn is not None:
            h.machine.send_failed(conn, CloseKind.RESET, h.now)
        elif step == "cookie" and conn is not None:
            h.cookie(conn, b"c%07d" % int(h.now * 100))
        elif step == "data" and conn is not None:
            h.data(conn)
        elif step == "failover" and state in (PuState.CONNECTED, PuState.ECHOING):
            h.machine.request_failover(h.now)
        elif step == "timer":
            deadline = h.machine.next_deadline()
            if deadline is not None:
                h.now = max(h.now, deadline)
                h.machine.handle_timer(h.now)
        for action in h.take():
            if isinstance(action, OpenConnection):
                assert pending is None, "a second connection while one is opening"
                pending = action
                conn = None
            elif isinstance(action, CloseConnection) and action.conn == conn:
                conn = None
        # Invariants: usable means a connection; failovers start and complete in pairs.
        usable = h.machine.current_connection
        assert (usable is not None) == (h.machine.state in (PuState.CONNECTED, PuState.ECHOING))
        if usable is not None:
            assert usable == conn
        started = len(h.events(FailoverStarted))
        completed = len(h.events(FailoverCompleted))
        assert completed <= started <= completed + 1
        assert h.machine.failovers == completed
