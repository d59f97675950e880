"""What the registrar core asks its service to do (returned by ``pop_actions``).

The core never touches sockets: every effect on the outside world is one of these frozen
dataclasses, handed out in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsplib.addressing import ConnId, PeerAddress
from rsplib.core_actions import CloseConnection, LogEvent, SendMessage

__all__ = [
    "Action",
    "CloseConnection",
    "ConnId",
    "ConnectToPeer",
    "LogEvent",
    "PeerAddress",
    "SendAsapAnnounce",
    "SendEnrpPresence",
    "SendMessage",
]


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


Action = (
    SendMessage | CloseConnection | ConnectToPeer | SendAsapAnnounce | SendEnrpPresence | LogEvent
)
