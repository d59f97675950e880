"""rsp-registrar argument handling: defaults, conversions, clear errors with exit status 2."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from rsplib.addressing import PeerAddress
from rsplib.registrar.cli import (
    UsageError,
    build_parser,
    parse_endpoint,
    parse_identifier,
    parse_loglevel,
    parse_settings,
    settings_from_args,
)
from rsplib.registrar.config import AddressScope, RegistrarConfig
from rsplib.registrar.service import ASAP_ANNOUNCE_GROUP, ENRP_ANNOUNCE_GROUP


def settings(*argv: str, seed: int = 1):  # type: ignore[no-untyped-def]
    return settings_from_args(build_parser().parse_args(list(argv)), random.Random(seed))


def test_defaults_match_rsplib_and_the_issue() -> None:
    s = settings("--announce-interface", "127.0.0.1")
    defaults = RegistrarConfig()
    assert s.config.endpoint_keepalive_interval == defaults.endpoint_keepalive_interval == 5.0
    assert s.config.endpoint_keepalive_timeout == 5.0
    assert s.config.max_bad_pe_reports == 3
    assert s.config.max_hr_items == 3
    assert s.config.min_address_scope is AddressScope.SITE_LOCAL
    assert s.options.asap == (PeerAddress("0.0.0.0", 3863),)
    assert s.options.enrp == PeerAddress("0.0.0.0", 9901)
    assert s.options.asap_announce == ASAP_ANNOUNCE_GROUP == PeerAddress("239.0.0.50", 3863)
    assert s.options.enrp_announce == ENRP_ANNOUNCE_GROUP == PeerAddress("239.0.0.51", 9901)
    assert s.options.transport == "auto"
    assert s.options.csp_server is None
    assert 1 <= s.server_id <= 0xFFFFFFFF


def test_random_identifier_differs_between_runs() -> None:
    ids = {settings("--asap", "127.0.0.1:0", seed=seed).server_id for seed in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(("text", "value"), [("0x1a2B", 0x1A2B), ("4660", 4660), ("1", 1)])
def test_identifier_hex_or_decimal(text: str, value: int) -> None:
    assert parse_identifier(text) == value


@pytest.mark.parametrize("text", ["0", "0x0", "0x100000000", "abc", "12a", "-5"])
def test_identifier_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_identifier(text)


def test_milliseconds_become_seconds() -> None:
    s = settings(
        "--asap",
        "127.0.0.1:0",
        "--endpoint-keepalive-interval",
        "300",
        "--endpoint-keepalive-timeout",
        "250",
        "--peer-heartbeat-interval",
        "500",
        "--peer-max-time-last-heard",
        "1500",
        "--peer-max-time-no-response",
        "700",
        "--takeover-expiry",
        "900",
        "--mentor-discovery-timeout",
        "1200",
        "--cspinterval",
        "333",
    )
    c = s.config
    assert (c.endpoint_keepalive_interval, c.endpoint_keepalive_timeout) == (0.3, 0.25)
    assert c.peer_heartbeat_cycle == 0.5
    assert c.peer_max_time_last_heard == 1.5
    assert c.peer_max_time_no_response == 0.7
    assert c.takeover_expiry == 0.9
    assert c.mentor_discovery_timeout == 1.2
    assert s.options.csp_interval == pytest.approx(0.333)
    # --cspinterval alone turns reporting on, to rsplib's default monitor.
    assert s.options.csp_server == ("127.0.0.1", 2960)


def test_counts_scope_transport_peers_and_endpoints() -> None:
    s = settings(
        "--identifier",
        "0x77",
        "--asap",
        "127.0.0.1:0",
        "--asap",
        "[::1]:4000",
        "--enrp",
        "127.0.0.2:9999",
        "--peer",
        "127.0.0.1:9901",
        "--peer",
        "127.0.0.3:9902",
        "--max-bad-pe-reports",
        "5",
        "--max-hr-items",
        "7",
        "--max-increment",
        "0",
        "--min-address-scope",
        "loopback",
        "--transport",
        "tcp",
        "--cspserver",
        "127.0.0.1:3000",
    )
    assert s.server_id == 0x77
    assert s.options.asap == (PeerAddress("127.0.0.1", 0), PeerAddress("::1", 4000))
    assert s.options.enrp == PeerAddress("127.0.0.2", 9999)
    assert s.config.static_peers == (
        PeerAddress("127.0.0.1", 9901),
        PeerAddress("127.0.0.3", 9902),
    )
    assert (s.config.max_bad_pe_reports, s.config.max_hr_items, s.config.max_increment) == (
        5,
        7,
        0,
    )
    assert s.config.min_address_scope is AddressScope.LOOPBACK
    assert s.options.transport == "tcp"
    assert s.options.csp_server == ("127.0.0.1", 3000)
    assert s.options.csp_interval == 1.0


def test_announce_off_and_explicit_groups() -> None:
    s = settings(
        "--asap",
        "10.0.0.1:0",
        "--asap-announce",
        "off",
        "--enrp-announce",
        "off",
    )
    assert s.options.asap_announce is None and s.options.enrp_announce is None
    assert not s.config.asap_announce and not s.config.enrp_announce
    assert s.options.announce_interface is None
    s = settings(
        "--asap",
        "10.0.0.1:0",
        "--asap-announce",
        "239.1.2.3:5000",
        "--announce-interface",
        "10.0.0.1",
    )
    assert s.options.asap_announce == PeerAddress("239.1.2.3", 5000)
    assert s.options.announce_interface == "10.0.0.1"


def test_loopback_registrar_announces_on_loopback_by_default() -> None:
    s = settings("--asap", "127.0.0.1:0")
    assert s.options.announce_interface == "127.0.0.1"


def test_multicast_without_interface_is_refused_off_loopback() -> None:
    with pytest.raises(UsageError, match="--announce-interface"):
        settings()  # 0.0.0.0:3863 with announces on: no obvious interface


def test_rate_limits_allow_list_and_connection_limits() -> None:
    s = settings(
        "--asap",
        "127.0.0.1:0",
        "--max-hr-rate",
        "50",
        "--max-eu-rate",
        "off",
        "--allow-peer",
        "127.0.0.1",
        "--allow-peer",
        "::1",
        "--max-pes-per-connection",
        "10",
        "--max-connections",
        "20",
    )
    assert s.config.max_hr_rate == 50.0
    assert s.config.max_eu_rate is None
    assert s.config.peer_allow_list == frozenset({"127.0.0.1", "::1"})
    assert s.config.max_pes_per_connection == 10
    assert s.config.max_asap_connections == 20


def test_resource_and_peer_limits() -> None:
    s = settings(
        "--asap", "127.0.0.1:0",
        "--max-connections-per-host", "7",
        "--buffer-budget", "3",
        "--max-pool-elements", "500",
        "--max-peers", "4",
        "--max-pes-per-peer", "50",
        "--max-peer-pe-rate", "100",
    )  # fmt: skip
    assert s.options.max_connections_per_host == 7
    assert s.options.buffer_budget == 3 * 1024 * 1024
    assert s.options.tls is None
    assert (s.config.max_pool_elements, s.config.max_enrp_peers) == (500, 4)
    assert s.config.max_pes_per_peer == 50
    assert (s.config.max_peer_pe_rate, s.config.max_peer_pe_burst) == (100.0, 400.0)


@pytest.mark.parametrize(("text", "level"), [("debug", 10), ("INFO", 20), ("35", 35)])
def test_loglevel_names_or_numbers(text: str, level: int) -> None:
    assert parse_loglevel(text) == level


@pytest.mark.parametrize("text", ["127.0.0.1", "localhost:3863", "1.2.3.4:65536", "[::1]"])
def test_endpoint_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(text)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--identifier", "zz"], "identifier"),
        (["--asap", "nonsense"], "ADDR:PORT"),
        (["--asap", "127.0.0.1:0", "--endpoint-keepalive-interval", "-5"], "milliseconds"),
        (["--asap", "127.0.0.1:0", "--max-hr-items", "0"], "at least 1"),
        (["--asap", "127.0.0.1:0", "--min-address-scope", "planet"], "scope"),
        (["--asap", "127.0.0.1:0", "--transport", "udp"], "invalid choice"),
        (["--asap", "127.0.0.1:0", "--asap-announce", "10.0.0.1:1"], "multicast"),
        (["--asap", "127.0.0.1:0", "--loglevel", "chatty"], "loglevel"),
        (["--asap", "127.0.0.1:0", "--peer", "127.0.0.1:0"], "port out of range"),
        (["--bogus"], "unrecognized"),
        (["--asap", "127.0.0.1:0", "--tls-cert", "x.pem"], "together"),
        (
            ["--asap", "127.0.0.1:0", "--tls-cert", "/nonexistent/c.pem",
             "--tls-key", "/nonexistent/c.key", "--tls-ca", "/nonexistent/ca.pem"],
            "cannot load the CA file",
        ),
        (["--asap", "127.0.0.1:0", "--max-peer-pe-rate", "off"], "positive rate"),
        (["--asap", "127.0.0.1:0", "--buffer-budget", "0"], "at least 1"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("rsp-registrar: error: ")
    assert fragment in err


def test_console_script_reports_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rsplib.registrar.cli", "--identifier", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "identifier" in result.stderr
