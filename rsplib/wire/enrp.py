"""ENRP messages (RFC 5353, section 2, plus rsplib's takeover flag) as frozen dataclasses.

Every ENRP message carries the Sender and Receiver Server IDs (receiver 0 when
unknown or multicast); pool elements in ENRP carry their ASAP transport. The
byte layout lives in :mod:`rsplib.wire.reference.enrp` (the reference codec)
and :mod:`rsplib.wire.codec` (the codec rsplib runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rsplib.wire.constants import EnrpType, UpdateAction
from rsplib.wire.fastvalues import slot_init
from rsplib.wire.params import OperationError, PoolElementParam, ServerInformation


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
    "enrp_message_name",
]
