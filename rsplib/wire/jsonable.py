"""Decoded wire values -> plain JSON values (for ``rsp-decode`` and logs).

Rules: dataclasses become objects of their fields (class-level constants are
not fields, so they do not appear); bytes become ``{"hex": ...}`` plus
``"text"`` when they are printable UTF-8; enum members become their names;
IP addresses become strings; tuples and lists become arrays. Number fields
whose meaning has a name table (policy types, transport use, error causes)
are printed by name, falling back to the number for values nobody named.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Mapping
from enum import Enum, IntFlag
from typing import Any

from rsplib.wire.constants import PolicyType, TransportUse, cause_name
from rsplib.wire.params import (
    DccpTransport,
    ErrorCauseItem,
    SctpTransport,
    TcpTransport,
    UdpLiteTransport,
    UdpTransport,
)

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_TRANSPORT_KINDS: dict[type, str] = {
    SctpTransport: "sctp",
    TcpTransport: "tcp",
    UdpTransport: "udp",
    UdpLiteTransport: "udp-lite",
    DccpTransport: "dccp",
}


def _enum_name(enum: type[Enum]) -> Callable[[object], JsonValue]:
    def convert(value: object) -> JsonValue:
        try:
            return str(enum(value).name)
        except ValueError:
            return to_jsonable(value)

    return convert


#: Fields printed by name wherever they occur in a dataclass.
_NAMED_FIELDS: dict[str, Callable[[object], JsonValue]] = {
    "policy_type": _enum_name(PolicyType),
    "transport_use": _enum_name(TransportUse),
}


def bytes_json(data: bytes) -> dict[str, JsonValue]:
    """``{"hex": ...}``, with ``"text"`` added when the bytes are printable UTF-8."""
    out: dict[str, JsonValue] = {"hex": data.hex()}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return out
    if text and text.isprintable():
        out["text"] = text
    return out


def to_jsonable(value: object) -> JsonValue:
    """A JSON-serialisable rendering of ``value`` (see the module rules)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, IntFlag):
        return value.name if value.name is not None else int(value)
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_json(bytes(value))
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_json(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    return str(value)


def _dataclass_json(value: Any) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    kind = _TRANSPORT_KINDS.get(type(value))
    if kind is not None:
        out["kind"] = kind
    for item in dataclasses.fields(value):
        raw = getattr(value, item.name)
        convert = _NAMED_FIELDS.get(item.name)
        out[item.name] = convert(raw) if convert is not None else to_jsonable(raw)
    if isinstance(value, ErrorCauseItem):
        out["name"] = cause_name(value.code)
    return out
