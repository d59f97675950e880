"""ENRP messages (RFC 5353 plus rsplib's takeover extension): dataclasses and codec.

Every ENRP message starts, right after the common header, with the Sender and
Receiver Server IDs (32 bit each; receiver 0 when unknown or multicast). Layouts
follow protocol-facts section 3. Pool elements in ENRP carry their ASAP transport.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from rsplib.wire.constants import EnrpFlags, EnrpType, ParamType, UpdateAction
from rsplib.wire.errors import InvalidValueError, MissingParameterError, UnknownMessageError
from rsplib.wire.fastvalues import frozen_builder, slot_init
from rsplib.wire.message import (
    HEADER_SIZE,
    MESSAGE_HEADER,
    MessageFrame,
    encode_message,
    open_message,
)
from rsplib.wire.params import OperationError, PoolElementParam, ServerInformation
from rsplib.wire.tlv import (
    DEFAULT_LIMITS,
    Buffer,
    DecodeLimits,
    encode_operation_error,
    encode_pe_checksum,
    encode_pool_element,
    encode_pool_handle,
    encode_server_information,
    fast_pool_elements,
    fast_pool_handle,
    read_operation_error,
    read_pe_checksum,
    read_pool_element,
    read_pool_handle,
    read_server_information,
)

_IDS = struct.Struct("!II")
_IDS_TARGET = struct.Struct("!III")
_IDS_ACTION = struct.Struct("!IIHH")
_IDS_SIZE = _IDS.size


@slot_init
@dataclass(frozen=True, slots=True)
class Presence:
    """``checksum`` is the 16-bit ownership checksum; ``reply_required`` is the R flag."""

    TYPE: ClassVar[EnrpType] = EnrpType.PRESENCE
    sender_server_id: int
    receiver_server_id: int
    checksum: int
    server_info: ServerInformation
    reply_required: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class HandleTableRequest:
    """``own_children_only`` is the W flag."""

    TYPE: ClassVar[EnrpType] = EnrpType.HANDLE_TABLE_REQUEST
    sender_server_id: int
    receiver_server_id: int
    own_children_only: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class HandleTableResponse:
    """Groups of (pool handle, one or more PEs); M flag = ``more_to_send``, R = ``reject``."""

    TYPE: ClassVar[EnrpType] = EnrpType.HANDLE_TABLE_RESPONSE
    sender_server_id: int
    receiver_server_id: int
    entries: tuple[tuple[bytes, tuple[PoolElementParam, ...]], ...] = ()
    more_to_send: bool = False
    reject: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class HandleUpdate:
    """``takeover_suggested`` is the T flag."""

    TYPE: ClassVar[EnrpType] = EnrpType.HANDLE_UPDATE
    sender_server_id: int
    receiver_server_id: int
    action: UpdateAction
    pool_handle: bytes
    pool_element: PoolElementParam
    takeover_suggested: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class ListRequest:
    TYPE: ClassVar[EnrpType] = EnrpType.LIST_REQUEST
    sender_server_id: int
    receiver_server_id: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class ListResponse:
    TYPE: ClassVar[EnrpType] = EnrpType.LIST_RESPONSE
    sender_server_id: int
    receiver_server_id: int
    servers: tuple[ServerInformation, ...] = ()
    reject: bool = False
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class InitTakeover:
    TYPE: ClassVar[EnrpType] = EnrpType.INIT_TAKEOVER
    sender_server_id: int
    receiver_server_id: int
    target_server_id: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class InitTakeoverAck:
    TYPE: ClassVar[EnrpType] = EnrpType.INIT_TAKEOVER_ACK
    sender_server_id: int
    receiver_server_id: int
    target_server_id: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class TakeoverServer:
    TYPE: ClassVar[EnrpType] = EnrpType.TAKEOVER_SERVER
    sender_server_id: int
    receiver_server_id: int
    target_server_id: int
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


@slot_init
@dataclass(frozen=True, slots=True)
class EnrpError:
    TYPE: ClassVar[EnrpType] = EnrpType.ERROR
    sender_server_id: int
    receiver_server_id: int
    error: OperationError
    unrecognized: tuple[bytes, ...] = field(default=(), compare=False)


EnrpMessage = (
    Presence
    | HandleTableRequest
    | HandleTableResponse
    | HandleUpdate
    | ListRequest
    | ListResponse
    | InitTakeover
    | InitTakeoverAck
    | TakeoverServer
    | EnrpError
)


def enrp_message_name(msg: EnrpMessage) -> str:
    """The message's type name, e.g. ``"HANDLE_UPDATE"``."""
    return msg.TYPE.name


