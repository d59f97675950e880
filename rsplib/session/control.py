"""The session layer's control channel and the pool element's session table (sans-IO).

Data and control share one connection: a message with PPID 11 is an ASAP
session-layer message (Cookie, Cookie Echo, Business Card; RFC 5352, sections
2.2.11-2.2.13), anything else is application data. Application data must
therefore never use PPID 11. This is the "data plus control" transport use a
pool element announces in its transport parameter (RFC 5354, sections 3.4 and 3.5).

:class:`PeSessionControl` is a pool element's view of one session, written as
a table (a missing (state, input) pair is a protocol error): a Cookie Echo is
accepted only as the very first message *received*; a later one aborts the
session, as rsplib's server framework does. The pool user's side is the
larger machine in :mod:`rsplib.session.pu_machine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rsplib.errors import LocalProtocolError, SessionProtocolError
from rsplib.wire.asap import (
    AsapMessage,
    BusinessCard,
    Cookie,
    CookieEcho,
    asap_message_name,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID
from rsplib.wire.errors import ProtocolError
from rsplib.wire.params import PolicyParam, PoolElementParam, Transport

_U32_MAX = 0xFFFFFFFF


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
        raise LocalProtocolError(f"PPID must fit 32 bits, not {ppid}")
    if ppid == PPID.ASAP:
        raise LocalProtocolError(
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
