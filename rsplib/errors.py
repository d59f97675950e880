"""Every exception the library raises on its own, under one root.

``except RserPoolError`` catches all of them. Below the root the split follows
h11's: *whose fault* an error is decides what the caller can do about it.

* :class:`LocalProtocolError` -- this side asked for something the protocol or
  the API does not allow (application data on PPID 11, a state-machine input
  that cannot happen). A bug in the caller; retrying does not help.
* :class:`RemoteProtocolError` -- a peer sent something malformed or not
  allowed where it came. The wire decoders' ``ProtocolError`` is one; it carries
  the RSerPool error cause to answer with (RFC 5352, section 3.6 ff.).
* Everything else is an *operational* failure: the network, a timeout, a
  registrar's refusal. Those are the subclasses further down; their names say
  what went wrong.

Transport and session errors live here too, so a module that only needs to
catch them does not import the asyncio adapters that raise them.
"""

from __future__ import annotations

from enum import Enum


class RserPoolError(Exception):
    """Base of every error this library raises."""


class LocalProtocolError(RserPoolError):
    """This side tried to do something the protocol or the API forbids."""


class RemoteProtocolError(RserPoolError):
    """A peer broke the protocol (malformed or unexpected message)."""


# --------------------------------------------------------------------------- transport


class TransportError(RserPoolError):
    """Base of the transport package's own errors."""


class TransportUnavailable(TransportError):
    """The requested transport cannot be used on this machine."""


class CloseKind(Enum):
    """Why a connection ended, as far as the local side can tell.

    The session layer decides on this, not on the text: a pool element that
    closes gracefully right after a Cookie Echo refused the cookie, while a reset
    or a timeout says nothing about the cookie (RFC 5351, section 3.3: the
    pool user fails over in both cases, but keeps a cookie that was not refused).
    """

    EOF = "closed by the peer"
    RESET = "reset by the peer"
    TIMEOUT = "heartbeat or transport timeout"
    LOCAL = "closed locally"
    PROTOCOL = "protocol error"
    OVERFLOW = "send buffer overflow"


class ChannelClosed(TransportError):
    """The channel is gone; ``kind`` says how, ``reason`` in words."""

    def __init__(self, reason: str, kind: CloseKind = CloseKind.RESET) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# --------------------------------------------------------------------------- ASAP


class TimeoutReason(Enum):
    """Why an ASAP request went unanswered."""

    NO_REGISTRAR = "no registrar reachable"
    NO_RESPONSE = "no response from the registrar"


class NoRegistrarError(RserPoolError):
    """No registrar could be reached within the configured hunt timeout and trials."""


class RequestTimeoutError(RserPoolError):
    """A registrar request got no answer within the configured timeouts and trials."""


class ResolutionError(RserPoolError):
    """The registrar answered a Handle Resolution with an error cause."""

    def __init__(self, message: str, cause: int) -> None:
        super().__init__(message)
        self.cause = cause


class RegistrationError(RserPoolError):
    """The registrar refused a registration (``cause`` is the Operation Error cause)."""

    def __init__(self, message: str, cause: int) -> None:
        super().__init__(message)
        self.cause = cause


# --------------------------------------------------------------------------- sessions


class SessionClosed(RserPoolError):
    """The session is over (peer closed, aborted, or closed locally)."""


class SessionProtocolError(RemoteProtocolError):
    """The peer broke the session layer's rules (the session is aborted)."""


class NoPoolElementError(RserPoolError):
    """The pool has no reachable pool element (within the given time)."""


class FailoverError(RserPoolError):
    """The session could not find a new pool element within its failover timeout."""


__all__ = [
    "ChannelClosed",
    "CloseKind",
    "FailoverError",
    "LocalProtocolError",
    "NoPoolElementError",
    "NoRegistrarError",
    "RegistrationError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResolutionError",
    "RserPoolError",
    "SessionClosed",
    "SessionProtocolError",
    "TimeoutReason",
    "TransportError",
    "TransportUnavailable",
]
