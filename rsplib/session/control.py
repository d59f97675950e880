"""The session layer's control channel and state tables (sans-IO).

Data and control share one connection (protocol-facts 6.5): a message with
PPID 11 is an ASAP session-layer message (Cookie, Cookie Echo, Business
Card), anything else is application data. Application data must therefore
never use PPID 11.

Two small state machines, written as tables (a missing (state, input) pair
is a protocol error), decide what the asyncio layers do:

* :class:`PeSessionControl` -- a pool element's view of one session. A Cookie
  Echo is accepted only as the very first message *received*; a later one
  aborts the session (rsplib's server framework does the same, trap 22).
* :class:`PuSessionControl` -- a pool user's session: connected, failing
  over, closed. Failover triggers arriving while a failover runs collapse
  into it; a failed send is remembered so that the failed PE is reported
  (only a failed send reports a PE, protocol-facts 8.1 and trap 23).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum

from rsplib.wire.asap import AsapMessage, BusinessCard, Cookie, CookieEcho, asap_message_name
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import PPID
from rsplib.wire.errors import ProtocolError
from rsplib.wire.params import PolicyParam, PoolElementParam, Transport

_U32_MAX = 0xFFFFFFFF


class SessionProtocolError(Exception):
    """The peer broke the session layer's rules (the session is aborted)."""


# --------------------------------------------------------------------------- identities


@dataclass(frozen=True, slots=True)
class PoolElementIdentity:
    """A pool element as a pool user sees it (from a Handle Resolution)."""

    identifier: int
    transport: Transport
    addresses: tuple[str, ...]
    port: int
    policy: PolicyParam
    home_registrar_id: int = 0

    @classmethod
    def from_param(cls, param: PoolElementParam) -> PoolElementIdentity:
        user = param.user_transport
        return cls(
            identifier=param.identifier,
            transport=user,
            addresses=tuple(str(a) for a in user.addresses),
            port=user.port,
            policy=param.policy,
            home_registrar_id=param.home_registrar_id,
        )

    def __str__(self) -> str:
        where = ",".join(self.addresses) or "?"
        return f"PE 0x{self.identifier:08x} ({where}:{self.port})"


def choose_pool_element(
    candidates: Sequence[PoolElementIdentity], avoid: Collection[int] = ()
) -> PoolElementIdentity | None:
    """The first candidate not in ``avoid``; an avoided one only if nothing else is left.

    The registrar and the cache already ordered the candidates by the pool
    policy; failed PEs are skipped because the registrar may not have noticed
    their failure yet (one may also have restarted, hence the fallback).
    """
    for candidate in candidates:
        if candidate.identifier not in avoid:
            return candidate
    return candidates[0] if candidates else None


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class DataMessage:
    """Application data with its PPID."""

    ppid: int
    data: bytes


ControlMessage = Cookie | CookieEcho | BusinessCard
Incoming = DataMessage | Cookie | CookieEcho | BusinessCard


def check_data_ppid(ppid: int) -> int:
    """Validate an application PPID: 32 bits and never ASAP's 11."""
    if not 0 <= ppid <= _U32_MAX:
        raise ValueError(f"PPID must fit 32 bits, not {ppid}")
    if ppid == PPID.ASAP:
        raise ValueError(
            "application data must not use PPID 11: it marks ASAP session-layer "
            "messages (Cookie, Cookie Echo, Business Card) on the same connection"
        )
    return ppid


def classify(ppid: int, data: bytes) -> Incoming:
    """Split a received message into application data or a session-layer message."""
    if ppid != PPID.ASAP:
        return DataMessage(ppid, data)
    try:
        msg: AsapMessage = decode_asap(data)
    except ProtocolError as exc:
        raise SessionProtocolError(f"malformed ASAP message on the session: {exc}") from exc
    if isinstance(msg, Cookie | CookieEcho | BusinessCard):
        return msg
    raise SessionProtocolError(f"{asap_message_name(msg)} is not a session-layer message")


def encode_cookie(cookie: bytes) -> bytes:
    return encode_asap(Cookie(bytes(cookie)))


def encode_cookie_echo(cookie: bytes) -> bytes:
    return encode_asap(CookieEcho(bytes(cookie)))


# --------------------------------------------------------------------------- PE side


class PeState(Enum):
    AWAITING_FIRST = "awaiting first message"
    ACTIVE = "active"
    CLOSED = "closed"


class PeInput(Enum):
    COOKIE_ECHO = "Cookie Echo received"
    DATA = "data received"
    BUSINESS_CARD = "Business Card received"
    COOKIE = "Cookie received"  # only a PE sends Cookies
    CLOSE = "close"


class PeVerdict(Enum):
    RESTORE = "restore the session from the cookie"
    DELIVER = "deliver to the application"
    IGNORE = "ignore"
    ABORT = "abort the session"
    NONE = "nothing to do"


