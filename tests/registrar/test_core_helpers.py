"""Registrar core helpers: address scopes, rate limiter, timer schedule, config, and the
byte-level fast paths."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rsplib.handlespace import Handlespace
from rsplib.ratelimit import RateLimiter
from rsplib.registrar.config import AddressScope, RegistrarConfig
from rsplib.registrar.fastpath import ResolutionEncoder, readdress
from rsplib.registrar.schedule import Schedule
from rsplib.registrar.scope import scope_rank, usable_user_transport
from rsplib.wire.asap import HandleResolutionResponse, encode_asap
from rsplib.wire.constants import PolicyType
from rsplib.wire.enrp import HandleTableRequest, decode_enrp, encode_enrp
from rsplib.wire.params import PolicyParam, PoolElementParam, SctpTransport, TcpTransport, ip


@pytest.mark.parametrize(
    ("address", "rank"),
    [
        ("127.0.0.1", 0),
        ("::1", 0),
        ("169.254.1.1", 0),
        ("10.0.0.1", 1),
        ("172.20.0.1", 1),
        ("192.168.1.1", 1),
        ("fd00::1", 1),
        ("8.8.8.8", 2),
        ("2001:db8::1", 2),
        ("0.0.0.0", -1),
        ("239.0.0.50", -1),
        ("::ffff:10.0.0.1", 1),
    ],
)
def test_scope_ranks(address: str, rank: int) -> None:
    assert scope_rank(ip(address)) == rank


def test_user_transport_keeps_only_the_peer_address_of_sufficient_scope() -> None:
    sctp = SctpTransport(1, (ip("10.0.0.1"), ip("10.0.0.2"), ip("8.8.8.8")))
    kept = usable_user_transport(sctp, ip("10.0.0.2"), AddressScope.SITE_LOCAL)
    assert kept is not None and kept.addresses == (ip("10.0.0.2"),)
    assert usable_user_transport(sctp, ip("10.0.0.2"), AddressScope.GLOBAL) is None
    tcp = TcpTransport(1, (ip("127.0.0.1"),))
    assert usable_user_transport(tcp, ip("127.0.0.1"), AddressScope.SITE_LOCAL) is None
    assert usable_user_transport(tcp, ip("127.0.0.1"), AddressScope.LOOPBACK) == tcp
    assert usable_user_transport(tcp, ip("::ffff:127.0.0.1"), AddressScope.LOOPBACK) == tcp
    assert usable_user_transport(tcp, ip("127.0.0.2"), AddressScope.LOOPBACK) is None


def test_a_multi_homed_sctp_peer_keeps_every_path_address_of_sufficient_scope() -> None:
    sctp = SctpTransport(1, (ip("10.0.0.1"), ip("10.0.1.1"), ip("127.0.0.1"), ip("10.0.2.1")))
    paths = (ip("10.0.1.1"), ip("127.0.0.1"))  # the association's other addresses
    kept = usable_user_transport(sctp, ip("10.0.0.1"), AddressScope.SITE_LOCAL, paths)
    # Loopback is below the scope; 10.0.2.1 is no address of the association.
    assert kept is not None and kept.addresses == (ip("10.0.0.1"), ip("10.0.1.1"))


def test_scope_parsing() -> None:
    assert AddressScope.parse("sitelocal") is AddressScope.SITE_LOCAL
    assert AddressScope.parse("Global") is AddressScope.GLOBAL
    with pytest.raises(ValueError, match="loopback, site-local or global"):
        AddressScope.parse("planet")


def test_rate_limiter_limits_from_the_first_request() -> None:
    limiter = RateLimiter(10.0)
    # 20 requests/s: every second one is refused, already the second of all.
    fast = [limiter.allow("k", t * 0.05) for t in range(8)]
    assert fast == [True, False] * 4
    slow = [limiter.allow("s", t * 0.2) for t in range(8)]
    assert all(slow)


def test_rate_limiter_burst_and_cost() -> None:
    limiter = RateLimiter(100.0, burst=50.0)
    assert limiter.allow("peer", 0.0, cost=50.0)
    assert not limiter.allow("peer", 0.0, cost=1.0)
    assert not limiter.allow("peer", 0.1, cost=20.0)  # 10 tokens back
    assert limiter.allow("peer", 0.1, cost=10.0)
    assert limiter.allow("peer", 10.0, cost=50.0)  # refilled up to the burst, not beyond
    assert not limiter.allow("peer", 10.0, cost=1.0)


def test_rate_limiter_is_bounded_and_forgets() -> None:
    limiter = RateLimiter(1.0, max_keys=3)
    for key in range(10):
        limiter.allow((key, "x"), 0.0)
    assert len(limiter) == 3
    limiter.forget(lambda key: isinstance(key, tuple) and key[0] == 9)
    assert len(limiter) == 2


def test_schedule_restart_cancel_and_order() -> None:
    schedule = Schedule()
    schedule.set("a", 5.0)
    schedule.set("b", 2.0)
    schedule.set("a", 1.0)  # restart earlier
    schedule.set("c", 3.0)
    schedule.cancel("c")
    assert schedule.next_time() == 1.0
    assert schedule.pop_due(2.5) == ["a", "b"]
    assert schedule.next_time() is None
    for i in range(500):  # restarts do not grow the heap without bound
        schedule.set("x", float(i))
    assert len(schedule._heap) < 200


def test_config_defaults_are_rsplibs_and_validated() -> None:
    config = RegistrarConfig()
    assert config.endpoint_keepalive_interval == 5.0
    assert config.endpoint_keepalive_timeout == 5.0
    assert config.max_bad_pe_reports == 3
    assert config.max_hr_items == 3
    assert config.peer_heartbeat_cycle == pytest.approx(2.444444)
    assert config.min_address_scope is AddressScope.SITE_LOCAL
    assert config.max_hr_rate is None and config.max_eu_rate is None
    with pytest.raises(ValueError, match="takeover_expiry"):
        RegistrarConfig(takeover_expiry=0)
    with pytest.raises(ValueError, match="transport"):
        RegistrarConfig(transport="carrier-pigeon")


def test_fast_resolution_response_is_byte_identical_to_the_codec() -> None:
    hs = Handlespace()
    encoder = ResolutionEncoder()
    policies = [
        PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load=7, load_degradation=9),
        PolicyParam(PolicyType.WEIGHTED_RANDOM_DPF, weight=3, weight_dpf=5),
    ]
    for pool, policy in zip((b"odd", b"even-pool"), policies, strict=True):
        for identifier in range(1, 6):
            pe = PoolElementParam(
                identifier, 0, 1234, TcpTransport(100 + identifier, (ip("10.0.0.1"),)), policy
            )
            hs.register(pool, pe, home_registrar_id=0x55, now=0.0)
        for items in (1, 3, 5):
            entries = hs.resolve(pool, items, 0.0)
            params = tuple(e.to_param(False) for e in entries)
            expected = encode_asap(HandleResolutionResponse(pool, params[0].policy, params))
            assert encoder.handle_resolution_response(pool, entries) == expected
    # A re-registration with a new load changes the cached bytes.
    entry = hs.get(b"odd", 1)
    assert entry is not None
    new_policy = PolicyParam(PolicyType.LEAST_USED_DEGRADATION, load=1000, load_degradation=9)
    hs.register(
        b"odd", replace(entry.to_param(False), policy=new_policy), home_registrar_id=0x55, now=1.0
    )
    answer = encoder.handle_resolution_response(b"odd", [entry])
    assert answer == encode_asap(
        HandleResolutionResponse(b"odd", new_policy, (entry.to_param(False),))
    )
    assert encoder.handle_resolution_response(b"none", []) == encode_asap(
        HandleResolutionResponse(b"none", None, ())
    )


def test_readdress_changes_only_the_receiver() -> None:
    message = encode_enrp(HandleTableRequest(1, 2, own_children_only=True))
    assert decode_enrp(readdress(message, 0xABCDEF01)) == HandleTableRequest(
        1, 0xABCDEF01, own_children_only=True
    )
