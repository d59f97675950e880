"""Trace records: the model, their JSON encoding and a validating decoder.

A trace record is one UTF-8 JSON object on one line. Datagrams of the trace channel carry
one or more lines (``docs/trace.md`` is the reference). Two kinds exist:

- ``"msg"``: a protocol message (ASAP, ENRP, FGP, ...) that a component sent or received;
- ``"ev"``: a component event, such as a pool user's failover.

Records arrive from the network, so the decoder trusts nothing: sizes are bounded, every
common field is type-checked, text is cut to a bounded length and stripped of control and
bidirectional-override characters (a peer must not be able to rewrite a terminal or a
label), and anything off gives :class:`TraceFormatError` with a short reason. Pure: no
sockets, no clock.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Format version in the ``"v"`` field.
VERSION: Final = 1
#: Largest datagram a sender writes, and the largest line a reader accepts.
MAX_DATAGRAM: Final = 1400
MAX_LINE: Final = MAX_DATAGRAM
#: Records one datagram may hold (a datagram of 1,400 bytes cannot hold more anyway).
MAX_RECORDS_PER_DATAGRAM: Final = 64

KIND_MESSAGE: Final = "msg"
KIND_EVENT: Final = "ev"
TX: Final = "tx"
RX: Final = "rx"
PROTOCOLS: Final = ("asap", "enrp", "fgp", "csp", "data")

#: Bounds of the fields a record may carry besides the common ones.
MAX_FIELDS: Final = 32
MAX_TEXT: Final = 256
MAX_LIST: Final = 256
MAX_RAW_BYTES: Final = 512
MAX_SEQ: Final = 2**63 - 1
_MAX_INT: Final = 2**63

#: Keys of the common fields (and of the fixed "msg" fields); everything else is a field.
COMMON_KEYS: Final = frozenset({"v", "k", "t", "c", "seq", "drop"})
MESSAGE_KEYS: Final = frozenset(
    {"dir", "peer", "local", "proto", "type", "flags", "ph", "pe", "raw", "len"}
)
EVENT_KEYS: Final = frozenset({"type"})

_KEY = re.compile(r"[a-z_][a-z0-9_]{0,31}\Z")
_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_COMPONENT = re.compile(r"[0-9a-f]{16}\Z")
_ADDRESS = re.compile(r"[0-9A-Za-z.:%\[\]_-]{1,80}\Z")
_HEX = re.compile(r"(?:[0-9a-f]{2})*\Z")
# C0/C1 controls, DEL, and the bidirectional embedding/override/isolate marks.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

Scalar = None | bool | int | float | str
FieldValue = Scalar | tuple[Scalar, ...]


class TraceFormatError(ValueError):
    """A trace line or datagram that does not follow the format; the text says why."""


def safe_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters with unsafe characters shown as ``\\uXXXX``."""
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_bytes(data: bytes, limit: int = 255) -> str:
    """Bytes (a pool handle) as text: printable ASCII as is, ``\\`` and the rest as ``\\xNN``."""
    out = []
    for byte in data[:limit]:
        if 0x20 <= byte < 0x7F and byte != 0x5C:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    if len(data) > limit:
        out.append("\u2026")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A protocol message sent (``direction == "tx"``) or received (``"rx"``)."""

    time: float
    component: int
    seq: int
    direction: str
    peer: str
    proto: str
    type: str
    flags: int = 0
    length: int = 0
    local: str | None = None
    pool_handle: str | None = None
    pe: int | None = None
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    raw: bytes | None = None
    drop: int = 0

    kind = KIND_MESSAGE


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A component event (``type`` names it, ``fields`` holds its data)."""

    time: float
    component: int
    seq: int
    type: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    drop: int = 0

    kind = KIND_EVENT


TraceRecord = MessageRecord | EventRecord


# ---------------------------------------------------------------- encoding


def _common(record: TraceRecord) -> dict[str, object]:
    out: dict[str, object] = {
        "v": VERSION,
        "k": record.kind,
        "t": record.time,
        "c": f"{record.component:016x}",
        "seq": record.seq,
    }
    if record.drop:
        out["drop"] = record.drop
    return out


