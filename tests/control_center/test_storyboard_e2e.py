"""The shipped storyboards, run by rsp-control-center with real processes.

Each story runs on a copy of its shipped scenario that differs only where
tests on a shared machine must differ: the registrars and the monitor take
free ports (port 0), and the lab uses a subnet of its own. The stories
themselves are the shipped files, unchanged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from control_center.launchers.netns import lab_requirements_problem

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "control_center.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def copy_story(tmp_path: Path, story: str, scenario: str, **subs: str) -> Path:
    """The shipped story next to a test copy of its scenario (with ``subs`` applied)."""
    text = (SCENARIOS / scenario).read_text()
    text = re.sub(r"(?m)^(asap_port|enrp_port) = \d+", r"\1 = 0", text)
    text = re.sub(r"(?m)^csp_port = \d+", "csp_port = 0", text)
    for old, new in subs.items():
        text = text.replace(old, new)
    (tmp_path / scenario).write_text(text)
    target = tmp_path / story
    target.write_text((SCENARIOS / story).read_text())
    return target


def step_by_action(report: dict[str, Any], action: str, index: int = 0) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in report["steps"] if s["action"] == action]
    return steps[index]


def check_common(result: subprocess.CompletedProcess[str], report_path: Path) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert report["passed"] is True and report["error"] is None
    assert all(step["outcome"] == "ok" for step in report["steps"])
    assert "storyboard PASSED" in result.stdout
    pu = report["pool_users"]["PU-1"]
    assert pu["complete"] and pu["missing_pixels"] == 0 and pu["images"] == 1
    # Everything was stopped at the end, registrars included.
    assert not any(state["active"] for state in report["components"].values())
    return report


def test_failover_story_passes(tmp_path: Path) -> None:
    story = copy_story(tmp_path, "failover-story.toml", "local.toml")
    report_path = tmp_path / "report.json"
    result = run_cli(
        "--headless",
        "--storyboard",
        str(story),
        "--run-dir",
        str(tmp_path / "run"),
        "--report",
        str(report_path),
    )
    report = check_common(result, report_path)
    killed = step_by_action(report, "kill")
    stopped = step_by_action(report, "stop")
    assert killed["target"] != stopped["target"]
    expect_killed = step_by_action(report, "expect", 0)
    expect_stopped = step_by_action(report, "expect", 1)
    assert expect_killed["target"] == killed["target"]
    assert expect_killed["measured_s"] <= 1.5
    assert expect_stopped["target"] == stopped["target"]
    assert expect_stopped["measured_s"] < 1.0
    pu = report["pool_users"]["PU-1"]
    assert pu["failovers"] >= 2, pu
    assert f"{killed['target']} killed by SIGKILL" in result.stdout
    assert f"{killed['target']} inactive (timeout)" in result.stdout
    assert f"{stopped['target']} inactive (final)" in result.stdout
    assert (tmp_path / "run" / "PU-1.png").exists()


def test_unplug_story_passes(tmp_path: Path) -> None:
    problem = lab_requirements_problem()
    if problem is not None:
        pytest.skip(problem)
    # A subnet of its own, so a lab of another test run cannot collide with this one.
    story = copy_story(tmp_path, "unplug-story.toml", "lab.toml", **{"10.77.0.": "10.78.9."})
    report_path = tmp_path / "report.json"
    result = run_cli(
        "--headless",
        "--storyboard",
        str(story),
        "--run-dir",
        str(tmp_path / "run"),
        "--report",
        str(report_path),
    )
    report = check_common(result, report_path)
    unplugged = step_by_action(report, "unplug")
    assert unplugged["target"].startswith("pe")
    assert "host of PE-" in unplugged["target"]
    assert f"host {unplugged['target'].split()[0]} unplugged" in result.stdout
    assert report["pool_users"]["PU-1"]["failovers"] >= 1


# ------------------------------------------------------------------------------ CLI


def test_without_headless_and_without_a_display_exit_two() -> None:
    # Without --headless the Qt window opens; with no display it refuses clearly.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    result = subprocess.run(
        [sys.executable, "-m", "control_center.cli", str(SCENARIOS / "local.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 2
    assert "no display" in result.stderr
    assert "--headless" in result.stderr


def test_bad_storyboard_and_mismatched_names_exit_two(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[storyboard]\nscenario = "x.toml"\n[[step]]\ndo = "fly"\n')
    result = run_cli("--headless", "--storyboard", str(broken), timeout=30)
    assert result.returncode == 2
    assert f"{broken}:4: step[0].do: unknown or missing action 'fly'" in result.stderr

    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[step]]\ndo = "kill"\ncomponent = "PE-7"\n')
    result = run_cli(
        str(SCENARIOS / "local.toml"), "--headless", "--storyboard", str(wrong), timeout=30
    )
    assert result.returncode == 2
    assert f"{wrong}:1: step[0].component: no component named 'PE-7'" in result.stderr

    nameless = tmp_path / "nameless.toml"
    nameless.write_text('[[step]]\ndo = "start-all"\n')
    result = run_cli("--headless", "--storyboard", str(nameless), timeout=30)
    assert result.returncode == 2
    assert "names no scenario" in result.stderr


def test_invalid_scenario_exit_two(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text('[scenario]\nname = "x"\ncsp_port = "high"\n')
    result = run_cli(str(scenario), "--headless", "--duration", "1", timeout=30)
    assert result.returncode == 2
    assert f"{scenario}:3: scenario.csp_port" in result.stderr


ONE_REGISTRAR = """\
[scenario]
name = "one registrar"
csp_port = 0
[hosts.local]
kind = "local"
[[components]]
name = "PR-1"
kind = "registrar"
identifier = 0x10001
asap_port = 0
enrp_port = 0
"""


def test_plain_headless_run_ends_cleanly_on_sigint(tmp_path: Path) -> None:
    scenario = tmp_path / "one.toml"
    scenario.write_text(ONE_REGISTRAR)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control_center.cli",
            str(scenario),
            "--headless",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "PR-1 active" in line:
                break
        assert any("PR-1 active" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = "".join(seen) + out
    assert proc.returncode == 0, text + err
    assert "interrupted: the run ends here" in text and "PR-1 inactive (final)" in text
    assert "storyboard PASSED" in text
    assert "PR-1 exited with status 0" in text
