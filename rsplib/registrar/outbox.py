"""The core's queue of actions, with logging that says each kind of problem only once.

"Logged once per peer": a misbehaving connection or multicast source gets one log line per
kind of problem; later ones are only counted. Keys of a closed connection are forgotten so
the set stays bounded.
"""

from __future__ import annotations

from collections.abc import Hashable

from rsplib.registrar.actions import Action, CloseConnection, ConnId, LogEvent, SendMessage

#: Bound of the "already logged" memory for sources that are not connections.
_MAX_ONCE_KEYS = 4096


class Outbox:
    def __init__(self) -> None:
        self.actions: list[Action] = []
        self._once: dict[Hashable, set[str]] = {}
        #: Problems seen but not logged again (for status and tests).
        self.suppressed = 0

    def send(self, conn: ConnId, ppid: int, data: bytes) -> None:
        self.actions.append(SendMessage(conn, ppid, data))

    def close(self, conn: ConnId, reason: str, *, abort: bool = False) -> None:
        self.actions.append(CloseConnection(conn, reason, abort))

    def log(self, level: int, message: str) -> None:
        self.actions.append(LogEvent(level, message))

    def log_once(self, source: Hashable, kind: str, level: int, message: str) -> bool:
        """Log ``message`` unless ``source`` already had a problem of this ``kind``."""
        kinds = self._once.get(source)
        if kinds is None:
            if len(self._once) >= _MAX_ONCE_KEYS:
                self._once.clear()
            kinds = self._once[source] = set()
        if kind in kinds:
            self.suppressed += 1
            return False
        kinds.add(kind)
        self.actions.append(LogEvent(level, message))
        return True

    def forget(self, source: Hashable) -> None:
        self._once.pop(source, None)

    def drain(self) -> list[Action]:
        actions, self.actions = self.actions, []
        return actions
