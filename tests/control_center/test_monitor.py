"""StatusModel (sans-IO): liveness, FINAL reports, links, discovery, purging, events."""

from __future__ import annotations

import pytest

from control_center.monitor import (
    AssociationsChanged,
    ComponentChanged,
    ComponentInactive,
    ComponentRemoved,
    ExpectedComponent,
    InactiveReason,
    MonitorEvent,
    Signal,
    StatusModel,
    default_name,
    protocol_category,
    protocol_name,
    transport_name,
)
from rsplib.wire.csp import ComponentGroup, CspAssociation, CspReport, component_id, encode_csp

PR1 = component_id(ComponentGroup.REGISTRAR, 0x10000)
PR2 = component_id(ComponentGroup.REGISTRAR, 0x20000)
PE1 = component_id(ComponentGroup.POOL_ELEMENT, 0x101)
PU1 = component_id(ComponentGroup.POOL_USER, 0x1)
STRANGER = component_id(ComponentGroup.POOL_ELEMENT, 0xBEEF)


def report(
    sender: int,
    *,
    interval_ms: int = 250,
    status: str = "ok",
    location: str = "host: 127.0.0.1",
    workload: float | None = None,
    associations: tuple[CspAssociation, ...] = (),
    final: bool = False,
    timestamp_us: int = 0,
) -> CspReport:
    return CspReport(
        sender_id=sender,
        timestamp_us=timestamp_us,
        report_interval_us=interval_ms * 1000,
        location=location,
        status=status,
        workload=workload,
        associations=associations,
        final=final,
    )


def scenario_model(**kwargs: float | None) -> StatusModel:
    return StatusModel(
        [
            ExpectedComponent("PR-1", PR1),
            ExpectedComponent("PR-2", PR2),
            ExpectedComponent("PE-1", PE1),
            ExpectedComponent("PU-1", PU1),
        ],
        **kwargs,  # type: ignore[arg-type]
    )


