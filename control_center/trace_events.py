"""A pool user's failover report from the trace channel, as the control center shows it.

Components started by the control center send a live trace (``--trace
ADDR:PORT``; the format is described in ``docs/trace.md``). The trace library
decodes each record and checks its common fields; an event record has a
``type`` and its own fields. This module turns the fields of a ``"failover"``
event -- the pool user's own account of one failover -- into a
:class:`PuFailover`. No I/O here.

The fields come from the network, so nothing is trusted: a field of the wrong
type or out of range is a :class:`TraceFormatError` for that record, which the
caller drops and counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control_center.safe_text import printable

#: The event type of a pool user's failover report.
FAILOVER = "failover"
#: Cells a failover record may name (an image has at most 512 sessions).
MAX_CELLS = 512
#: A reason is shown as given, cut to this many characters.
MAX_TEXT = 40


class TraceFormatError(ValueError):
    """A trace record that does not follow the format; the message says what."""


@dataclass(frozen=True, slots=True)
class PuFailover:
    """A pool user reports that one of its sessions moved to another PE.

    Times are the pool user's wall clock (seconds since the epoch).
    """

    #: CSP id of the reporting pool user.
    sender: int
    seq: int
    sent_at: float
    session: int
    reason: str
    old_pe: int | None
    new_pe: int
    #: The new PE got a Cookie Echo first (the work resumed where the old PE left it).
    cookie: bool
    #: When the last message from the old PE arrived (None: never heard from it).
    last_rx: float | None
    #: When the pool user decided the old PE was lost.
    detected: float
    #: When the first message from the new PE arrived.
    resumed: float
    cells: tuple[int, ...]
    image: int

    @property
    def detect_to_resume(self) -> float:
        """Seconds from the pool user's detection of the loss to the first new message."""
        return self.resumed - self.detected

    @property
    def silence_before_detection(self) -> float | None:
        """Seconds the old PE had been silent when the loss was detected."""
        return None if self.last_rx is None else self.detected - self.last_rx


def failover_of(
    event_type: str, sender: int, seq: int, sent_at: float, record: Mapping[str, Any]
) -> PuFailover | None:
    """The failover an event record reports (``record``: its fields), None for other events.

    ``sender``, ``seq`` and ``sent_at`` are the record's common fields, already checked
    by the trace library. Raises TraceFormatError when a failover field is malformed.
    """
    if event_type != FAILOVER:
        return None
    return PuFailover(
        sender=sender,
        seq=seq,
        sent_at=sent_at,
        session=_int(record, "session", 0, 2**32),
        reason=_text(record, "reason"),
        old_pe=_pe(record, "old_pe", optional=True),
        new_pe=_pe_required(record, "new_pe"),
        cookie=_bool(record, "cookie"),
        last_rx=_optional_time(record, "last_rx"),
        detected=_time(record, "detected"),
        resumed=_time(record, "resumed"),
        cells=_cells(record),
        image=_int(record, "image", 0, 2**32),
    )


# --------------------------------------------------------------------------- fields


def _int(record: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise TraceFormatError(f"{key} must be an integer in {low}..{high - 1}")
    return value


def _pe(record: Mapping[str, Any], key: str, *, optional: bool) -> int | None:
    if optional and record.get(key) is None:
        return None
    return _int(record, key, 1, 2**32)


def _pe_required(record: Mapping[str, Any], key: str) -> int:
    value = _pe(record, key, optional=False)
    assert value is not None
    return value


def _bool(record: Mapping[str, Any], key: str) -> bool:
    value = record.get(key)
    if not isinstance(value, bool):
        raise TraceFormatError(f"{key} must be true or false")
    return value


def _time(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TraceFormatError(f"{key} must be a time in seconds")
    if not 0 <= value < 2**33:
        raise TraceFormatError(f"{key} is not a plausible wall-clock time")
    return float(value)


def _optional_time(record: Mapping[str, Any], key: str) -> float | None:
    return None if record.get(key) is None else _time(record, key)


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise TraceFormatError(f"{key} must be a text")
    # Shown on screen: short, and escaped like every text from the network.
    return printable(value[:MAX_TEXT])[:MAX_TEXT]


def _cells(record: Mapping[str, Any]) -> tuple[int, ...]:
    value = record.get("cells")
    if not isinstance(value, list | tuple) or len(value) > MAX_CELLS:
        raise TraceFormatError(f"cells must be a list of at most {MAX_CELLS} cell indices")
    cells = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < MAX_CELLS:
            raise TraceFormatError(f"cells must hold cell indices 0..{MAX_CELLS - 1}")
        cells.append(item)
    return tuple(cells)
