"""ASAP messages (RFC 5352, section 2.2, plus rsplib's extensions) as frozen dataclasses.

The byte layout lives in :mod:`rsplib.wire.reference.asap` (the reference
codec) and :mod:`rsplib.wire.codec` (the codec rsplib runs). Every class ends
with ``unrecognized``: TLVs skipped under the "skip and report" action bits, so
the receiver can answer with an Unrecognized Parameter error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rsplib.wire.constants import AsapType
from rsplib.wire.fastvalues import slot_init
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    PoolElementParam,
    Transport,
)


@slot_init
@dataclass(frozen=True, slots=True)
class Registration:
    TYPE: ClassVar[AsapType] = AsapType.REGISTRATION
    pool_handle: bytes
    pool_element: PoolElementParam
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class RegistrationResponse:
    TYPE: ClassVar[AsapType] = AsapType.REGISTRATION_RESPONSE
    pool_handle: bytes
    identifier: int
    error: OperationError | None = None
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)

    @property
    def rejected(self) -> bool:
        return self.error is not None


@slot_init
@dataclass(frozen=True, slots=True)
class Deregistration:
    TYPE: ClassVar[AsapType] = AsapType.DEREGISTRATION
    pool_handle: bytes
    identifier: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class DeregistrationResponse:
    TYPE: ClassVar[AsapType] = AsapType.DEREGISTRATION_RESPONSE
    pool_handle: bytes
    identifier: int
    error: OperationError | None = None
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)

    @property
    def rejected(self) -> bool:
        return self.error is not None


@slot_init
@dataclass(frozen=True, slots=True)
class HandleResolution:
    """``items`` is rsplib's Handle Resolution option (0x803F); None = not sent."""

    TYPE: ClassVar[AsapType] = AsapType.HANDLE_RESOLUTION
    pool_handle: bytes
    items: int | None = None
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class HandleResolutionResponse:
    """Either ``error``, or ``policy`` plus pool elements (possibly none at all)."""

    TYPE: ClassVar[AsapType] = AsapType.HANDLE_RESOLUTION_RESPONSE
    pool_handle: bytes
    policy: PolicyParam | None = None
    pool_elements: tuple[PoolElementParam, ...] = ()
    error: OperationError | None = None
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class EndpointKeepAlive:
    """``identifier`` is rsplib's addition (which PE is probed); ``home`` is the H flag."""

    TYPE: ClassVar[AsapType] = AsapType.ENDPOINT_KEEP_ALIVE
    server_id: int
    pool_handle: bytes
    identifier: int | None = None
    home: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class EndpointKeepAliveAck:
    TYPE: ClassVar[AsapType] = AsapType.ENDPOINT_KEEP_ALIVE_ACK
    pool_handle: bytes
    identifier: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class EndpointUnreachable:
    TYPE: ClassVar[AsapType] = AsapType.ENDPOINT_UNREACHABLE
    pool_handle: bytes
    identifier: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class ServerAnnounce:
    """rsplib sends no transports; receivers then use the UDP source address and port."""

    TYPE: ClassVar[AsapType] = AsapType.SERVER_ANNOUNCE
    server_id: int
    transports: tuple[Transport, ...] = ()
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class Cookie:
    TYPE: ClassVar[AsapType] = AsapType.COOKIE
    cookie: bytes
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class CookieEcho:
    TYPE: ClassVar[AsapType] = AsapType.COOKIE_ECHO
    cookie: bytes
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class BusinessCard:
    TYPE: ClassVar[AsapType] = AsapType.BUSINESS_CARD
    pool_handle: bytes
    policy: PolicyParam | None
    pool_elements: tuple[PoolElementParam, ...]
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class AsapError:
    TYPE: ClassVar[AsapType] = AsapType.ERROR
    error: OperationError
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


AsapMessage = (
    Registration
    | RegistrationResponse
    | Deregistration
    | DeregistrationResponse
    | HandleResolution
    | HandleResolutionResponse
    | EndpointKeepAlive
    | EndpointKeepAliveAck
    | EndpointUnreachable
    | ServerAnnounce
    | Cookie
    | CookieEcho
    | BusinessCard
    | AsapError
)


def asap_message_name(msg: AsapMessage) -> str:
    """The message's type name, e.g. ``"REGISTRATION"``."""
    return msg.TYPE.name


__all__ = [
    "AsapError",
    "AsapMessage",
    "BusinessCard",
    "Cookie",
    "CookieEcho",
    "Deregistration",
    "DeregistrationResponse",
    "EndpointKeepAlive",
    "EndpointKeepAliveAck",
    "EndpointUnreachable",
    "HandleResolution",
    "HandleResolutionResponse",
    "Registration",
    "RegistrationResponse",
    "ServerAnnounce",
    "asap_message_name",
]
