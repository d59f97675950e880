"""rsp-monitor: rendering (compact/full, limits, colours) and the command as a process."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from control_center.monitor import ExpectedComponent, StatusModel
from control_center.rsp_monitor import (
    ViewOptions,
    format_uptime,
    render,
    short_label,
    truncate,
)
from rsplib.transport import UdpSender
from rsplib.wire.csp import ComponentGroup, CspAssociation, CspReport, component_id, encode_csp

REPO = Path(__file__).resolve().parents[2]
PR1 = component_id(ComponentGroup.REGISTRAR, 0x10000)
PE1 = component_id(ComponentGroup.POOL_ELEMENT, 0x101)
PE2 = component_id(ComponentGroup.POOL_ELEMENT, 0x102)
PU1 = component_id(ComponentGroup.POOL_USER, 0x1)


def report(
    sender: int,
    *,
    status: str = "ok",
    location: str = "alpha: 127.0.0.1",
    workload: float | None = None,
    associations: tuple[CspAssociation, ...] = (),
    timestamp_us: int = 0,
    final: bool = False,
    interval_us: int = 250_000,
) -> CspReport:
    return CspReport(
        sender_id=sender,
        timestamp_us=timestamp_us,
        report_interval_us=interval_us,
        location=location,
        status=status,
        workload=workload,
        associations=associations,
        final=final,
    )


def populated_model() -> StatusModel:
    model = StatusModel([ExpectedComponent("PE-1", PE1), ExpectedComponent("PR-1", PR1)])
    asap = CspAssociation(receiver_id=PR1, duration_us=187_000_000, ppid=11)
    fgp = CspAssociation(receiver_id=PE1, duration_us=4_000_000, ppid=32, protocol_id=6)
    model.handle_report(report(PU1, status="1 Session", associations=(asap, fgp)), now=0.0)
    model.handle_report(
        report(
            PE1,
            status="3 Sessions",
            workload=0.95,
            associations=(asap,),
            timestamp_us=3_725_000_000,
        ),
        now=0.0,
    )
    model.handle_report(report(PR1, status="1[1] PEs in 1 Pool(s), 0 Peer(s)"), now=0.0)
    return model


def test_compact_view_one_line_per_component_sorted_by_group() -> None:
    lines = render(populated_model(), 0.5, ViewOptions(), listening="127.0.0.1:2960")
    assert lines[0].startswith("rsp-monitor ") and lines[0].endswith("on 127.0.0.1:2960")
    assert lines[1].startswith("PRs: 1  PEs: 1  PUs: 1")
    body = [line for line in lines[3:] if line]
    assert len(body) == 3
    pr, pe, pu = body
    assert pr.startswith("PR $00010000 PR-1 [alpha: 127.0.0.1] U=00:00:00 l=0.5s A=0 ")
    assert pr.endswith('"1[1] PEs in 1 Pool(s), 0 Peer(s)"')
    assert pe.startswith("PE $00000101 PE-1 [alpha: 127.0.0.1] U=01:02:05 l=0.5s A=1 L=95% ")
    assert pu.startswith("PU $00000000000001 [alpha: 127.0.0.1]")
    assert "A=2" in pu and "L=" not in pu and pu.endswith('"1 Session"')
    assert not any("\x1b" in line for line in lines)


def test_full_view_lists_links_with_names_protocols_and_durations() -> None:
    lines = render(populated_model(), 0.0, ViewOptions(full=True))
    links = [line.strip() for line in lines if line.startswith("   -> ")]
    assert "-> PR $00010000 PR-1 ASAP/SCTP duration=0:03:07" in links
    assert "-> PE $00000101 PE-1 FGP/TCP duration=0:00:04" in links
    assert len(links) == 3


def test_colours_only_when_asked_and_high_load_in_reverse_video() -> None:
    lines = render(populated_model(), 0.0, ViewOptions(color=True))
    pe = next(line for line in lines if "PE-1" in line)
    assert "\x1b[34m" in pe and "\x1b[7mL=95%" in pe
    pr = next(line for line in lines if "PR-1" in line)
    assert "\x1b[31m" in pr


def test_inactive_and_never_seen_components_are_marked() -> None:
    model = StatusModel([ExpectedComponent("PE-2", PE2), ExpectedComponent("PE-1", PE1)])
    model.handle_report(report(PE1, status="busy"), now=0.0)
    model.expire(10.0)
    lines = render(model, 10.0, ViewOptions())
    pe1 = next(line for line in lines if "PE-1" in line)
    pe2 = next(line for line in lines if "PE-2" in line)
    assert 'inactive (timeout) last: "busy"' in pe1
    assert pe2.endswith("[] inactive (never-seen)")
    assert lines.index(pe1) < lines.index(pe2), "components that reported come first"
    assert lines[1].startswith("PRs: 0  PEs: 0  PUs: 0")


def test_group_limits_summarise_hidden_components() -> None:
    model = StatusModel()
    for n in range(5):
        model.handle_report(report(component_id(2, 0x200 + n)), now=0.0)
    lines = render(model, 0.0, ViewOptions(max_pe=2))
    assert sum(1 for line in lines if line.startswith("PE $")) == 2
    assert "(3 further PEs have been hidden)" in lines
    assert render(StatusModel(), 0.0, ViewOptions())[-1] == "(no status reports yet)"


def test_helpers() -> None:
    assert truncate("abcdefghij", 8) == "abcde..."
    assert truncate("abc", 8) == "abc"
    assert truncate("abcdef", 2) == "ab"
    assert format_uptime(None) == "--:--:--"
    assert format_uptime(3 * 86400 + 5 * 3600 + 7) == "3d 05h"
    assert format_uptime(59.9) == "00:00:59"
    assert short_label(component_id(9, 1)) == "G9 900000000000001"
    model = StatusModel()
    model.handle_report(report(PE1, location="x" * 100), now=0.0)
    line = render(model, 0.0, ViewOptions(max_location=10))[3]
    assert "[xxxxxxx...]" in line


# ------------------------------------------------------------------------ process


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "control_center.rsp_monitor", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


def test_once_prints_a_plain_snapshot_of_real_datagrams() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control_center.rsp_monitor",
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--once",
            "--full",
            "--duration",
            "1.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        target = ("127.0.0.1", int(match.group(1)))
        asap = CspAssociation(receiver_id=PR1, duration_us=None, ppid=11)
        stopped = component_id(2, 0x999)
        with UdpSender(*target) as sender:
            for _ in range(3):
                for sender_id, status, links in (
                    (PR1, "registrar up", ()),
                    (PE1, "idle", (asap,)),
                    (stopped, "leaving", ()),
                ):
                    data = report(
                        sender_id, status=status, associations=links, interval_us=5_000_000
                    )
                    sender.send(encode_csp(data))
                time.sleep(0.1)
            sender.send(encode_csp(report(stopped, final=True)))
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "\x1b" not in out
    assert "PRs: 1  PEs: 1  PUs: 0" in out
    assert "PR $00010000 [alpha: 127.0.0.1]" in out and '"registrar up"' in out
    assert "   -> PR $00010000 ASAP/SCTP" in out
    # The FINAL report purges a discovered component at once.
    assert "$00000999" not in out


def test_bad_arguments_exit_two_with_a_message() -> None:
    for args in (["--update-interval", "50"], ["--port", "70000"], ["--duration", "0"]):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert "rsp-monitor: error:" in result.stderr


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_cli("--address", "127.0.0.1", "--port", str(port), "--once")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("view", ["--compact", "--full"])
def test_views_are_exclusive_choices(view: str) -> None:
    from control_center.rsp_monitor import build_parser

    args = build_parser().parse_args([view])
    assert args.full is (view == "--full")
    assert build_parser().parse_args([]).full is False


def test_scenario_names_components_and_lists_silent_ones(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[scenario]\nname = "s"\n[hosts.local]\nkind = "local"\n'
        '[[components]]\nname = "PR-1"\nkind = "registrar"\nidentifier = 0x10000\n'
        '[[components]]\nname = "PE-7"\nkind = "fractal-pe"\nidentifier = 0x107\n'
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control_center.rsp_monitor",
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--once",
            "--duration",
            "1",
            "--scenario",
            str(scenario),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", proc.stderr.readline())
        assert match
        with UdpSender("127.0.0.1", int(match.group(1))) as sender:
            sender.send(encode_csp(report(PR1, status="up", interval_us=5_000_000)))
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "PR $00010000 PR-1 [alpha: 127.0.0.1]" in out and '"up"' in out
    assert "PE $00000107 PE-7 [] inactive (never-seen)" in out


def test_invalid_scenario_is_reported(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text("[scenario]\nname = 5\n")
    result = run_cli("--scenario", str(scenario), "--once", "--duration", "0.1")
    assert result.returncode == 1
    assert f"{scenario}:2: scenario.name" in result.stderr