def kinds(events: list[MonitorEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def test_scenario_components_start_inactive_and_never_seen() -> None:
    model = scenario_model()
    assert [c.name for c in model.snapshot()] == ["PR-1", "PR-2", "PE-1", "PU-1"]
    pe = model.by_name("PE-1")
    assert not pe.active and pe.inactive_reason is InactiveReason.NEVER_SEEN
    assert pe.reports == 0 and pe.links == () and not pe.discovered
    assert model.next_deadline() is None
    assert model.expire(1e9) == []


def test_first_report_activates_and_fills_the_model() -> None:
    model = scenario_model()
    link = CspAssociation(receiver_id=PR1, duration_us=3_500_000, ppid=11, protocol_id=6)
    events = model.handle_report(
        report(PE1, status="2 Sessions", workload=0.5, associations=(link,), timestamp_us=7_000),
        now=100.0,
        source=("127.0.0.1", 5555),
    )
    assert kinds(events) == ["ComponentChanged", "ComponentActive", "AssociationsChanged"]
    pe = model.by_name("PE-1")
    assert pe.active and pe.status == "2 Sessions" and pe.location == "host: 127.0.0.1"
    assert pe.workload == pytest.approx(0.5, abs=1e-4)
    assert pe.report_interval == pytest.approx(0.25)
    assert pe.uptime == pytest.approx(0.007)
    assert pe.active_since == 100.0 and pe.last_report_at == 100.0
    assert pe.source == ("127.0.0.1", 5555)
    (only,) = pe.links
    assert (only.source_id, only.receiver_id, only.ppid) == (PE1, PR1, 11)
    assert only.duration == pytest.approx(3.5)
    assert (only.protocol, only.category, only.transport_name) == ("ASAP", "asap", "TCP")
    changed = events[0]
    assert isinstance(changed, ComponentChanged)
    assert {"active", "status", "location", "workload", "links"} <= changed.fields
    added = events[2]
    assert isinstance(added, AssociationsChanged)
    assert added.added == pe.links and added.removed == ()


def test_times_out_after_interval_times_multiplier() -> None:
    model = scenario_model()
    enrp = CspAssociation(receiver_id=PR2, duration_us=None, ppid=12)
    model.handle_report(report(PR1, associations=(enrp,)), now=10.0)
    assert model.next_deadline() == pytest.approx(10.0 + 0.25 * 5)
    assert model.expire(11.24) == []
    assert model.by_name("PR-1").active
    events = model.expire(11.25)
    assert kinds(events) == ["ComponentChanged", "ComponentInactive", "AssociationsChanged"]
    inactive = events[1]
    assert isinstance(inactive, ComponentInactive)
    assert inactive.reason is InactiveReason.TIMEOUT
    pr = model.by_name("PR-1")
    assert not pr.active and pr.links == () and pr.inactive_since == 11.25
    assert pr.status == "ok", "the last status stays readable after a timeout"
    removed = events[2]
    assert isinstance(removed, AssociationsChanged) and removed.removed[0].receiver_id == PR2
    assert model.next_deadline() is None
    assert model.expire(20.0) == []


def test_each_report_pushes_the_deadline() -> None:
    model = scenario_model(timeout_multiplier=4)
    for step in range(10):
        model.handle_report(report(PU1, interval_ms=100), now=step * 0.3)
        assert model.expire(step * 0.3 + 0.39) == []
    assert model.by_name("PU-1").active
    assert model.next_deadline() == pytest.approx(2.7 + 0.4)
    assert kinds(model.expire(3.1))[1] == "ComponentInactive"
    assert not model.by_name("PU-1").active


def test_per_component_multiplier_and_interval_from_each_report() -> None:
    model = StatusModel([ExpectedComponent("PE-1", PE1, timeout_multiplier=2)])
    model.handle_report(report(PE1, interval_ms=1000), now=0.0)
    assert model.next_deadline() == pytest.approx(2.0)
    model.handle_report(report(PE1, interval_ms=100), now=1.0)
    assert model.next_deadline() == pytest.approx(1.2)


def test_missing_interval_falls_back_to_six_seconds() -> None:
    model = scenario_model()
    model.handle_report(report(PR1, interval_ms=0), now=0.0)
    assert model.by_name("PR-1").report_interval is None
    assert model.next_deadline() == pytest.approx(6.0 * 5)


def test_final_report_deactivates_at_once_and_keeps_last_texts() -> None:
    model = scenario_model()
    link = CspAssociation(receiver_id=PR1, duration_us=1_000, ppid=11)
    model.handle_report(report(PE1, status="1 Session", associations=(link,)), now=5.0)
    events = model.handle_report(report(PE1, final=True, status="", location=""), now=5.1)
    assert kinds(events) == ["ComponentChanged", "ComponentInactive", "AssociationsChanged"]
    inactive = events[1]
    assert isinstance(inactive, ComponentInactive) and inactive.reason is InactiveReason.FINAL
    pe = model.by_name("PE-1")
    assert not pe.active and pe.inactive_since == 5.1 and pe.links == ()
    assert pe.status == "1 Session" and pe.location == "host: 127.0.0.1"
    assert model.next_deadline() is None, "no timeout left to wait for"
    # A restarted process with the same id becomes active again.
    events = model.handle_report(report(PE1, status="0 Sessions"), now=9.0)
    assert "ComponentActive" in kinds(events)
    assert model.by_name("PE-1").active_since == 9.0


def test_final_report_of_an_inactive_component_changes_no_liveness() -> None:
    model = scenario_model()
    events = model.handle_report(report(PE1, final=True), now=1.0)
    assert kinds(events) == ["ComponentChanged"]
    pe = model.by_name("PE-1")
    assert not pe.active and pe.inactive_reason is InactiveReason.FINAL


def test_duration_updates_do_not_count_as_association_changes() -> None:
    model = scenario_model()
    first = CspAssociation(receiver_id=PE1, duration_us=1_000_000, ppid=32)
    later = CspAssociation(receiver_id=PE1, duration_us=2_000_000, ppid=32)
    model.handle_report(report(PU1, associations=(first,)), now=0.0)
    events = model.handle_report(report(PU1, associations=(later,)), now=0.25)
    assert kinds(events) == ["ComponentChanged"]
    changed = events[0]
    assert isinstance(changed, ComponentChanged) and changed.fields == {"links", "reports"}
    assert model.by_name("PU-1").links[0].duration == pytest.approx(2.0)
    # Failover: the session moves to another PE -> one link removed, one added.
    other = CspAssociation(receiver_id=STRANGER, duration_us=0, ppid=32)
    events = model.handle_report(report(PU1, associations=(other,)), now=0.5)
    change = events[-1]
    assert isinstance(change, AssociationsChanged)
    assert [link.receiver_id for link in change.added] == [STRANGER]
    assert [link.receiver_id for link in change.removed] == [PE1]


def test_unknown_sender_is_discovered_not_dropped() -> None:
    model = scenario_model()
    events = model.handle_report(report(STRANGER, status="stray"), now=1.0)
    assert kinds(events)[0] == "ComponentDiscovered"
    stray = model.get(STRANGER)
    assert stray is not None and stray.discovered and stray.active
    assert stray.name == f"PE {STRANGER:x}"
    assert model.by_name(stray.name).csp_id == STRANGER
    assert model.name_of(PR1) == "PR-1" and model.name_of(PR1 + 1) == f"PR {PR1 + 1:x}"
    # Declaring it later (a scenario reload) turns it into a named component.
    model.add_expected(ExpectedComponent("PE-9", STRANGER))
    named = model.by_name("PE-9")
    assert not named.discovered and named.active and named.status == "stray"
    with pytest.raises(KeyError):
        model.by_name(f"PE {STRANGER:x}")


def test_duplicate_names_are_refused() -> None:
    model = scenario_model()
    with pytest.raises(ValueError, match="duplicate"):
        model.add_expected(ExpectedComponent("PE-1", STRANGER))
    with pytest.raises(ValueError):
        StatusModel(timeout_multiplier=0)


def test_discovered_components_are_purged_scenario_ones_stay() -> None:
    model = scenario_model(purge_interval=30.0)
    model.handle_report(report(STRANGER, interval_ms=1000), now=0.0)
    model.handle_report(report(PE1, interval_ms=1000), now=0.0)
    timeouts = model.expire(5.0)
    assert {e.component.csp_id for e in timeouts if isinstance(e, ComponentInactive)} == {
        STRANGER,
        PE1,
    }
    # min(30 s, 10 x 1 s) after the last report
    assert model.next_deadline() == pytest.approx(10.0)
    assert model.expire(9.9) == []
    events = model.expire(10.0)
    assert kinds(events) == ["ComponentRemoved"]
    assert model.get(STRANGER) is None and model.get(PE1) is not None
    assert model.next_deadline() is None


def test_discovered_component_is_purged_at_once_after_final() -> None:
    model = StatusModel(purge_interval=30.0)
    model.handle_report(report(STRANGER), now=0.0)
    model.handle_report(report(STRANGER, final=True), now=0.1)
    assert model.next_deadline() == pytest.approx(0.1)
    removed = model.expire(0.1)
    assert kinds(removed) == ["ComponentRemoved"]
    assert isinstance(removed[0], ComponentRemoved)
    assert model.snapshot() == []


def test_without_purge_interval_discovered_components_stay() -> None:
    model = StatusModel()
    model.handle_report(report(STRANGER), now=0.0)
    model.expire(100.0)
    state = model.get(STRANGER)
    assert state is not None and not state.active
    assert model.expire(10_000.0) == []


def test_malformed_datagrams_are_counted_and_ignored() -> None:
    model = scenario_model()
    good = encode_csp(report(PR1))
    assert model.handle_datagram(good[:-1], ("127.0.0.1", 1), now=0.0) == []
    assert model.handle_datagram(b"\x02" + good[1:], ("127.0.0.1", 1), now=0.0) == []
    assert model.stats.malformed == 2 and "127.0.0.1:1" in model.stats.last_error
    assert not model.by_name("PR-1").active
    events = model.handle_datagram(good, ("127.0.0.1", 1), now=0.0)
    assert "ComponentActive" in kinds(events) and model.stats.reports == 1


def test_signals_deliver_in_order_and_survive_faulty_listeners() -> None:
    model = scenario_model()
    seen: list[str] = []
    actives: list[str] = []

    def broken(_event: object) -> None:
        raise RuntimeError("view bug")

    model.events.connect(broken)
    model.events.connect(lambda e: seen.append(type(e).__name__))
    unsubscribe = model.component_active.connect(lambda e: actives.append(e.component.name))
    model.component_inactive.connect(lambda e: seen.append(f"inactive:{e.reason}"))
    model.component_discovered.connect(lambda e: seen.append(f"found:{e.component.name}"))
    model.handle_report(report(PR1), now=0.0)
    unsubscribe()
    model.handle_report(report(PR2), now=0.0)
    model.handle_report(report(STRANGER), now=0.0)
    model.expire(5.0)
    assert actives == ["PR-1"]
    assert seen[:4] == [
        "ComponentChanged",
        "ComponentActive",
        "ComponentChanged",
        "ComponentActive",
    ]
    assert f"found:PE {STRANGER:x}" in seen
    assert seen.count("inactive:timeout") == 3


def test_signal_disconnect_of_unknown_callback_is_harmless() -> None:
    signal: Signal[int] = Signal("x")
    got: list[int] = []
    signal.disconnect(got.append)
    signal.connect(got.append)
    signal.emit(3)
    signal.disconnect(got.append)
    signal.emit(4)
    assert got == [3]


@pytest.mark.parametrize(
    ("ppid", "name", "category"),
    [
        (0, "Data", "application"),
        (11, "ASAP", "asap"),
        (12, "ENRP", "enrp"),
        (32, "FGP", "application"),
        (35, "Scripting", "application"),
        (0x1234, "$1234", "application"),
    ],
)
def test_protocol_names_by_ppid(ppid: int, name: str, category: str) -> None:
    assert protocol_name(ppid) == name
    assert protocol_category(ppid) == category


def test_transport_names_and_default_names() -> None:
    assert [transport_name(n) for n in (132, 6, 17, 99)] == ["SCTP", "TCP", "UDP", "99"]
    assert default_name(PR1) == "PR 100000000010000"
    assert default_name(PU1) == "PU 300000000000001"
    assert default_name(component_id(9, 5)) == "G9 900000000000005"


def test_a_port_in_use_is_said_once_with_a_hint() -> None:
    import errno
    import socket

    from control_center.monitor import listen_error

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
            try:
                second.bind(("127.0.0.1", port))
            except OSError as exc:
                error = listen_error("CSP reports", "127.0.0.1", port, exc)
    text = str(error)
    assert error.errno == errno.EADDRINUSE
    assert text.count("Errno") == 0 and text.count("in use") == 1, text
    assert f"127.0.0.1:{port}" in text and "--csp-port 0" in text


def test_help_texts_name_the_right_defaults() -> None:
    from control_center.cli import build_parser as control_center_parser
    from fractal_pe.cli import build_parser as pe_parser

    pe = pe_parser().format_help().split("\noptions:", 1)[1]
    assert "default FractalGeneratorPool" in pe and "EchoPool" not in pe
    for option in ("--rereginterval", "--cookie-max-packets", "--transmit-timeout", "--local"):
        line = pe[pe.index(f"  {option}") :].split("\n  --", 1)[0]
        assert "default" in line, line
    center = control_center_parser().format_help().split("\noptions:", 1)[1]
    loglevel = center[center.index("  --loglevel") :].split("\n  --", 1)[0]
    assert "(default error" in " ".join(loglevel.split()), loglevel
