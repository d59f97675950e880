"""What the registrar core asks its service to do (returned by ``pop_actions``).

The core never touches sockets: every effect on the outside world is one of these frozen
dataclasses, handed out in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsplib.registrar.config import PeerAddress

#: A connection handle chosen by the service; opaque to the core.
ConnId = int


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send ``data`` (one ASAP or ENRP message) with ``ppid`` on connection ``conn``."""

    conn: ConnId
    ppid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close ``conn`` (gracefully, or at once when ``abort``); the core already forgot it."""

    conn: ConnId
    reason: str
    abort: bool = False


@dataclass(frozen=True, slots=True)
class ConnectToPeer:
    """Open an ENRP connection to ``peer``.

    On success the service calls ``enrp_connection_opened(conn, peer, now, outbound_to=peer)``,
    on failure ``peer_connect_failed(peer, now)``.
    """

    peer: PeerAddress


@dataclass(frozen=True, slots=True)
class SendAsapAnnounce:
    """Multicast this ASAP Server Announce (if announces are on)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SendEnrpPresence:
    """Multicast this ENRP Presence (if presence multicast is on)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LogEvent:
    """Log ``message`` at ``level`` (a ``logging`` level); the core already rate-limited it."""

    level: int
    message: str


Action = (
    SendMessage | CloseConnection | ConnectToPeer | SendAsapAnnounce | SendEnrpPresence | LogEvent
)