def record_json(record: TraceRecord) -> dict[str, object]:
    """The JSON object of ``record`` (the inverse of :func:`parse_record`)."""
    out = _common(record)
    if isinstance(record, MessageRecord):
        out.update(
            dir=record.direction,
            peer=record.peer,
            proto=record.proto,
            type=record.type,
            flags=record.flags,
        )
        if record.length:
            out["len"] = record.length
        if record.local is not None:
            out["local"] = record.local
        if record.pool_handle is not None:
            out["ph"] = record.pool_handle
        if record.pe is not None:
            out["pe"] = record.pe
        if record.raw is not None:
            out["raw"] = record.raw.hex()
    else:
        out["type"] = record.type
    for key, value in record.fields.items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def encode_line(obj: Mapping[str, object]) -> bytes:
    """One compact JSON line (ASCII-only: every non-ASCII character as an escape)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")


def encode_record(record: TraceRecord) -> bytes:
    return encode_line(record_json(record))


# ---------------------------------------------------------------- decoding


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise TraceFormatError(reason)


def _int(obj: Mapping[str, object], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    _require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        f"{key!r} must be an integer in {low}..{high}",
    )
    assert isinstance(value, int)
    return value


def _optional_int(obj: Mapping[str, object], key: str, high: int) -> int | None:
    if obj.get(key) is None:
        return None
    return _int(obj, key, 0, high)


def _str(obj: Mapping[str, object], key: str, pattern: re.Pattern[str]) -> str:
    value = obj.get(key)
    _require(isinstance(value, str) and pattern.match(value) is not None, f"bad {key!r}")
    assert isinstance(value, str)
    return value


def _scalar(key: str, value: object) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        _require(-_MAX_INT < value < _MAX_INT, f"field {key!r} out of range")
        return value
    if isinstance(value, float):
        _require(math.isfinite(value), f"field {key!r} is not finite")
        return value
    if isinstance(value, str):
        return safe_text(value)
    raise TraceFormatError(f"field {key!r} must be a scalar or a list of scalars")


def _field_value(key: str, value: object) -> FieldValue:
    if isinstance(value, list):
        _require(len(value) <= MAX_LIST, f"field {key!r} has more than {MAX_LIST} items")
        return tuple(_scalar(key, item) for item in value)
    return _scalar(key, value)


def _fields(obj: Mapping[str, object], fixed: frozenset[str]) -> dict[str, FieldValue]:
    extra = {k: v for k, v in obj.items() if k not in COMMON_KEYS and k not in fixed}
    _require(len(extra) <= MAX_FIELDS, f"more than {MAX_FIELDS} fields")
    out: dict[str, FieldValue] = {}
    for key, value in extra.items():
        _require(_KEY.match(key) is not None, "bad field name")
        out[key] = _field_value(key, value)
    return out


def parse_record(obj: object) -> TraceRecord:
    """A decoded JSON value as a record; :class:`TraceFormatError` if it is not one."""
    _require(isinstance(obj, dict), "a record must be a JSON object")
    assert isinstance(obj, dict)
    _require(obj.get("v") == VERSION and not isinstance(obj.get("v"), bool), "unknown version")
    kind = obj.get("k")
    time = obj.get("t")
    _require(
        isinstance(time, int | float) and not isinstance(time, bool) and math.isfinite(time),
        "'t' must be a finite number",
    )
    assert isinstance(time, int | float)
    component = int(_str(obj, "c", _COMPONENT), 16)
    seq = _int(obj, "seq", 0, MAX_SEQ)
    drop = _optional_int(obj, "drop", MAX_SEQ) or 0
    if kind == KIND_EVENT:
        return EventRecord(
            time=float(time),
            component=component,
            seq=seq,
            type=_str(obj, "type", _TYPE),
            fields=_fields(obj, EVENT_KEYS),
            drop=drop,
        )
    _require(kind == KIND_MESSAGE, "'k' must be 'msg' or 'ev'")
    direction = obj.get("dir")
    _require(direction in (TX, RX), "'dir' must be 'tx' or 'rx'")
    assert isinstance(direction, str)
    proto = obj.get("proto")
    _require(isinstance(proto, str) and proto in PROTOCOLS, "unknown 'proto'")
    assert isinstance(proto, str)
    pool_handle = obj.get("ph")
    _require(pool_handle is None or isinstance(pool_handle, str), "'ph' must be text")
    assert pool_handle is None or isinstance(pool_handle, str)
    raw_text = obj.get("raw")
    raw: bytes | None = None
    if raw_text is not None:
        _require(
            isinstance(raw_text, str)
            and len(raw_text) <= 2 * MAX_RAW_BYTES
            and _HEX.match(raw_text) is not None,
            "'raw' must be lower-case hex",
        )
        assert isinstance(raw_text, str)
        raw = bytes.fromhex(raw_text)
    local = obj.get("local")
    return MessageRecord(
        time=float(time),
        component=component,
        seq=seq,
        direction=direction,
        peer=_str(obj, "peer", _ADDRESS),
        proto=proto,
        type=_str(obj, "type", _TYPE),
        flags=_int(obj, "flags", 0, 0xFF),
        length=_optional_int(obj, "len", 0xFFFFFFFF) or 0,
        local=None if local is None else _str(obj, "local", _ADDRESS),
        pool_handle=None if pool_handle is None else safe_text(pool_handle),
        pe=_optional_int(obj, "pe", 0xFFFFFFFF),
        fields=_fields(obj, MESSAGE_KEYS),
        raw=raw,
        drop=drop,
    )


def decode_line(line: bytes | str) -> TraceRecord:
    """One JSON line as a record."""
    _require(len(line) <= MAX_LINE, f"line longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise TraceFormatError(f"not JSON: {exc}") from None
    return parse_record(obj)


def _no_constant(name: str) -> object:
    raise TraceFormatError(f"{name} is not allowed")


def decode_datagram(data: bytes) -> list[TraceRecord]:
    """Every record of one datagram; :class:`TraceFormatError` if any line is bad.

    A datagram is all or nothing: a sender that writes one bad line cannot be trusted
    with the others.
    """
    _require(len(data) <= MAX_DATAGRAM, f"datagram longer than {MAX_DATAGRAM} bytes")
    lines = [line for line in data.split(b"\n") if line.strip()]
    _require(bool(lines), "empty datagram")
    _require(len(lines) <= MAX_RECORDS_PER_DATAGRAM, "too many records in one datagram")
    return [decode_line(line) for line in lines]
