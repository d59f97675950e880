"""Registrar table, announce address rules and the client configuration."""

from __future__ import annotations

import pytest

from rsplib.addressing import PeerAddress
from rsplib.asap import AsapConfig, RegistrarTable, announce_addresses
from rsplib.wire.asap import ServerAnnounce
from rsplib.wire.params import SctpTransport, TcpTransport, ip

A = PeerAddress("127.0.0.1", 1001)
B = PeerAddress("127.0.0.1", 1002)
C = PeerAddress("127.0.0.1", 1003)


def test_static_entries_never_expire_and_announced_ones_do() -> None:
    table = RegistrarTable(announce_timeout=5.0)
    table.add_static(A)
    assert table.heard(B, 0x22, now=10.0)
    assert not table.heard(A, 0x11, now=10.0)  # known already; learns the id
    assert table.server_id(A) == 0x11
    assert table.next_expiry() == 15.0
    assert table.expire(14.9) == []
    assert table.expire(15.0) == [B]
    assert A in table
    assert B not in table
    assert table.next_expiry() is None


def test_announce_refreshes_expiry() -> None:
    table = RegistrarTable(announce_timeout=5.0)
    table.heard(B, 2, now=0.0)
    table.heard(B, 2, now=4.0)
    assert table.expire(8.9) == []
    assert table.expire(9.0) == [B]


def test_candidates_rotate_and_skip_duplicate_server_ids() -> None:
    table = RegistrarTable(announce_timeout=5.0)
    table.add_static(A)
    table.heard(B, 7, now=0.0)
    table.heard(C, 7, now=0.0)  # the same registrar at a second address
    assert table.candidates() == [A, B]
    table.demote(A)
    assert table.candidates() == [B, A]
    assert table.candidates(exclude={B}) == [C, A]


def test_announce_without_transports_uses_the_source() -> None:
    source = PeerAddress("10.0.0.9", 33333)
    assert announce_addresses(ServerAnnounce(1), source, "tcp-mapping") == [source]


def test_announce_transport_kind_must_match() -> None:
    source = PeerAddress("10.0.0.9", 33333)
    msg = ServerAnnounce(
        1,
        (
            SctpTransport(3863, (ip("10.0.0.9"), ip("10.0.1.9"))),
            TcpTransport(3864, (ip("10.0.0.9"),)),
        ),
    )
    assert announce_addresses(msg, source, "sctp") == [
        PeerAddress("10.0.0.9", 3863),
        PeerAddress("10.0.1.9", 3863),
    ]
    assert announce_addresses(msg, source, "tcp-mapping") == [PeerAddress("10.0.0.9", 3864)]
    only_sctp = ServerAnnounce(1, (SctpTransport(3863, (ip("10.0.0.9"),)),))
    assert announce_addresses(only_sctp, source, "tcp-mapping") == []


def test_config_defaults_are_rsplibs() -> None:
    config = AsapConfig()
    assert config.registrar_announce_timeout == 5.0
    assert config.registrar_connect_timeout == 7.5
    assert config.registrar_connect_max_trials == 1
    assert config.registrar_request_timeout == 3.0
    assert config.registrar_response_timeout == 3.0
    assert config.registrar_request_max_trials == 1
    assert config.registrar_parallel_connects == 3
    assert config.reregistration_interval == 30.0
    assert config.registration_life_ms == 90_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("registrar_connect_timeout", 0.0),
        ("registrar_response_timeout", -1.0),
        ("registrar_connect_max_trials", 0),
        ("registrar_parallel_connects", 0),
        ("stale_cache_value", -0.5),
        ("transport", "udp"),
        ("reregistration_interval", 2_000_000.0),  # life would not fit 32 bits of ms
    ],
)
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        AsapConfig(**{field: value})  # type: ignore[arg-type]
