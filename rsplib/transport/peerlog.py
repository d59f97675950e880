"""Logging of peers' misbehaviour that a flood cannot turn into a log flood.

One line per (host, kind of problem) per minute; later ones within the minute are counted
and the count is reported with the next line of that kind. The table of hosts is bounded.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("rsplib.transport")

#: One line per host and kind of problem in this many seconds.
INTERVAL = 60.0
_MAX_KEYS = 4096

#: (host, kind) -> [time of the last line, problems not logged since]
_seen: dict[tuple[str, str], list[float]] = {}


def peer_problem(level: int, host: str, kind: str, message: str, *args: object) -> None:
    """Log ``message % args`` unless ``host`` had a ``kind`` problem logged recently."""
    now = time.monotonic()
    key = (host, kind)
    entry = _seen.get(key)
    if entry is not None and now - entry[0] < INTERVAL:
        entry[1] += 1
        return
    if entry is None and len(_seen) >= _MAX_KEYS:
        _seen.clear()
    suppressed = int(entry[1]) if entry is not None else 0
    _seen[key] = [now, 0]
    if suppressed:
        message += f" ({suppressed} more from this host in the last minute)"
    logger.log(level, message + "; further such problems of this host are counted", *args)
