"""``rsp-control-center SCENARIO --start-all --screenshot F --exit-after S`` (offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from .conftest import REPO, scenario_copy


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "control_center.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def test_screenshot_run_starts_renders_and_stops_everything(tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path)
    shot = tmp_path / "shot.png"
    run_dir = tmp_path / "run"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = run_cli(
        str(scenario),
        "--start-all",
        "--screenshot",
        str(shot),
        "--exit-after",
        "6",
        "--run-dir",
        str(run_dir),
        "--size",
        "1200x760",
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"screenshot: {shot}" in result.stdout
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1200, 760)
    # Every component was started, and its log ends with how it was stopped.
    logs = sorted(run_dir.glob("*.log"))
    assert {p.stem for p in logs} == {"PR-1", "PR-2", "PE-1", "PE-2", "PE-3", "PU-1"}
    for log in logs:
        last = log.read_text().strip().splitlines()[-1]
        assert last.startswith("=== ") and ("exited" in last or "killed" in last), (log, last)


def test_without_a_display_it_says_so(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    result = run_cli(str(scenario_copy(tmp_path)), env=env, timeout=60)
    assert result.returncode == 2
    assert "no display" in result.stderr and "--headless" in result.stderr
