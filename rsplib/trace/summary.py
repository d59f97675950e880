"""What a trace record says about one protocol message: type, pool handle, PE, key fields.

Decoders are looked up by PPID (ASAP and ENRP built in; applications such as the fractal
PE register theirs with :func:`register_message_decoder`). The decoded message's fields are
reduced to a few scalars by name (see ``docs/trace.md``): the pool handle becomes ``ph``, a
PE identifier ``pe``, server ids, policy, load, checksum, error cause and so on keep short
names, and long contents (cookies, handle tables, pixel data) become counts. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rsplib.trace.record import FieldValue, Scalar, escape_bytes
from rsplib.wire.constants import PPID, PolicyType, cause_name
from rsplib.wire.errors import ProtocolError
from rsplib.wire.params import PolicyParam, PoolElementParam, ServerInformation

MessageDecoder = Callable[[bytes], object]
#: How many PE ids / server ids a record lists before it stops (the count is always there).
MAX_IDS = 16


@dataclass(frozen=True, slots=True)
class MessageSummary:
    proto: str
    type: str
    flags: int
    pool_handle: str | None
    pe: int | None
    fields: dict[str, FieldValue]


_DECODERS: dict[int, tuple[str, MessageDecoder]] = {}


def register_message_decoder(ppid: int, proto: str, decode: MessageDecoder) -> None:
    """Trace messages with ``ppid`` as protocol ``proto``, decoded by ``decode``."""
    _DECODERS[ppid] = (proto, decode)


def _decode_asap(data: bytes) -> object:
    from rsplib.wire.asap import decode_asap

    return decode_asap(data)


def _decode_enrp(data: bytes) -> object:
    from rsplib.wire.enrp import decode_enrp

    return decode_enrp(data)


register_message_decoder(int(PPID.ASAP), "asap", _decode_asap)
register_message_decoder(int(PPID.ENRP), "enrp", _decode_enrp)


def type_name(decoded: object) -> str:
    """``TYPE`` enum member's name, else the class name in UPPER_SNAKE (FgpData -> FGP_DATA)."""
    message_type = getattr(decoded, "TYPE", None)
    if isinstance(message_type, Enum):
        return message_type.name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(decoded).__name__).upper()


def _policy_name(policy: PolicyParam) -> str:
    try:
        return PolicyType(policy.policy_type).name
    except ValueError:
        return f"0x{policy.policy_type:08x}"


def _pe_fields(pe: PoolElementParam, out: dict[str, FieldValue]) -> None:
    out["policy"] = _policy_name(pe.policy)
    for name in ("load", "weight", "priority"):
        value = getattr(pe.policy, name)
        if value:
            out[name] = value
    out["home"] = pe.home_registrar_id
    out["life"] = pe.registration_life
    transport = pe.user_transport
    kind = type(transport).__name__.removesuffix("Transport").lower()
    addresses = getattr(transport, "addresses", ())
    port = getattr(transport, "port", None)
    if addresses and port is not None:
        out["transport"] = f"{kind} {addresses[0]}:{port}"


#: Scalar fields kept under a shorter name; booleans only when true.
_RENAMED = {
    "server_id": "sid",
    "sender_server_id": "from",
    "receiver_server_id": "to",
    "target_server_id": "target",
    "checksum": "checksum",
    "items": "items",
    "home": "home_flag",
    "reply_required": "reply_required",
    "own_children_only": "own_children_only",
    "more_to_send": "more",
    "reject": "reject",
    "takeover_suggested": "takeover_suggested",
}


def _field(name: str, value: object, summary: dict[str, FieldValue]) -> None:
    if name in _RENAMED:
        if isinstance(value, bool):
            if value:
                summary[_RENAMED[name]] = True
        elif isinstance(value, int):
            summary[_RENAMED[name]] = value
    elif name == "policy" and isinstance(value, PolicyParam):
        summary["policy"] = _policy_name(value)
    elif name == "error" and value is not None:
        causes = getattr(value, "causes", ())
        summary["error"] = tuple(cause_name(getattr(c, "code", 0)) for c in causes)[:MAX_IDS]
    elif name == "action" and isinstance(value, Enum):
        summary["action"] = value.name
    elif name == "pool_elements" and isinstance(value, tuple):
        pes = [pe for pe in value if isinstance(pe, PoolElementParam)][:MAX_IDS]
        summary["pes"] = tuple(pe.identifier for pe in pes)
        summary["pe_count"] = len(value)
        # Why the policy put them in this order: their policy values, in the same order.
        for field_name, key in (
            ("load", "loads"),
            ("weight", "weights"),
            ("priority", "priorities"),
        ):
            values = tuple(int(getattr(pe.policy, field_name)) for pe in pes)
            if any(values):
                summary[key] = values
    elif name == "entries" and isinstance(value, tuple):
        summary["pools"] = len(value)
        summary["pe_count"] = sum(len(pes) for _handle, pes in value)
    elif name == "servers" and isinstance(value, tuple):
        ids = [s.server_id for s in value if isinstance(s, ServerInformation)]
        summary["servers"] = tuple(ids[:MAX_IDS])
    elif name == "cookie" and isinstance(value, bytes):
        summary["cookie_len"] = len(value)
    elif name == "points" and isinstance(value, tuple):
        summary["points"] = len(value)
    elif isinstance(value, int | float) and not isinstance(value, bool) and name != "unrecognized":
        # Application messages (FGP parameter and data): their numbers as they are.
        summary[name] = value


def summarize(ppid: int, payload: bytes) -> MessageSummary:
    """The summary of one message; undecodable payloads keep their type code and error."""
    registered = _DECODERS.get(ppid)
    flags = payload[1] if len(payload) >= 2 else 0
    if registered is None:
        return MessageSummary("data", f"PPID_{ppid}", flags, None, None, {})
    proto, decode = registered
    try:
        decoded = decode(payload)
    except (ProtocolError, ValueError) as exc:
        code = payload[0] if payload else 0
        return MessageSummary(
            proto, f"UNDECODABLE_{code}", flags, None, None, {"error": str(exc)[:120]}
        )
    pool_handle: str | None = None
    pe: int | None = None
    fields: dict[str, FieldValue] = {}
    if dataclasses.is_dataclass(decoded) and not isinstance(decoded, type):
        for item in dataclasses.fields(decoded):
            value = getattr(decoded, item.name)
            if item.name == "pool_handle" and isinstance(value, bytes):
                pool_handle = escape_bytes(value)
            elif item.name == "identifier" and isinstance(value, int):
                pe = value
            elif item.name == "pool_element" and isinstance(value, PoolElementParam):
                pe = value.identifier
                _pe_fields(value, fields)
            else:
                _field(item.name, value, fields)
    return MessageSummary(proto, type_name(decoded), flags, pool_handle, pe, fields)


def scalar_fields(values: dict[str, object]) -> dict[str, FieldValue]:
    """Event fields reduced to what a record may hold (scalars, lists of scalars)."""
    out: dict[str, FieldValue] = {}
    for key, value in values.items():
        if isinstance(value, list | tuple):
            out[key] = tuple(_plain(v) for v in value)
        else:
            out[key] = _plain(value)
    return out


def _plain(value: object) -> Scalar:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.name
    return str(value)