# --------------------------------------------------------------------------- encoding


def encode_enrp(msg: EnrpMessage) -> bytes:
    """The complete message (header included), Length a multiple of 4."""
    try:
        flags, body = _encode_body(msg)
    except struct.error as exc:  # a fixed field out of range
        raise ValueError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    return encode_message(msg.TYPE, flags, body)


def _encode_body(msg: EnrpMessage) -> tuple[int, bytes]:
    flags = 0
    ids = (msg.sender_server_id, msg.receiver_server_id)
    parts: list[bytes]
    if isinstance(msg, Presence):
        parts = [
            _IDS.pack(*ids),
            encode_pe_checksum(msg.checksum),
            encode_server_information(msg.server_info),
        ]
        flags = EnrpFlags.REPLY_REQUIRED if msg.reply_required else 0
    elif isinstance(msg, HandleTableRequest):
        parts = [_IDS.pack(*ids)]
        flags = EnrpFlags.OWN_CHILDREN_ONLY if msg.own_children_only else 0
    elif isinstance(msg, HandleTableResponse):
        parts = [_IDS.pack(*ids)]
        for handle, pes in msg.entries:
            if not pes:
                raise ValueError("a Handle Table Response group needs at least one PE")
            parts.append(encode_pool_handle(handle))
            parts.extend(encode_pool_element(pe) for pe in pes)
        flags = (EnrpFlags.MORE_TO_SEND if msg.more_to_send else 0) | (
            EnrpFlags.REJECT if msg.reject else 0
        )
    elif isinstance(msg, HandleUpdate):
        parts = [
            _IDS_ACTION.pack(*ids, msg.action, 0),
            encode_pool_handle(msg.pool_handle),
            encode_pool_element(msg.pool_element),
        ]
        flags = EnrpFlags.TAKEOVER_SUGGESTED if msg.takeover_suggested else 0
    elif isinstance(msg, ListRequest):
        parts = [_IDS.pack(*ids)]
    elif isinstance(msg, ListResponse):
        parts = [_IDS.pack(*ids)]
        parts.extend(encode_server_information(s) for s in msg.servers)
        flags = EnrpFlags.REJECT if msg.reject else 0
    elif isinstance(msg, InitTakeover | InitTakeoverAck | TakeoverServer):
        parts = [_IDS_TARGET.pack(*ids, msg.target_server_id)]
    elif isinstance(msg, EnrpError):
        parts = [_IDS.pack(*ids), encode_operation_error(msg.error)]
    else:
        raise TypeError(f"not an ENRP message: {msg!r}")
    return flags, b"".join(parts)


# --------------------------------------------------------------------------- decoding


def _d_presence(f: MessageFrame, s: int, r_: int) -> Presence:
    r = f.reader(HEADER_SIZE + _IDS_SIZE)
    vs, ve = r.expect(ParamType.PE_CHECKSUM, "PE checksum")
    checksum = read_pe_checksum(r, vs, ve)
    vs, ve = r.expect(ParamType.SERVER_INFORMATION, "server information")
    info = read_server_information(r, vs, ve)
    r.finish("Presence")
    reply = bool(f.flags & EnrpFlags.REPLY_REQUIRED)
    return Presence(s, r_, checksum, info, reply, f.unrecognized)


