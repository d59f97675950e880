"""The ENRP messages of RFC 5353 (section 2) with rsplib's takeover flag: one encoder and
one decoder per message.

Every ENRP message starts, right after the common header, with the Sender and
Receiver Server Identifiers (32 bits each; the receiver is 0 when unknown or
multicast). Pool elements in ENRP carry their ASAP transport.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from rsplib.wire.constants import EnrpFlags, EnrpType, ParamType, UpdateAction
from rsplib.wire.enrp import (
    EnrpError,
    EnrpMessage,
    HandleTableRequest,
    HandleTableResponse,
    HandleUpdate,
    InitTakeover,
    InitTakeoverAck,
    ListRequest,
    ListResponse,
    Presence,
    TakeoverServer,
)
from rsplib.wire.errors import InvalidValueError, MissingParameterError, UnknownMessageError
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
from rsplib.wire.reference.message import HEADER_SIZE, MessageFrame, encode_message, open_message
from rsplib.wire.reference.tlv import (
    Buffer,
    encode_operation_error,
    encode_pe_checksum,
    encode_pool_element,
    encode_pool_handle,
    encode_server_information,
    read_operation_error,
    read_pe_checksum,
    read_pool_element,
    read_pool_handle,
    read_server_information,
)

#: What an encoder hands back: the flags byte and the body after the header.
Body = tuple[int, list[bytes]]

SERVER_IDS = struct.Struct("!II")  # sender, receiver
_IDS_AND_TARGET = struct.Struct("!III")  # sender, receiver, target
_IDS_AND_ACTION = struct.Struct("!IIHH")  # sender, receiver, update action, reserved
_ACTIONS = {action.value: action for action in UpdateAction}


def _fixed(layout: struct.Struct, *values: int) -> bytes:
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise ValueError(f"ENRP fixed field out of range: {exc}") from exc


def _ids(msg: EnrpMessage) -> bytes:
    return _fixed(SERVER_IDS, msg.sender_server_id, msg.receiver_server_id)


def _flag(value: bool, flag: int) -> int:
    return flag if value else 0


# ------------------------------------------------------------------------------------- 2.1 Presence
# Server IDs, PE Checksum (the sender's ownership checksum), Server Information;
# the R flag asks for a Presence in reply.


def _encode_presence(msg: Presence) -> Body:
    parts = [
        _ids(msg),
        encode_pe_checksum(msg.checksum),
        encode_server_information(msg.server_info),
    ]
    return _flag(msg.reply_required, EnrpFlags.REPLY_REQUIRED), parts


def _decode_presence(f: MessageFrame, sender: int, receiver: int) -> Presence:
    r = f.reader(HEADER_SIZE + SERVER_IDS.size)
    checksum = read_pe_checksum(r, r.expect(ParamType.PE_CHECKSUM, "PE checksum"))
    info = read_server_information(r, r.expect(ParamType.SERVER_INFORMATION, "server information"))
    r.finish("Presence")
    reply = bool(f.flags & EnrpFlags.REPLY_REQUIRED)
    return Presence(sender, receiver, checksum, info, reply, f.unrecognized)


# ------------------------------------------------------------------------- 2.2 Handle Table Request
# Server IDs only; the W flag asks for the PEs the receiver is home of.


def _encode_ht_request(msg: HandleTableRequest) -> Body:
    return _flag(msg.own_children_only, EnrpFlags.OWN_CHILDREN_ONLY), [_ids(msg)]


def _decode_ht_request(f: MessageFrame, sender: int, receiver: int) -> HandleTableRequest:
    f.reader(HEADER_SIZE + SERVER_IDS.size).finish("Handle Table Request")
    own = bool(f.flags & EnrpFlags.OWN_CHILDREN_ONLY)
    return HandleTableRequest(sender, receiver, own, f.unrecognized)


# ------------------------------------------------------------------------ 2.3 Handle Table Response
# Server IDs, then groups of one Pool Handle followed by one or more Pool
# Elements; the M flag says more responses follow, R that the request is refused.


def _encode_ht_response(msg: HandleTableResponse) -> Body:
    parts = [_ids(msg)]
    for handle, pes in msg.entries:
        if not pes:
            raise ValueError("a Handle Table Response group needs at least one PE")
        parts.append(encode_pool_handle(handle))
        parts.extend(encode_pool_element(pe) for pe in pes)
    flags = _flag(msg.more_to_send, EnrpFlags.MORE_TO_SEND) | _flag(msg.reject, EnrpFlags.REJECT)
    return flags, parts


def _decode_ht_response(f: MessageFrame, sender: int, receiver: int) -> HandleTableResponse:
    r = f.reader(HEADER_SIZE + SERVER_IDS.size)
    entries = []
    while (handle_tlv := r.take_if(ParamType.POOL_HANDLE)) is not None:
        handle = read_pool_handle(r, handle_tlv)
        pes = [read_pool_element(r, tlv) for tlv in r.take_run(ParamType.POOL_ELEMENT)]
        if not pes:
            raise MissingParameterError("pool handle without pool elements in HT Response")
        entries.append((handle, tuple(pes)))
    r.finish("Handle Table Response")
    more = bool(f.flags & EnrpFlags.MORE_TO_SEND)
    reject = bool(f.flags & EnrpFlags.REJECT)
    return HandleTableResponse(sender, receiver, tuple(entries), more, reject, f.unrecognized)


# -------------------------------------------------------------------------------- 2.4 Handle Update
# Server IDs, Update Action and a reserved field (fixed), Pool Handle, Pool
# Element; rsplib's T flag suggests the receiver take the PE over.


def _encode_handle_update(msg: HandleUpdate) -> Body:
    fixed = _fixed(_IDS_AND_ACTION, msg.sender_server_id, msg.receiver_server_id, msg.action, 0)
    parts = [fixed, encode_pool_handle(msg.pool_handle), encode_pool_element(msg.pool_element)]
    return _flag(msg.takeover_suggested, EnrpFlags.TAKEOVER_SUGGESTED), parts


def _decode_handle_update(f: MessageFrame, sender: int, receiver: int) -> HandleUpdate:
    (_, _, action_code, _) = f.fixed(_IDS_AND_ACTION, "Handle Update")
    action = _ACTIONS.get(action_code)
    if action is None:
        raise InvalidValueError(f"unknown update action 0x{action_code:04X}")
    r = f.reader(HEADER_SIZE + _IDS_AND_ACTION.size)
    handle = read_pool_handle(r, r.expect(ParamType.POOL_HANDLE, "pool handle"))
    pe = read_pool_element(r, r.expect(ParamType.POOL_ELEMENT, "pool element"))
    r.finish("Handle Update")
    takeover = bool(f.flags & EnrpFlags.TAKEOVER_SUGGESTED)
    return HandleUpdate(sender, receiver, action, handle, pe, takeover, f.unrecognized)


# --------------------------------------------------------------------------------- 2.5 List Request
# Server IDs only.


def _encode_list_request(msg: ListRequest) -> Body:
    return 0, [_ids(msg)]


def _decode_list_request(f: MessageFrame, sender: int, receiver: int) -> ListRequest:
    f.reader(HEADER_SIZE + SERVER_IDS.size).finish("List Request")
    return ListRequest(sender, receiver, f.unrecognized)


# -------------------------------------------------------------------------------- 2.6 List Response
# Server IDs, then one Server Information per registrar the sender knows; R = refused.


def _encode_list_response(msg: ListResponse) -> Body:
    parts = [_ids(msg), *(encode_server_information(s) for s in msg.servers)]
    return _flag(msg.reject, EnrpFlags.REJECT), parts


def _decode_list_response(f: MessageFrame, sender: int, receiver: int) -> ListResponse:
    r = f.reader(HEADER_SIZE + SERVER_IDS.size)
    servers = []
    while (tlv := r.take_if(ParamType.SERVER_INFORMATION)) is not None:
        servers.append(read_server_information(r, tlv))
    r.finish("List Response")
    reject = bool(f.flags & EnrpFlags.REJECT)
    return ListResponse(sender, receiver, tuple(servers), reject, f.unrecognized)


# --------------------------------------------------------------------------------- 2.7-2.9 takeover
# Init Takeover, Init Takeover Ack and Takeover Server: Server IDs and the
# Target Server Identifier (the registrar being taken over), all fixed fields.


def _encode_takeover(msg: InitTakeover | InitTakeoverAck | TakeoverServer) -> Body:
    ids = (msg.sender_server_id, msg.receiver_server_id, msg.target_server_id)
    return 0, [_fixed(_IDS_AND_TARGET, *ids)]


def _target(f: MessageFrame, what: str) -> int:
    (_, _, target) = f.fixed(_IDS_AND_TARGET, what)
    f.reader(HEADER_SIZE + _IDS_AND_TARGET.size).finish(what)
    return target


def _decode_init_takeover(f: MessageFrame, sender: int, receiver: int) -> InitTakeover:
    return InitTakeover(sender, receiver, _target(f, "Init Takeover"), f.unrecognized)


def _decode_init_takeover_ack(f: MessageFrame, sender: int, receiver: int) -> InitTakeoverAck:
    return InitTakeoverAck(sender, receiver, _target(f, "Init Takeover Ack"), f.unrecognized)


def _decode_takeover_server(f: MessageFrame, sender: int, receiver: int) -> TakeoverServer:
    return TakeoverServer(sender, receiver, _target(f, "Takeover Server"), f.unrecognized)


# --------------------------------------------------------------------------------------- 2.10 Error
# Server IDs, one Operation Error.


def _encode_error(msg: EnrpError) -> Body:
    return 0, [_ids(msg), encode_operation_error(msg.error)]


def _decode_error(f: MessageFrame, sender: int, receiver: int) -> EnrpError:
    r = f.reader(HEADER_SIZE + SERVER_IDS.size)
    error = read_operation_error(r, r.expect(ParamType.OPERATION_ERROR, "operation error"))
    r.finish("ENRP Error")
    return EnrpError(sender, receiver, error, f.unrecognized)


# ------------------------------------------------------------------------------------ the interface

_ENCODERS: dict[type, Callable[[Any], Body]] = {
    Presence: _encode_presence,
    HandleTableRequest: _encode_ht_request,
    HandleTableResponse: _encode_ht_response,
    HandleUpdate: _encode_handle_update,
    ListRequest: _encode_list_request,
    ListResponse: _encode_list_response,
    InitTakeover: _encode_takeover,
    InitTakeoverAck: _encode_takeover,
    TakeoverServer: _encode_takeover,
    EnrpError: _encode_error,
}

_DECODERS: dict[int, Callable[[MessageFrame, int, int], EnrpMessage]] = {
    EnrpType.PRESENCE: _decode_presence,
    EnrpType.HANDLE_TABLE_REQUEST: _decode_ht_request,
    EnrpType.HANDLE_TABLE_RESPONSE: _decode_ht_response,
    EnrpType.HANDLE_UPDATE: _decode_handle_update,
    EnrpType.LIST_REQUEST: _decode_list_request,
    EnrpType.LIST_RESPONSE: _decode_list_response,
    EnrpType.INIT_TAKEOVER: _decode_init_takeover,
    EnrpType.INIT_TAKEOVER_ACK: _decode_init_takeover_ack,
    EnrpType.TAKEOVER_SERVER: _decode_takeover_server,
    EnrpType.ERROR: _decode_error,
}


def encode_enrp(msg: EnrpMessage) -> bytes:
    """The complete message (header included), its Length a multiple of 4."""
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        raise TypeError(f"not an ENRP message: {msg!r}")
    flags, parts = encoder(msg)
    return encode_message(msg.TYPE, flags, b"".join(parts))


def decode_enrp(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> EnrpMessage:
    """One ENRP message (PPID 12). Raises only ProtocolError subclasses."""
    frame = open_message(data, limits)
    decoder = _DECODERS.get(frame.message_type)
    if decoder is None:
        raise UnknownMessageError(
            f"unknown ENRP message type 0x{frame.message_type:02X}", offending=frame.data[:4]
        )
    sender, receiver = frame.fixed(SERVER_IDS, "ENRP message")
    return decoder(frame, sender, receiver)


__all__ = ["SERVER_IDS", "decode_enrp", "encode_enrp"]
