"""The ASAP/ENRP codec rsplib runs: the reference codec's interface, made fast.

Every function here returns what its namesake in :mod:`rsplib.wire.reference`
returns (bytes, values and errors alike; the property tests compare them for
every message type and parameter). It takes a fast path where one exists and
hands everything else to the reference:

- decoding: the busiest messages in their usual shape go through
  :mod:`rsplib.wire.fastdecode`, which decides from the headers alone whether
  it can read a message, so a message it turns down is parsed once, by the
  reference;
- encoding: the messages carrying pool handles, pool elements and transports
  use the caches and generated writers of :mod:`rsplib.wire.fastencode`.

Encoded Pool Element TLVs live in one kind of store, :class:`EncodedPoolElements`:
the message encoders use a bounded process-wide one unless given another, and a
registrar keeps its own for the PEs it serves resolutions from (see
:mod:`rsplib.registrar.fastpath`), so each of them is encoded once while it is
unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from rsplib.wire import fastdecode, layouts
from rsplib.wire.asap import (
    AsapMessage,
    BusinessCard,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
)
from rsplib.wire.constants import AsapFlags, AsapType, EnrpFlags, EnrpType
from rsplib.wire.enrp import EnrpMessage, HandleTableResponse, HandleUpdate
from rsplib.wire.fastencode import (
    RECENT_POOL_ELEMENTS,
    EncodedPoolElements,
    clear_encode_caches,
    encode_pe_identifier,
    encode_policy,
    encode_pool_element,
    encode_pool_handle,
    encode_transport,
)
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
from rsplib.wire.reference import asap as reference_asap
from rsplib.wire.reference import enrp as reference_enrp
from rsplib.wire.reference import message as reference_message
from rsplib.wire.reference.message import HEADER_SIZE, MESSAGE_HEADER
from rsplib.wire.reference.tlv import (
    Buffer,
    encode_hr_option,
    encode_operation_error,
    encode_server_information,
)

_U32 = struct.Struct("!I")
_ENRP_IDS = struct.Struct("!II")
_ENRP_IDS_AND_ACTION = struct.Struct("!IIHH")
_header = MESSAGE_HEADER.pack
# Plain ints: packing an IntEnum member costs a conversion, and these run per message.
_REGISTRATION = int(AsapType.REGISTRATION)
_REGISTRATION_RESPONSE = int(AsapType.REGISTRATION_RESPONSE)
_HANDLE_RESOLUTION = int(AsapType.HANDLE_RESOLUTION)
_HANDLE_RESOLUTION_RESPONSE = int(AsapType.HANDLE_RESOLUTION_RESPONSE)
_BUSINESS_CARD = int(AsapType.BUSINESS_CARD)
_ENDPOINT_KEEP_ALIVE = int(AsapType.ENDPOINT_KEEP_ALIVE)
_ENDPOINT_KEEP_ALIVE_ACK = int(AsapType.ENDPOINT_KEEP_ALIVE_ACK)
_HANDLE_UPDATE = int(EnrpType.HANDLE_UPDATE)
_HANDLE_TABLE_RESPONSE = int(EnrpType.HANDLE_TABLE_RESPONSE)
_REJECT = int(AsapFlags.REJECT)
_HOME = int(AsapFlags.HOME)
_TAKEOVER_SUGGESTED = int(EnrpFlags.TAKEOVER_SUGGESTED)
_MORE_TO_SEND = int(EnrpFlags.MORE_TO_SEND)
_TABLE_REJECT = int(EnrpFlags.REJECT)

#: A fast encoder: the whole message, or struct.error for a field out of range
#: (the reference encoder then raises the ValueError that names it).
_Encoder = Callable[[Any, EncodedPoolElements], bytes]


# The busiest encoders pack the header themselves (a function call is a tenth of
# their time); the others go through encode_message.


def encode_message(message_type: int, flags: int, body: bytes) -> bytes:
    """Header plus ``body`` (fixed fields and padded TLVs)."""
    try:
        return _header(message_type, flags, HEADER_SIZE + len(body)) + body
    except struct.error:
        return reference_message.encode_message(message_type, flags, body)  # its ValueError


# --------------------------------------------------------------------------- ASAP encoding


def _registration(msg: Registration, pes: EncodedPoolElements) -> bytes:
    body = encode_pool_handle(msg.pool_handle) + pes.tlv(msg.pool_element)
    return _header(_REGISTRATION, 0, HEADER_SIZE + len(body)) + body


def _registration_response(msg: RegistrationResponse, pes: EncodedPoolElements) -> bytes:
    body = encode_pool_handle(msg.pool_handle) + encode_pe_identifier(msg.identifier)
    if msg.error is None:
        return encode_message(_REGISTRATION_RESPONSE, 0, body)
    body += encode_operation_error(msg.error)
    return encode_message(_REGISTRATION_RESPONSE, _REJECT, body)


def _handle_resolution(msg: HandleResolution, pes: EncodedPoolElements) -> bytes:
    body = encode_pool_handle(msg.pool_handle)
    if msg.items is not None:
        body += encode_hr_option(msg.items)
    return encode_message(_HANDLE_RESOLUTION, 0, body)


def _policy_and_pes(
    msg: HandleResolutionResponse | BusinessCard, pes: EncodedPoolElements
) -> list[bytes]:
    parts = [encode_pool_handle(msg.pool_handle)]
    if msg.policy is not None:
        parts.append(encode_policy(msg.policy))
    tlv = pes.tlv
    parts.extend([tlv(pe) for pe in msg.pool_elements])
    return parts


def _handle_resolution_response(msg: HandleResolutionResponse, pes: EncodedPoolElements) -> bytes:
    if msg.error is not None:  # rare, and the reference checks nothing else came with it
        return reference_asap.encode_asap(msg)
    body = b"".join(_policy_and_pes(msg, pes))
    return _header(_HANDLE_RESOLUTION_RESPONSE, 0, HEADER_SIZE + len(body)) + body


def _business_card(msg: BusinessCard, pes: EncodedPoolElements) -> bytes:
    return encode_message(_BUSINESS_CARD, 0, b"".join(_policy_and_pes(msg, pes)))


def _keep_alive(msg: EndpointKeepAlive, pes: EncodedPoolElements) -> bytes:
    body = _U32.pack(msg.server_id) + encode_pool_handle(msg.pool_handle)
    if msg.identifier is not None:
        body += encode_pe_identifier(msg.identifier)
    flags = _HOME if msg.home else 0
    return _header(_ENDPOINT_KEEP_ALIVE, flags, HEADER_SIZE + len(body)) + body


def _keep_alive_ack(msg: EndpointKeepAliveAck, pes: EncodedPoolElements) -> bytes:
    body = encode_pool_handle(msg.pool_handle) + encode_pe_identifier(msg.identifier)
    return encode_message(_ENDPOINT_KEEP_ALIVE_ACK, 0, body)


_ASAP_ENCODERS: dict[type, _Encoder] = {
    Registration: _registration,
    RegistrationResponse: _registration_response,
    HandleResolution: _handle_resolution,
    HandleResolutionResponse: _handle_resolution_response,
    BusinessCard: _business_card,
    EndpointKeepAlive: _keep_alive,
    EndpointKeepAliveAck: _keep_alive_ack,
}


def encode_asap(
    msg: AsapMessage, pool_elements: EncodedPoolElements = RECENT_POOL_ELEMENTS
) -> bytes:
    """The complete message (header included), its Length a multiple of 4.

    ``pool_elements`` holds the encoded PE TLVs to use and fill (the process-wide
    set unless the caller keeps its own).
    """
    fast = _ASAP_ENCODERS.get(type(msg))
    if fast is not None:
        try:
            return fast(msg, pool_elements)
        except struct.error:
            pass  # a field out of range: the reference names it
    return reference_asap.encode_asap(msg)


# --------------------------------------------------------------------------- ENRP encoding


def _handle_update(msg: HandleUpdate, pes: EncodedPoolElements) -> bytes:
    body = (
        _ENRP_IDS_AND_ACTION.pack(msg.sender_server_id, msg.receiver_server_id, msg.action, 0)
        + encode_pool_handle(msg.pool_handle)
        + pes.tlv(msg.pool_element)
    )
    flags = _TAKEOVER_SUGGESTED if msg.takeover_suggested else 0
    return _header(_HANDLE_UPDATE, flags, HEADER_SIZE + len(body)) + body


def _handle_table_response(msg: HandleTableResponse, pes: EncodedPoolElements) -> bytes:
    parts = [_ENRP_IDS.pack(msg.sender_server_id, msg.receiver_server_id)]
    tlv = pes.tlv
    for handle, group in msg.entries:
        if not group:  # refused by the reference
            return reference_enrp.encode_enrp(msg)
        parts.append(encode_pool_handle(handle))
        parts.extend([tlv(pe) for pe in group])
    flags = (_MORE_TO_SEND if msg.more_to_send else 0) | (_TABLE_REJECT if msg.reject else 0)
    return encode_message(_HANDLE_TABLE_RESPONSE, flags, b"".join(parts))


_ENRP_ENCODERS: dict[type, _Encoder] = {
    HandleUpdate: _handle_update,
    HandleTableResponse: _handle_table_response,
}


def encode_enrp(
    msg: EnrpMessage, pool_elements: EncodedPoolElements = RECENT_POOL_ELEMENTS
) -> bytes:
    """The complete message (header included), its Length a multiple of 4."""
    fast = _ENRP_ENCODERS.get(type(msg))
    if fast is not None:
        try:
            return fast(msg, pool_elements)
        except struct.error:
            pass  # a field out of range: the reference names it
    return reference_enrp.encode_enrp(msg)


# --------------------------------------------------------------------------- decoding

_FastDecoder = Callable[[bytes, int, DecodeLimits], Any]

_FAST_ASAP: dict[int, _FastDecoder] = {
    AsapType.REGISTRATION: fastdecode.registration,
    AsapType.DEREGISTRATION: fastdecode.deregistration,
    AsapType.REGISTRATION_RESPONSE: fastdecode.registration_response,
    AsapType.DEREGISTRATION_RESPONSE: fastdecode.deregistration_response,
    AsapType.HANDLE_RESOLUTION: fastdecode.handle_resolution,
    AsapType.HANDLE_RESOLUTION_RESPONSE: fastdecode.handle_resolution_response,
    AsapType.ENDPOINT_KEEP_ALIVE: fastdecode.endpoint_keep_alive,
    AsapType.ENDPOINT_KEEP_ALIVE_ACK: fastdecode.endpoint_keep_alive_ack,
    AsapType.ENDPOINT_UNREACHABLE: fastdecode.endpoint_unreachable,
}
_FAST_ENRP: dict[int, _FastDecoder] = {
    EnrpType.HANDLE_UPDATE: fastdecode.handle_update,
}


def decode_asap(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> AsapMessage:
    """One ASAP message (PPID 11). Raises only ProtocolError subclasses."""
    # A fast reader for the usual shape of this type, if the Length is exact.
    if type(data) is bytes and HEADER_SIZE <= len(data) <= limits.max_message_size:
        fast = _FAST_ASAP.get(data[0])
        if fast is not None and MESSAGE_HEADER.unpack_from(data)[2] == len(data):
            message: AsapMessage | None = fast(data, data[1], limits)
            if message is not None:
                return message
    return reference_asap.decode_asap(data, limits)


def decode_enrp(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> EnrpMessage:
    """One ENRP message (PPID 12). Raises only ProtocolError subclasses."""
    if type(data) is bytes and HEADER_SIZE <= len(data) <= limits.max_message_size:
        fast = _FAST_ENRP.get(data[0])
        if fast is not None and MESSAGE_HEADER.unpack_from(data)[2] == len(data):
            message: EnrpMessage | None = fast(data, data[1], limits)
            if message is not None:
                return message
    return reference_enrp.decode_enrp(data, limits)


def clear_caches() -> None:
    """Forget every cached encoding, decoded value and learnt layout."""
    clear_encode_caches()
    layouts.clear_caches()


__all__ = [
    "EncodedPoolElements",
    "clear_caches",
    "decode_asap",
    "decode_enrp",
    "encode_asap",
    "encode_enrp",
    "encode_message",
    "encode_policy",
    "encode_pool_element",
    "encode_pool_handle",
    "encode_server_information",
    "encode_transport",
]
