"""Sans-IO registrar core (contract skeleton; the behaviour follows in the next commits)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rsplib.registrar.actions import Action, ConnId
from rsplib.registrar.config import PeerAddress, RegistrarConfig

if TYPE_CHECKING:
    from rsplib.handlespace import Handlespace


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One known ENRP peer as shown in status reports."""

    server_id: int
    address: PeerAddress | None
    connected: bool


@dataclass(frozen=True, slots=True)
class RegistrarStatus:
    """Read-only summary for status reports (CSP) and tests."""

    server_id: int
    pe_count: int
    owned_pe_count: int
    pool_count: int
    peers: tuple[PeerStatus, ...]
    ready: bool


class RegistrarCore:
    """The registrar's protocol logic: bytes and timer ticks in, actions out."""

    handlespace: Handlespace

    def __init__(
        self, config: RegistrarConfig, server_id: int, rng: random.Random, now: float
    ) -> None:
        raise NotImplementedError

    def asap_connection_opened(
        self, conn: ConnId, peer: PeerAddress, transport: str, now: float
    ) -> None:
        raise NotImplementedError

    def enrp_connection_opened(
        self, conn: ConnId, peer: PeerAddress, now: float, outbound_to: PeerAddress | None = None
    ) -> None:
        raise NotImplementedError

    def peer_connect_failed(self, peer: PeerAddress, now: float) -> None:
        raise NotImplementedError

    def connection_lost(self, conn: ConnId, now: float) -> None:
        raise NotImplementedError

    def receive(self, conn: ConnId, ppid: int, data: bytes, now: float) -> None:
        raise NotImplementedError

    def receive_multicast(self, ppid: int, data: bytes, source: PeerAddress, now: float) -> None:
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        raise NotImplementedError

    def pop_actions(self) -> list[Action]:
        raise NotImplementedError

    def shutdown(self, now: float) -> None:
        raise NotImplementedError

    def status(self) -> RegistrarStatus:
        raise NotImplementedError
