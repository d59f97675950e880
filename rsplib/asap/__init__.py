"""The PE/PU side of ASAP (RFC 5352) as a sans-IO core: registrar discovery and hunt,
registration, handle resolution, keep-alive answers."""

from rsplib.asap.actions import (
    Action,
    AsapErrorReceived,
    CloseConnection,
    ConnectToRegistrar,
    ConnId,
    Deregistered,
    Event,
    HomeRegistrarChanged,
    LogEvent,
    NoRegistrar,
    RegistrationFailed,
    RegistrationSucceeded,
    RequestTimedOut,
    ResolutionResult,
    SendMessage,
)
from rsplib.asap.client import AsapClient
from rsplib.asap.config import AsapConfig
from rsplib.asap.registrar_table import RegistrarTable, announce_addresses

__all__ = [
    "Action",
    "AsapClient",
    "AsapConfig",
    "AsapErrorReceived",
    "CloseConnection",
    "ConnId",
    "ConnectToRegistrar",
    "Deregistered",
    "Event",
    "HomeRegistrarChanged",
    "LogEvent",
    "NoRegistrar",
    "RegistrarTable",
    "RegistrationFailed",
    "RegistrationSucceeded",
    "RequestTimedOut",
    "ResolutionResult",
    "SendMessage",
    "announce_addresses",
]