_S, _I, _V = PeState, PeInput, PeVerdict
_PE_TABLE: dict[tuple[PeState, PeInput], tuple[PeState, PeVerdict]] = {
    (_S.AWAITING_FIRST, _I.COOKIE_ECHO): (_S.ACTIVE, _V.RESTORE),
    (_S.AWAITING_FIRST, _I.DATA): (_S.ACTIVE, _V.DELIVER),
    # rsplib ignores Business Cards; one still ends the "first message" window.
    (_S.AWAITING_FIRST, _I.BUSINESS_CARD): (_S.ACTIVE, _V.IGNORE),
    (_S.AWAITING_FIRST, _I.COOKIE): (_S.CLOSED, _V.ABORT),
    (_S.AWAITING_FIRST, _I.CLOSE): (_S.CLOSED, _V.NONE),
    (_S.ACTIVE, _I.COOKIE_ECHO): (_S.CLOSED, _V.ABORT),
    (_S.ACTIVE, _I.DATA): (_S.ACTIVE, _V.DELIVER),
    (_S.ACTIVE, _I.BUSINESS_CARD): (_S.ACTIVE, _V.IGNORE),
    (_S.ACTIVE, _I.COOKIE): (_S.CLOSED, _V.ABORT),
    (_S.ACTIVE, _I.CLOSE): (_S.CLOSED, _V.NONE),
    (_S.CLOSED, _I.CLOSE): (_S.CLOSED, _V.NONE),
}


def pe_input_for(message: Incoming) -> PeInput:
    if isinstance(message, DataMessage):
        return PeInput.DATA
    if isinstance(message, CookieEcho):
        return PeInput.COOKIE_ECHO
    if isinstance(message, Cookie):
        return PeInput.COOKIE
    return PeInput.BUSINESS_CARD


class PeSessionControl:
    """One session at a pool element: what to do with each received message."""

    def __init__(self) -> None:
        self.state = PeState.AWAITING_FIRST

    def on_input(self, event: PeInput) -> PeVerdict:
        try:
            self.state, verdict = _PE_TABLE[(self.state, event)]
        except KeyError:
            raise SessionProtocolError(f"{event.value} in state {self.state.value}") from None
        return verdict

    def close(self) -> None:
        """The connection is gone (closing is valid in every state)."""
        self.on_input(PeInput.CLOSE)


# --------------------------------------------------------------------------- PU side


class PuState(Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILING_OVER = "failing over"
    CLOSED = "closed"


class PuInput(Enum):
    CONNECTED = "connected to a PE"
    PEER_LOST = "EOF, reset or heartbeat timeout"
    SEND_FAILED = "send failed"
    FORCE_FAILOVER = "failover requested"
    CLOSE = "close"


class PuVerdict(Enum):
    START_FAILOVER = "start a failover"
    JOIN_FAILOVER = "a failover is running already"
    READY = "the session is usable"
    NONE = "nothing to do"


_P, _Q, _W = PuState, PuInput, PuVerdict
_PU_TABLE: dict[tuple[PuState, PuInput], tuple[PuState, PuVerdict]] = {
    (_P.CONNECTING, _Q.CONNECTED): (_P.CONNECTED, _W.READY),
    (_P.CONNECTING, _Q.PEER_LOST): (_P.CONNECTING, _W.JOIN_FAILOVER),
    (_P.CONNECTING, _Q.SEND_FAILED): (_P.CONNECTING, _W.JOIN_FAILOVER),
    (_P.CONNECTING, _Q.FORCE_FAILOVER): (_P.CONNECTING, _W.JOIN_FAILOVER),
    (_P.CONNECTING, _Q.CLOSE): (_P.CLOSED, _W.NONE),
    (_P.CONNECTED, _Q.PEER_LOST): (_P.FAILING_OVER, _W.START_FAILOVER),
    (_P.CONNECTED, _Q.SEND_FAILED): (_P.FAILING_OVER, _W.START_FAILOVER),
    (_P.CONNECTED, _Q.FORCE_FAILOVER): (_P.FAILING_OVER, _W.START_FAILOVER),
    (_P.CONNECTED, _Q.CLOSE): (_P.CLOSED, _W.NONE),
    (_P.FAILING_OVER, _Q.CONNECTED): (_P.CONNECTED, _W.READY),
    (_P.FAILING_OVER, _Q.PEER_LOST): (_P.FAILING_OVER, _W.JOIN_FAILOVER),
    (_P.FAILING_OVER, _Q.SEND_FAILED): (_P.FAILING_OVER, _W.JOIN_FAILOVER),
    (_P.FAILING_OVER, _Q.FORCE_FAILOVER): (_P.FAILING_OVER, _W.JOIN_FAILOVER),
    (_P.FAILING_OVER, _Q.CLOSE): (_P.CLOSED, _W.NONE),
    (_P.CLOSED, _Q.CLOSE): (_P.CLOSED, _W.NONE),
}


class PuSessionControl:
    """A pool user's session: state, the newest cookie, and whether to report the PE."""

    def __init__(self) -> None:
        self.state = PuState.CONNECTING
        self.cookie: bytes | None = None
        self.send_failed = False

    def on_input(self, event: PuInput) -> PuVerdict:
        try:
            self.state, verdict = _PU_TABLE[(self.state, event)]
        except KeyError:
            raise SessionProtocolError(f"{event.value} in state {self.state.value}") from None
        # A failed send that starts a failover decides that the PE gets reported; one that
        # merely joins a running failover comes too late for that decision.
        if event is PuInput.SEND_FAILED and verdict is PuVerdict.START_FAILOVER:
            self.send_failed = True
        return verdict

    def take_report_flag(self) -> bool:
        """Should the failover report the old PE? (Only after a failed send; resets.)"""
        flag, self.send_failed = self.send_failed, False
        return flag

    def store_cookie(self, cookie: bytes) -> None:
        """The PU keeps only the newest cookie (protocol-facts 8.1)."""
        self.cookie = bytes(cookie)

    def forget_cookie(self) -> None:
        """Drop the cookie, so the next connection starts without a Cookie Echo (used when a
        PE refused the echoed cookie: the application then restarts from its parameters)."""
        self.cookie = None