def _d_ht_request(f: MessageFrame, s: int, r_: int) -> HandleTableRequest:
    f.reader(HEADER_SIZE + _IDS_SIZE).finish("Handle Table Request")
    own = bool(f.flags & EnrpFlags.OWN_CHILDREN_ONLY)
    return HandleTableRequest(s, r_, own, f.unrecognized)


def _d_ht_response(f: MessageFrame, s: int, r_: int) -> HandleTableResponse:
    r = f.reader(HEADER_SIZE + _IDS_SIZE)
    entries = []
    while (span := r.take_if(ParamType.POOL_HANDLE)) is not None:
        handle = read_pool_handle(r, *span)
        pes = [read_pool_element(r, vs, ve) for vs, ve in r.take_run(ParamType.POOL_ELEMENT)]
        if not pes:
            raise MissingParameterError("pool handle without pool elements in HT Response")
        entries.append((handle, tuple(pes)))
    r.finish("Handle Table Response")
    more = bool(f.flags & EnrpFlags.MORE_TO_SEND)
    reject = bool(f.flags & EnrpFlags.REJECT)
    return HandleTableResponse(s, r_, tuple(entries), more, reject, f.unrecognized)


def _d_handle_update(f: MessageFrame, s: int, r_: int) -> HandleUpdate:
    f.require(_IDS_SIZE + 4, "Handle Update")
    (_, _, action_code, _) = _IDS_ACTION.unpack_from(f.data, HEADER_SIZE)
    if action_code not in _ACTIONS:
        raise InvalidValueError(f"unknown update action 0x{action_code:04X}")
    r = f.reader(HEADER_SIZE + _IDS_ACTION.size)
    vs, ve = r.expect(ParamType.POOL_HANDLE, "pool handle")
    handle = read_pool_handle(r, vs, ve)
    vs, ve = r.expect(ParamType.POOL_ELEMENT, "pool element")
    pe = read_pool_element(r, vs, ve)
    r.finish("Handle Update")
    takeover = bool(f.flags & EnrpFlags.TAKEOVER_SUGGESTED)
    return HandleUpdate(s, r_, _ACTIONS[action_code], handle, pe, takeover, f.unrecognized)


_ACTIONS = {a.value: a for a in UpdateAction}


def _d_list_request(f: MessageFrame, s: int, r_: int) -> ListRequest:
    f.reader(HEADER_SIZE + _IDS_SIZE).finish("List Request")
    return ListRequest(s, r_, f.unrecognized)


def _d_list_response(f: MessageFrame, s: int, r_: int) -> ListResponse:
    r = f.reader(HEADER_SIZE + _IDS_SIZE)
    servers = []
    while (span := r.take_if(ParamType.SERVER_INFORMATION)) is not None:
        servers.append(read_server_information(r, *span))
    r.finish("List Response")
    reject = bool(f.flags & EnrpFlags.REJECT)
    return ListResponse(s, r_, tuple(servers), reject, f.unrecognized)


def _target(f: MessageFrame, what: str) -> int:
    f.require(_IDS_SIZE + 4, what)
    f.reader(HEADER_SIZE + _IDS_TARGET.size).finish(what)
    target: int = _IDS_TARGET.unpack_from(f.data, HEADER_SIZE)[2]
    return target


def _d_init_takeover(f: MessageFrame, s: int, r_: int) -> InitTakeover:
    return InitTakeover(s, r_, _target(f, "Init Takeover"), f.unrecognized)


def _d_init_takeover_ack(f: MessageFrame, s: int, r_: int) -> InitTakeoverAck:
    return InitTakeoverAck(s, r_, _target(f, "Init Takeover Ack"), f.unrecognized)


def _d_takeover_server(f: MessageFrame, s: int, r_: int) -> TakeoverServer:
    return TakeoverServer(s, r_, _target(f, "Takeover Server"), f.unrecognized)


