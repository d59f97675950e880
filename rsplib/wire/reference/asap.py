"""The ASAP messages of RFC 5352 (section 2.2) with rsplib's extensions: one encoder and
one decoder per message.

Each message is the common header, any fixed fields, then its parameters in
the order written here. rsplib's parser reads parameters in exactly that order,
so encoders keep it; decoders demand it too, skipping only unknown parameters
whose action bits allow it. Errors are
:class:`~rsplib.wire.errors.ProtocolError` subclasses whose ``cause`` is what
an ASAP Error answer carries.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from rsplib.wire.asap import (
    AsapError,
    AsapMessage,
    BusinessCard,
    Cookie,
    CookieEcho,
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
)
from rsplib.wire.constants import AsapFlags, AsapType, ParamType
from rsplib.wire.errors import MissingParameterError, UnknownMessageError
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
from rsplib.wire.params import OperationError, PolicyParam, PoolElementParam
from rsplib.wire.reference.message import HEADER_SIZE, MessageFrame, encode_message, open_message
from rsplib.wire.reference.tlv import (
    TRANSPORT_CODES,
    Buffer,
    TlvReader,
    encode_cookie,
    encode_hr_option,
    encode_operation_error,
    encode_pe_identifier,
    encode_policy,
    encode_pool_element,
    encode_pool_handle,
    encode_transport,
    read_cookie,
    read_hr_option,
    read_operation_error,
    read_pe_identifier,
    read_policy,
    read_pool_element,
    read_pool_handle,
    read_transport,
)

#: What an encoder hands back: the flags byte and the body after the header.
Body = tuple[int, list[bytes]]

_SERVER_ID = struct.Struct("!I")


def _server_id(value: int) -> bytes:
    try:
        return _SERVER_ID.pack(value)
    except struct.error as exc:
        raise ValueError(f"server id out of range: {exc}") from exc


# Parameters most messages start with.


def _pool_handle(r: TlvReader) -> bytes:
    return read_pool_handle(r, r.expect(ParamType.POOL_HANDLE, "pool handle"))


def _pe_identifier(r: TlvReader) -> int:
    return read_pe_identifier(r, r.expect(ParamType.PE_IDENTIFIER, "PE identifier"))


def _optional_error(r: TlvReader) -> OperationError | None:
    tlv = r.take_if(ParamType.OPERATION_ERROR)
    return None if tlv is None else read_operation_error(r, tlv)


# Deregistration, Endpoint Keep-Alive Ack and Endpoint Unreachable are the same two
# parameters: Pool Handle, PE Identifier.


def _encode_handle_and_identifier(
    msg: Deregistration | EndpointKeepAliveAck | EndpointUnreachable,
) -> Body:
    return 0, [encode_pool_handle(msg.pool_handle), encode_pe_identifier(msg.identifier)]


def _handle_and_identifier(f: MessageFrame, what: str) -> tuple[bytes, int]:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_identifier(r)
    r.finish(what)
    return handle, identifier


def _encode_policy_and_pes(
    policy: PolicyParam | None, pool_elements: tuple[PoolElementParam, ...]
) -> list[bytes]:
    parts = [] if policy is None else [encode_policy(policy)]
    parts.extend(encode_pool_element(pe) for pe in pool_elements)
    return parts


def _policy_and_pes(r: TlvReader) -> tuple[PolicyParam | None, tuple[PoolElementParam, ...]]:
    """An optional policy, then any number of Pool Element parameters."""
    tlv = r.take_if(ParamType.POOL_MEMBER_SELECTION_POLICY)
    policy = None if tlv is None else read_policy(r, tlv)
    pes = tuple(read_pool_element(r, pe) for pe in r.take_run(ParamType.POOL_ELEMENT))
    return policy, pes


# ------------------------------------------------------------------------------- 2.2.1 Registration
# Pool Handle, Pool Element (a PE sends it without ASAP transport).


def _encode_registration(msg: Registration) -> Body:
    return 0, [encode_pool_handle(msg.pool_handle), encode_pool_element(msg.pool_element)]


def _decode_registration(f: MessageFrame) -> Registration:
    r = f.reader()
    handle = _pool_handle(r)
    pe = read_pool_element(r, r.expect(ParamType.POOL_ELEMENT, "pool element"))
    r.finish("Registration")
    return Registration(handle, pe, f.unrecognized)


# ----------------------------------------------------------------------------- 2.2.2 Deregistration
# Pool Handle, PE Identifier.


def _decode_deregistration(f: MessageFrame) -> Deregistration:
    handle, identifier = _handle_and_identifier(f, "Deregistration")
    return Deregistration(handle, identifier, f.unrecognized)


# ---------------------------------------------------------------------- 2.2.3 Registration Response
# Pool Handle, PE Identifier, [Operation Error]; the R flag marks a rejection,
# which must come with its Operation Error.


def _encode_registration_response(msg: RegistrationResponse) -> Body:
    parts = [encode_pool_handle(msg.pool_handle), encode_pe_identifier(msg.identifier)]
    if msg.error is None:
        return 0, parts
    return AsapFlags.REJECT, [*parts, encode_operation_error(msg.error)]


def _decode_registration_response(f: MessageFrame) -> RegistrationResponse:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_identifier(r)
    error = _optional_error(r)
    r.finish("Registration Response")
    if error is None and f.flags & AsapFlags.REJECT:
        raise MissingParameterError("rejecting Registration Response without Operation Error")
    return RegistrationResponse(handle, identifier, error, f.unrecognized)


# -------------------------------------------------------------------- 2.2.4 Deregistration Response
# Pool Handle, PE Identifier, [Operation Error].


def _encode_deregistration_response(msg: DeregistrationResponse) -> Body:
    parts = [encode_pool_handle(msg.pool_handle), encode_pe_identifier(msg.identifier)]
    if msg.error is not None:
        parts.append(encode_operation_error(msg.error))
    return 0, parts


def _decode_deregistration_response(f: MessageFrame) -> DeregistrationResponse:
    r = f.reader()
    handle = _pool_handle(r)
    identifier = _pe_identifier(r)
    error = _optional_error(r)
    r.finish("Deregistration Response")
    return DeregistrationResponse(handle, identifier, error, f.unrecognized)


# -------------------------------------------------------------------------- 2.2.5 Handle Resolution
# Pool Handle, then rsplib's Handle Resolution option (how many PEs are wanted).


def _encode_handle_resolution(msg: HandleResolution) -> Body:
    parts = [encode_pool_handle(msg.pool_handle)]
    if msg.items is not None:
        parts.append(encode_hr_option(msg.items))
    return 0, parts


def _decode_handle_resolution(f: MessageFrame) -> HandleResolution:
    r = f.reader()
    handle = _pool_handle(r)
    option = r.take_if(ParamType.HANDLE_RESOLUTION_OPTION)
    items = None if option is None else read_hr_option(r, option)
    r.finish("Handle Resolution")
    return HandleResolution(handle, items, f.unrecognized)


# ----------------------------------------------------------------- 2.2.6 Handle Resolution Response
# Pool Handle, then either an Operation Error, or the pool's policy and the
# selected Pool Elements (an empty pool sends neither).


def _encode_handle_resolution_response(msg: HandleResolutionResponse) -> Body:
    parts = [encode_pool_handle(msg.pool_handle)]
    if msg.error is None:
        return 0, parts + _encode_policy_and_pes(msg.policy, msg.pool_elements)
    if msg.policy is not None or msg.pool_elements:
        raise ValueError("a Handle Resolution Response carries an error or PEs, not both")
    return 0, [*parts, encode_operation_error(msg.error)]


def _decode_handle_resolution_response(f: MessageFrame) -> HandleResolutionResponse:
    r = f.reader()
    handle = _pool_handle(r)
    error = _optional_error(r)
    if error is not None:
        r.finish("Handle Resolution Response")
        return HandleResolutionResponse(handle, None, (), error, f.unrecognized)
    policy, pes = _policy_and_pes(r)
    r.finish("Handle Resolution Response")
    return HandleResolutionResponse(handle, policy, pes, None, f.unrecognized)


# ------------------------------------------------------------------------ 2.2.7 Endpoint Keep-Alive
# Server Identifier (fixed field), Pool Handle, then rsplib's PE Identifier of the
# probed PE; the H flag asks the PE to take the sender as its home registrar.

_KEEP_ALIVE_FIXED = _SERVER_ID


def _encode_keep_alive(msg: EndpointKeepAlive) -> Body:
    parts = [_server_id(msg.server_id), encode_pool_handle(msg.pool_handle)]
    if msg.identifier is not None:
        parts.append(encode_pe_identifier(msg.identifier))
    return (AsapFlags.HOME if msg.home else 0), parts


def _decode_keep_alive(f: MessageFrame) -> EndpointKeepAlive:
    (server_id,) = f.fixed(_KEEP_ALIVE_FIXED, "Endpoint Keep-Alive")
    r = f.reader(HEADER_SIZE + _KEEP_ALIVE_FIXED.size)
    handle = _pool_handle(r)
    tlv = r.take_if(ParamType.PE_IDENTIFIER)
    identifier = None if tlv is None else read_pe_identifier(r, tlv)
    r.finish("Endpoint Keep-Alive")
    home = bool(f.flags & AsapFlags.HOME)
    return EndpointKeepAlive(server_id, handle, identifier, home, f.unrecognized)


# -------------------------------------------------------------------- 2.2.8 Endpoint Keep-Alive Ack
# Pool Handle, PE Identifier.


def _decode_keep_alive_ack(f: MessageFrame) -> EndpointKeepAliveAck:
    handle, identifier = _handle_and_identifier(f, "Endpoint Keep-Alive Ack")
    return EndpointKeepAliveAck(handle, identifier, f.unrecognized)


# ----------------------------------------------------------------------- 2.2.9 Endpoint Unreachable
# Pool Handle, PE Identifier.


def _decode_unreachable(f: MessageFrame) -> EndpointUnreachable:
    handle, identifier = _handle_and_identifier(f, "Endpoint Unreachable")
    return EndpointUnreachable(handle, identifier, f.unrecognized)


# --------------------------------------------------------------------------- 2.2.10 Server Announce
# Server Identifier (fixed field), then where to connect: any number of transport
# parameters (rsplib sends none; the receiver then uses the datagram's source).


def _encode_server_announce(msg: ServerAnnounce) -> Body:
    return 0, [_server_id(msg.server_id), *(encode_transport(t) for t in msg.transports)]


def _decode_server_announce(f: MessageFrame) -> ServerAnnounce:
    (server_id,) = f.fixed(_SERVER_ID, "Server Announce")
    r = f.reader(HEADER_SIZE + _SERVER_ID.size)
    transports = []
    while (tlv := r.peek()) is not None and tlv.code in TRANSPORT_CODES:
        r.next()
        transports.append(read_transport(r, tlv))
    r.finish("Server Announce")
    return ServerAnnounce(server_id, tuple(transports), f.unrecognized)


# --------------------------------------------------------------- 2.2.11, 2.2.12 Cookie, Cookie Echo
# One Cookie parameter each.


def _encode_cookie(msg: Cookie | CookieEcho) -> Body:
    return 0, [encode_cookie(msg.cookie)]


def _cookie_of(f: MessageFrame, what: str) -> bytes:
    r = f.reader()
    cookie = read_cookie(r, r.expect(ParamType.COOKIE, "cookie"))
    r.finish(what)
    return cookie


def _decode_cookie(f: MessageFrame) -> Cookie:
    return Cookie(_cookie_of(f, "Cookie"), f.unrecognized)


def _decode_cookie_echo(f: MessageFrame) -> CookieEcho:
    return CookieEcho(_cookie_of(f, "Cookie Echo"), f.unrecognized)


# ----------------------------------------------------------------------------- 2.2.13 Business Card
# Pool Handle, then the policy and the PEs a pool user may fail over to.


def _encode_business_card(msg: BusinessCard) -> Body:
    return 0, [
        encode_pool_handle(msg.pool_handle),
        *_encode_policy_and_pes(msg.policy, msg.pool_elements),
    ]


def _decode_business_card(f: MessageFrame) -> BusinessCard:
    r = f.reader()
    handle = _pool_handle(r)
    policy, pes = _policy_and_pes(r)
    r.finish("Business Card")
    return BusinessCard(handle, policy, pes, f.unrecognized)


# ------------------------------------------------------------------------------------- 2.2.14 Error
# One Operation Error parameter.


def _encode_error(msg: AsapError) -> Body:
    return 0, [encode_operation_error(msg.error)]


def _decode_error(f: MessageFrame) -> AsapError:
    r = f.reader()
    error = read_operation_error(r, r.expect(ParamType.OPERATION_ERROR, "operation error"))
    r.finish("ASAP Error")
    return AsapError(error, f.unrecognized)


# ------------------------------------------------------------------------------------ the interface

_ENCODERS: dict[type, Callable[[Any], Body]] = {
    Registration: _encode_registration,
    Deregistration: _encode_handle_and_identifier,
    RegistrationResponse: _encode_registration_response,
    DeregistrationResponse: _encode_deregistration_response,
    HandleResolution: _encode_handle_resolution,
    HandleResolutionResponse: _encode_handle_resolution_response,
    EndpointKeepAlive: _encode_keep_alive,
    EndpointKeepAliveAck: _encode_handle_and_identifier,
    EndpointUnreachable: _encode_handle_and_identifier,
    ServerAnnounce: _encode_server_announce,
    Cookie: _encode_cookie,
    CookieEcho: _encode_cookie,
    BusinessCard: _encode_business_card,
    AsapError: _encode_error,
}

_DECODERS: dict[int, Callable[[MessageFrame], AsapMessage]] = {
    AsapType.REGISTRATION: _decode_registration,
    AsapType.DEREGISTRATION: _decode_deregistration,
    AsapType.REGISTRATION_RESPONSE: _decode_registration_response,
    AsapType.DEREGISTRATION_RESPONSE: _decode_deregistration_response,
    AsapType.HANDLE_RESOLUTION: _decode_handle_resolution,
    AsapType.HANDLE_RESOLUTION_RESPONSE: _decode_handle_resolution_response,
    AsapType.ENDPOINT_KEEP_ALIVE: _decode_keep_alive,
    AsapType.ENDPOINT_KEEP_ALIVE_ACK: _decode_keep_alive_ack,
    AsapType.ENDPOINT_UNREACHABLE: _decode_unreachable,
    AsapType.SERVER_ANNOUNCE: _decode_server_announce,
    AsapType.COOKIE: _decode_cookie,
    AsapType.COOKIE_ECHO: _decode_cookie_echo,
    AsapType.BUSINESS_CARD: _decode_business_card,
    AsapType.ERROR: _decode_error,
}


def encode_asap(msg: AsapMessage) -> bytes:
    """The complete message (header included), its Length a multiple of 4."""
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        raise TypeError(f"not an ASAP message: {msg!r}")
    flags, parts = encoder(msg)
    return encode_message(msg.TYPE, flags, b"".join(parts))


def decode_asap(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> AsapMessage:
    """One ASAP message (PPID 11). Raises only ProtocolError subclasses."""
    frame = open_message(data, limits)
    decoder = _DECODERS.get(frame.message_type)
    if decoder is None:
        raise UnknownMessageError(
            f"unknown ASAP message type 0x{frame.message_type:02X}", offending=frame.data[:4]
        )
    return decoder(frame)


__all__ = ["decode_asap", "encode_asap"]
