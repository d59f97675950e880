"""Builders shared by the handlespace tests."""

from __future__ import annotations

from rsplib.wire.constants import TransportUse
from rsplib.wire.params import (
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    TcpTransport,
    Transport,
    UdpTransport,
    ip,
)

POOL = b"FractalGeneratorPool"
HOME = 0x0A0A0A0A


def tcp(port: int = 4711, use: int = TransportUse.DATA_PLUS_CONTROL) -> TcpTransport:
    return TcpTransport(port, (ip("10.0.0.1"),), use)


def sctp(port: int = 4711) -> SctpTransport:
    return SctpTransport(port, (ip("10.0.0.1"), ip("10.0.0.2")))


def udp(port: int = 4711) -> UdpTransport:
    return UdpTransport(port, (ip("10.0.0.1"),))


def pe(
    identifier: int,
    policy_type: int,
    *,
    transport: Transport | None = None,
    life: int = 30_000,
    **fields: int,
) -> PoolElementParam:
    return PoolElementParam(
        identifier=identifier,
        home_registrar_id=0,
        registration_life=life,
        user_transport=transport if transport is not None else tcp(4000 + (identifier & 0xFFF)),
        policy=PolicyParam(policy_type, **fields),
    )
