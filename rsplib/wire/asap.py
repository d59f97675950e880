"""ASAP messages (RFC 5352 plus rsplib's extensions): frozen dataclasses and their codec.

Parameter order per message follows protocol-facts section 2.1 (rsplib's parser
is order-driven, so encoders keep that order). Every class ends with
``unrecognized``: TLVs skipped under the "skip and report" action bits, so the
receiver can answer with an Unrecognized Parameter error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from rsplib.wire.constants import AsapFlags, AsapType, ParamType
from rsplib.wire.errors import MissingParameterError, UnknownMessageError
from rsplib.wire.fastvalues import frozen_builder, slot_init
from rsplib.wire.message import (
    HEADER_SIZE,
    MESSAGE_HEADER,
    MessageFrame,
    encode_message,
    open_message,
)
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    PoolElementParam,
    Transport,
)
from rsplib.wire.tlv import (
    DEFAULT_LIMITS,
    Buffer,
    DecodeLimits,
    TlvReader,
    encode_cookie,
    encode_hr_option,
    encode_operation_error,
    encode_pe_identifier,
    encode_policy,
    encode_pool_element,
    encode_pool_handle,
    encode_transport,
    fast_policy_tlv,
    fast_pool_elements,
    fast_pool_handle,
    is_transport_code,
    read_operation_error,
    read_policy,
    read_pool_element,
    read_pool_handle,
    read_transport,
    read_u32,
)

_U32 = struct.Struct("!I")
_PE_ID_TLV = struct.Struct("!HHI")
_PE_IDENTIFIER = int(ParamType.PE_IDENTIFIER)


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


# --------------------------------------------------------------------------- encoding


def _encode_pes(
    policy: PolicyParam | None, pool_elements: tuple[PoolElementParam, ...]
) -> list[bytes]:
    parts = [encode_pool_element(pe) for pe in pool_elements]
    if policy is not None:
        parts.insert(0, encode_policy(policy))
    return parts


def encode_asap(msg: AsapMessage) -> bytes:
    """The complete message (header included), Length a multiple of 4."""
    try:
        flags, body = _encode_body(msg)
    except struct.error as exc:  # a fixed field out of range
        raise ValueError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    return encode_message(msg.TYPE, flags, body)


def _encode_body(msg: AsapMessage) -> tuple[int, bytes]:
    flags = 0
    parts: list[bytes]
    # The most frequent messages first.
    if isinstance(msg, Registration):
        parts = [encode_pool_handle(msg.pool_handle), encode_pool_element(msg.pool_element)]
    elif isinstance(msg, HandleResolutionResponse):
        parts = [encode_pool_handle(msg.pool_handle)]
        if msg.error is not None:
            if msg.policy is not None or msg.pool_elements:
                raise ValueError("a Handle Resolution Response carries an error or PEs, not both")
            parts.append(encode_operation_error(msg.error))
        else:
            parts.extend(_encode_pes(msg.policy, msg.pool_elements))
    elif isinstance(msg, EndpointKeepAlive):
        parts = [_U32.pack(msg.server_id), encode_pool_handle(msg.pool_handle)]
        if msg.identifier is not None:
            parts.append(encode_pe_identifier(msg.identifier))
        if msg.home:
            flags = AsapFlags.HOME
    elif isinstance(msg, RegistrationResponse | DeregistrationResponse):
        parts = [encode_pool_handle(msg.pool_handle), encode_pe_identifier(msg.identifier)]
        if msg.error is not None:
            parts.append(encode_operation_error(msg.error))
            if isinstance(msg, RegistrationResponse):
                flags = AsapFlags.REJECT
    elif isinstance(msg, Deregistration | EndpointKeepAliveAck | EndpointUnreachable):
        parts = [encode_pool_handle(msg.pool_handle), encode_pe_identifier(msg.identifier)]
    elif isinstance(msg, HandleResolution):
        parts = [encode_pool_handle(msg.pool_handle)]
        if msg.items is not None:
            parts.append(encode_hr_option(msg.items))
    elif isinstance(msg, ServerAnnounce):
        parts = [_U32.pack(msg.server_id)]
        parts.extend(encode_transport(t) for t in msg.transports)
    elif isinstance(msg, Cookie | CookieEcho):
        parts = [encode_cookie(msg.cookie)]
    elif isinstance(msg, BusinessCard):
        parts = [encode_pool_handle(msg.pool_handle)]
        parts.extend(_encode_pes(msg.policy, msg.pool_elements))
    elif isinstance(msg, AsapError):
        parts = [encode_operation_error(msg.error)]
    else:
        raise TypeError(f"not an ASAP message: {msg!r}")
    return flags, b"".join(parts)


# --------------------------------------------------------------------------- decoding


def _pool_handle(r: TlvReader) -> bytes:
    vs, ve = r.expect(ParamType.POOL_HANDLE, "pool handle")
    return read_pool_handle(r, vs, ve)


def _pe_id(r: TlvReader) -> int:
    vs, ve = r.expect(ParamType.PE_IDENTIFIER, "PE identifier")
    return read_u32(r, vs, ve, "PE identifier")


def _optional_error(r: TlvReader) -> OperationError | None:
    found = r.take_if(ParamType.OPERATION_ERROR)
    return None if found is None else read_operation_error(r, *found)


def _policy_and_pes(
    r: TlvReader,
) -> tuple[PolicyParam | None, tuple[PoolElementParam, ...]]:
    found = r.take_if(ParamType.POOL_MEMBER_SELECTION_POLICY)
    policy = None if found is None else read_policy(r, *found)
    spans = r.take_run(ParamType.POOL_ELEMENT)
    return policy, tuple([read_pool_element(r, vs, ve) for vs, ve in spans])


def _d_registration(f: MessageFrame) -> Registration:
    r = f.reader()
    handle = _pool_handle(r)
    vs, ve = r.expect(ParamType.POOL_ELEMENT, "pool element")
    pe = read_pool_element(r, vs, ve)
    r.finish("Registration")
    return Registration(handle, pe, f.unrecognized)


def _d_registration_response(f: MessageFrame) -> RegistrationResponse:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_id(r)
    error = _optional_error(r)
    r.finish("Registration Response")
    if error is None and f.flags & AsapFlags.REJECT:
        raise MissingParameterError("rejecting Registration Response without Operation Error")
    return RegistrationResponse(handle, identifier, error, f.unrecognized)


def _d_deregistration(f: MessageFrame) -> Deregistration:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_id(r)
    r.finish("Deregistration")
    return Deregistration(handle, identifier, f.unrecognized)


def _d_deregistration_response(f: MessageFrame) -> DeregistrationResponse:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_id(r)
    error = _optional_error(r)
    r.finish("Deregistration Response")
    return DeregistrationResponse(handle, identifier, error, f.unrecognized)


def _d_handle_resolution(f: MessageFrame) -> HandleResolution:
    r = f.reader()
    handle = _pool_handle(r)
    found = r.take_if(ParamType.HANDLE_RESOLUTION_OPTION)
    items = None if found is None else read_u32(r, *found, "HR option")
    r.finish("Handle Resolution")
    return HandleResolution(handle, items, f.unrecognized)


def _d_handle_resolution_response(f: MessageFrame) -> HandleResolutionResponse:
    r = f.reader()
    handle = _pool_handle(r)
    error = _optional_error(r)
    if error is not None:
        r.finish("Handle Resolution Response")
        return HandleResolutionResponse(handle, None, (), error, f.unrecognized)
    policy, pes = _policy_and_pes(r)
    r.finish("Handle Resolution Response")
    return HandleResolutionResponse(handle, policy, pes, None, f.unrecognized)


def _d_keep_alive(f: MessageFrame) -> EndpointKeepAlive:
    f.require(4, "Endpoint Keep-Alive")
    (server_id,) = _U32.unpack_from(f.data, HEADER_SIZE)
    r = f.reader(HEADER_SIZE + 4)
    handle = _pool_handle(r)
    found = r.take_if(ParamType.PE_IDENTIFIER)
    identifier = None if found is None else read_u32(r, *found, "PE identifier")
    r.finish("Endpoint Keep-Alive")
    home = bool(f.flags & AsapFlags.HOME)
    return EndpointKeepAlive(server_id, handle, identifier, home, f.unrecognized)


def _d_keep_alive_ack(f: MessageFrame) -> EndpointKeepAliveAck:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_id(r)
    r.finish("Endpoint Keep-Alive Ack")
    return EndpointKeepAliveAck(handle, identifier, f.unrecognized)


def _d_unreachable(f: MessageFrame) -> EndpointUnreachable:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_id(r)
    r.finish("Endpoint Unreachable")
    return EndpointUnreachable(handle, identifier, f.unrecognized)


def _d_server_announce(f: MessageFrame) -> ServerAnnounce:
    f.require(4, "Server Announce")
    (server_id,) = _U32.unpack_from(f.data, HEADER_SIZE)
    r = f.reader(HEADER_SIZE + 4)
    transports = []
    while (item := r.peek()) is not None and is_transport_code(item[0]):
        r.next()
        transports.append(read_transport(r, item[0], item[2], item[3]))
    r.finish("Server Announce")
    return ServerAnnounce(server_id, tuple(transports), f.unrecognized)


def _cookie_value(f: MessageFrame, what: str) -> bytes:
    r = f.reader()
    vs, ve = r.expect(ParamType.COOKIE, "cookie")
    r.finish(what)
    return f.data[vs:ve]


def _d_cookie(f: MessageFrame) -> Cookie:
    return Cookie(_cookie_value(f, "Cookie"), f.unrecognized)


def _d_cookie_echo(f: MessageFrame) -> CookieEcho:
    return CookieEcho(_cookie_value(f, "Cookie Echo"), f.unrecognized)


def _d_business_card(f: MessageFrame) -> BusinessCard:
    r = f.reader()
    handle = _pool_handle(r)
    policy, pes = _policy_and_pes(r)
    r.finish("Business Card")
    return BusinessCard(handle, policy, pes, f.unrecognized)


def _d_error(f: MessageFrame) -> AsapError:
    r = f.reader()
    vs, ve = r.expect(ParamType.OPERATION_ERROR, "operation error")
    error = read_operation_error(r, vs, ve)
    r.finish("ASAP Error")
    return AsapError(error, f.unrecognized)


_DECODERS: dict[int, Callable[[MessageFrame], AsapMessage]] = {
    AsapType.REGISTRATION: _d_registration,
    AsapType.DEREGISTRATION: _d_deregistration,
    AsapType.REGISTRATION_RESPONSE: _d_registration_response,
    AsapType.DEREGISTRATION_RESPONSE: _d_deregistration_response,
    AsapType.HANDLE_RESOLUTION: _d_handle_resolution,
    AsapType.HANDLE_RESOLUTION_RESPONSE: _d_handle_resolution_response,
    AsapType.ENDPOINT_KEEP_ALIVE: _d_keep_alive,
    AsapType.ENDPOINT_KEEP_ALIVE_ACK: _d_keep_alive_ack,
    AsapType.ENDPOINT_UNREACHABLE: _d_unreachable,
    AsapType.SERVER_ANNOUNCE: _d_server_announce,
    AsapType.COOKIE: _d_cookie,
    AsapType.COOKIE_ECHO: _d_cookie_echo,
    AsapType.BUSINESS_CARD: _d_business_card,
    AsapType.ERROR: _d_error,
}


# Fast paths for the messages a registrar and its PEs and PUs exchange most. Each
# reads only the usual shape (exact Length, parameters in order, nothing unknown,
# all limits kept) and returns None for anything else, which the general decoder
# then reads and, if need be, rejects with the precise error. For bytes a fast
# path accepts, its result equals the general decoder's.


# Positional-only constructors of the fast paths' results (every field given).
_build_registration = frozen_builder(Registration)
_build_hr_response = frozen_builder(HandleResolutionResponse)
_build_keep_alive = frozen_builder(EndpointKeepAlive)


def _fast_registration(data: bytes, flags: int, limits: DecodeLimits) -> Registration | None:
    end = len(data)
    found = fast_pool_handle(data, HEADER_SIZE, end, limits.max_pool_handle)
    if found is None:
        return None
    handle, pos = found
    pes = fast_pool_elements(data, pos, end, limits, 1)
    if pes is None or len(pes) != 1:
        return None
    return _build_registration(handle, pes[0], ())


def _fast_hr_response(
    data: bytes, flags: int, limits: DecodeLimits
) -> HandleResolutionResponse | None:
    end = len(data)
    found = fast_pool_handle(data, HEADER_SIZE, end, limits.max_pool_handle)
    if found is None:
        return None
    handle, pos = found
    policy = None
    found_policy = fast_policy_tlv(data, pos, end)
    if found_policy is not None:
        policy, pos = found_policy
    pes = fast_pool_elements(data, pos, end, limits, 1 if policy is None else 2)
    if pes is None:
        return None
    return _build_hr_response(handle, policy, tuple(pes), None, ())


def _fast_keep_alive(data: bytes, flags: int, limits: DecodeLimits) -> EndpointKeepAlive | None:
    end = len(data)
    if end < HEADER_SIZE + 4:
        return None
    (server_id,) = _U32.unpack_from(data, HEADER_SIZE)
    found = fast_pool_handle(data, HEADER_SIZE + 4, end, limits.max_pool_handle)
    if found is None:
        return None
    handle, pos = found
    identifier = None
    params = 1
    if pos != end:
        if end - pos != 8:
            return None
        code, length, identifier = _PE_ID_TLV.unpack_from(data, pos)
        if code != _PE_IDENTIFIER or length != 8:
            return None
        params = 2
    if params > limits.max_parameters:
        return None
    return _build_keep_alive(server_id, handle, identifier, bool(flags & AsapFlags.HOME), ())


_FAST_DECODERS: dict[int, Callable[[bytes, int, DecodeLimits], AsapMessage | None]] = {
    AsapType.REGISTRATION: _fast_registration,
    AsapType.HANDLE_RESOLUTION_RESPONSE: _fast_hr_response,
    AsapType.ENDPOINT_KEEP_ALIVE: _fast_keep_alive,
}


def decode_asap(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> AsapMessage:
    """One ASAP message (PPID 11). Raises only ProtocolError subclasses."""
    if type(data) is bytes and HEADER_SIZE <= len(data) <= limits.max_message_size:
        fast = _FAST_DECODERS.get(data[0])
        if fast is not None:
            _, flags, length = MESSAGE_HEADER.unpack_from(data)
            if length == len(data):
                message = fast(data, flags, limits)
                if message is not None:
                    return message
    return _decode_general(data, limits)


def _decode_general(data: Buffer, limits: DecodeLimits) -> AsapMessage:
    """The general decoder: every message, every shape, precise errors."""
    frame = open_message(data, limits)
    decoder = _DECODERS.get(frame.message_type)
    if decoder is None:
        raise UnknownMessageError(
            f"unknown ASAP message type 0x{frame.message_type:02X}", offending=frame.data[:4]
        )
    return decoder(frame)


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
    "decode_asap",
    "encode_asap",
]