def _d_error(f: MessageFrame, s: int, r_: int) -> EnrpError:
    r = f.reader(HEADER_SIZE + _IDS_SIZE)
    vs, ve = r.expect(ParamType.OPERATION_ERROR, "operation error")
    error = read_operation_error(r, vs, ve)
    r.finish("ENRP Error")
    return EnrpError(s, r_, error, f.unrecognized)


_DECODERS: dict[int, Callable[[MessageFrame, int, int], EnrpMessage]] = {
    EnrpType.PRESENCE: _d_presence,
    EnrpType.HANDLE_TABLE_REQUEST: _d_ht_request,
    EnrpType.HANDLE_TABLE_RESPONSE: _d_ht_response,
    EnrpType.HANDLE_UPDATE: _d_handle_update,
    EnrpType.LIST_REQUEST: _d_list_request,
    EnrpType.LIST_RESPONSE: _d_list_response,
    EnrpType.INIT_TAKEOVER: _d_init_takeover,
    EnrpType.INIT_TAKEOVER_ACK: _d_init_takeover_ack,
    EnrpType.TAKEOVER_SERVER: _d_takeover_server,
    EnrpType.ERROR: _d_error,
}


# Fast path for the Handle Update, the message registrars exchange most. It reads
# only the usual shape (exact Length, parameters in order, nothing unknown, all
# limits kept) and returns None for anything else, which the general decoder then
# reads and, if need be, rejects with the precise error. For bytes it accepts, its
# result equals the general decoder's.


_build_handle_update = frozen_builder(HandleUpdate)  # every field, positionally


def _fast_handle_update(data: bytes, flags: int, limits: DecodeLimits) -> HandleUpdate | None:
    end = len(data)
    if end < HEADER_SIZE + _IDS_ACTION.size:
        return None
    sender, receiver, action_code, _ = _IDS_ACTION.unpack_from(data, HEADER_SIZE)
    action = _ACTIONS.get(action_code)
    found = fast_pool_handle(data, HEADER_SIZE + _IDS_ACTION.size, end, limits.max_pool_handle)
    if action is None or found is None:
        return None
    handle, pos = found
    pes = fast_pool_elements(data, pos, end, limits, 1)
    if pes is None or len(pes) != 1:
        return None
    takeover = bool(flags & EnrpFlags.TAKEOVER_SUGGESTED)
    return _build_handle_update(sender, receiver, action, handle, pes[0], takeover, ())


def decode_enrp(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> EnrpMessage:
    """One ENRP message (PPID 12). Raises only ProtocolError subclasses."""
    if (
        type(data) is bytes
        and HEADER_SIZE <= len(data) <= limits.max_message_size
        and data[0] == EnrpType.HANDLE_UPDATE
    ):
        _, flags, length = MESSAGE_HEADER.unpack_from(data)
        if length == len(data):
            message = _fast_handle_update(data, flags, limits)
            if message is not None:
                return message
    return _decode_general(data, limits)


def _decode_general(data: Buffer, limits: DecodeLimits) -> EnrpMessage:
    """The general decoder: every message, every shape, precise errors."""
    frame = open_message(data, limits)
    decoder = _DECODERS.get(frame.message_type)
    if decoder is None:
        raise UnknownMessageError(
            f"unknown ENRP message type 0x{frame.message_type:02X}", offending=frame.data[:4]
        )
    frame.require(_IDS_SIZE, "ENRP message")
    sender, receiver = _IDS.unpack_from(frame.data, HEADER_SIZE)
    return decoder(frame, sender, receiver)


__all__ = [
    "EnrpError",
    "EnrpMessage",
    "HandleTableRequest",
    "HandleTableResponse",
    "HandleUpdate",
    "InitTakeover",
    "InitTakeoverAck",
    "ListRequest",
    "ListResponse",
    "Presence",
    "TakeoverServer",
    "decode_enrp",
    "encode_enrp",
    "enrp_message_name",
]
