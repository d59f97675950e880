"""What the ASAP client core hands to its service (``AsapClient.pop_actions``).

Two kinds, in one ordered list: *requests* the service carries out
(connect, send, close, log) and *events* it passes to the application
(registration results, resolution results, failures).
"""

from __future__ import annotations

from dataclasses import dataclass

from rsplib.addressing import ConnId, PeerAddress
from rsplib.core_actions import CloseConnection, LogEvent, SendMessage
from rsplib.errors import TimeoutReason
from rsplib.wire.params import PoolElementParam

__all__ = [
    "Action",
    "AsapErrorReceived",
    "CloseConnection",
    "ConnId",
    "ConnectToRegistrar",
    "Deregistered",
    "Event",
    "HomeRegistrarChanged",
    "LogEvent",
    "NoRegistrar",
    "PeerAddress",
    "RegistrationFailed",
    "RegistrationSucceeded",
    "RequestTimedOut",
    "ResolutionResult",
    "SendMessage",
]


# --------------------------------------------------------------------------- requests
# SendMessage, CloseConnection and LogEvent are shared with the registrar core
# (rsplib.core_actions); the ASAP client never sets ``CloseConnection.abort``.


@dataclass(frozen=True, slots=True)
class ConnectToRegistrar:
    """Open connections to these registrars in parallel.

    The first one up wins: the service calls ``connected(conn, address, now)`` for it and
    closes the others; for every attempt that fails it calls ``connect_failed(address, now)``.
    Each attempt gets at most ``AsapConfig.registrar_connect_timeout`` (a hung attempt then
    counts as failed); a late success is still welcome if no other registrar won meanwhile.
    """

    addresses: tuple[PeerAddress, ...]


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RegistrationSucceeded:
    """The PE is registered at the current home registrar (first time or after a failover).

    ``registrar_id`` is 0 while the home registrar's id is unknown (it is learned from
    Server Announces and Endpoint Keep-Alives, not from the Registration Response).
    """

    pool_handle: bytes
    identifier: int
    registrar_id: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    """The registrar refused the PE (``cause`` is the Operation Error cause, ``text`` its name).

    The core stops keeping a refused PE registered; the application decides what next.
    """

    pool_handle: bytes
    identifier: int
    cause: int
    text: str


@dataclass(frozen=True, slots=True)
class Deregistered:
    """A deregistration finished; ``error`` is None on success, else a reason."""

    pool_handle: bytes
    identifier: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResolutionResult:
    """Answer to ``resolve``: PEs (possibly none), or the registrar's error cause."""

    request_id: int
    pool_handle: bytes
    pool_elements: tuple[PoolElementParam, ...]
    error: int | None = None
    from_cache: bool = False


@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """A request got no answer within the configured timeouts and trials."""

    request_id: int
    what: str
    reason: TimeoutReason = TimeoutReason.NO_RESPONSE


@dataclass(frozen=True, slots=True)
class HomeRegistrarChanged:
    """The client now uses another registrar (after a hunt, or on a Keep-Alive's H flag)."""

    old_registrar_id: int
    new_registrar_id: int
    address: PeerAddress | None
    reason: str


@dataclass(frozen=True, slots=True)
class NoRegistrar:
    """No registrar could be reached within the hunt timeout and trials."""

    reason: str


@dataclass(frozen=True, slots=True)
class AsapErrorReceived:
    """The registrar sent an ASAP Error (it could not process something we sent)."""

    cause: int
    text: str


Event = (
    RegistrationSucceeded
    | RegistrationFailed
    | Deregistered
    | ResolutionResult
    | RequestTimedOut
    | HomeRegistrarChanged
    | NoRegistrar
    | AsapErrorReceived
)

Action = ConnectToRegistrar | SendMessage | CloseConnection | LogEvent | Event
