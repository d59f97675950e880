"""The registrar (ENRP server): a sans-IO core plus a thin asyncio service and CLI."""

from rsplib.addressing import PeerAddress
from rsplib.registrar.actions import (
    Action,
    CloseConnection,
    ConnectToPeer,
    ConnId,
    LogEvent,
    SendAsapAnnounce,
    SendEnrpPresence,
    SendMessage,
)
from rsplib.registrar.config import AddressScope, RegistrarConfig
from rsplib.registrar.core import PeerStatus, RegistrarCore, RegistrarStatus

__all__ = [
    "Action",
    "AddressScope",
    "CloseConnection",
    "ConnId",
    "ConnectToPeer",
    "LogEvent",
    "PeerAddress",
    "PeerStatus",
    "RegistrarConfig",
    "RegistrarCore",
    "RegistrarStatus",
    "SendAsapAnnounce",
    "SendEnrpPresence",
    "SendMessage",
]
