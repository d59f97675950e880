"""Requests every sans-IO core (ASAP client, registrar) hands its service alike.

Each core adds its own kinds of action next to these (connect requests, multicasts,
application events) in its own ``actions`` module.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsplib.addressing import ConnId


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send ``data`` (one ASAP or ENRP message) with ``ppid`` on connection ``conn``."""

    conn: ConnId
    ppid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close ``conn`` (gracefully, or at once when ``abort``); the core already forgot it.

    The ASAP client never sets ``abort``; its service always drops the connection at once.
    No ``connection_lost`` call back into the core is needed.
    """

    conn: ConnId
    reason: str
    abort: bool = False


@dataclass(frozen=True, slots=True)
class LogEvent:
    """Log ``message`` at ``level`` (a ``logging`` level); the registrar rate-limits first."""

    level: int
    message: str
