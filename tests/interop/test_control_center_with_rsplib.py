"""The control center runs rsplib's programs next to ours, on virtual hosts, over kernel SCTP.

``scenarios/rsplib-story.toml`` on ``scenarios/rsplib-lab.toml``: our registrar and
``rspregistrar``, one fractal PE of each kind in one pool, our headless pool user and
rsplib's ``fractalpooluser``. The story waits for rsplib's components in the control
center's monitor (their own status reports), kills our PE while it computes for our pool
user and expects the image complete with no pixel lost: the cells move to rsplib's PE,
which cannot read our signed cookie, so they restart there (check 6, from our PE to
rsplib's; the other direction is in ``test_fractal_with_rsplib.py``). Needs root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.rsplib_programs import need_programs
from tests.support import REPO

pytestmark = [pytest.mark.sctp, pytest.mark.timeout(600)]

STORY = REPO / "scenarios" / "rsplib-story.toml"
RSPLIB_COMPONENTS = ("PR-rsplib", "PE-rsplib", "PU-rsplib")


def test_the_mixed_story_passes_and_shows_rsplibs_components(tmp_path: Path) -> None:
    need_programs("rspregistrar", "rspserver", "fractalpooluser")
    if os.geteuid() != 0:
        pytest.skip("virtual hosts need root (network namespaces)")
    report_path = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "control_center.cli", "--headless",
        "--storyboard", str(STORY), "--report", str(report_path),
    ]  # fmt: skip
    log_path = tmp_path / "control-center.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            code = process.wait(timeout=540)
        except subprocess.TimeoutExpired:
            # SIGINT: the control center stops the scenario and removes its namespaces.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise AssertionError(f"story still running:\n{log_path.read_text()[-4000:]}") from None
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-6000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    for name in RSPLIB_COMPONENTS:
        component = report["components"][name]
        # Seen through its own status reports, under the identifier the scenario gave it.
        assert component["reports"] > 0 and not component["discovered"], (name, component)
        assert component["status"], (name, component)
    pool_user = report["pool_users"]["PU-1"]
    assert pool_user["complete"] and pool_user["missing_pixels"] == 0
    # Our PE's cells restarted on rsplib's: what it had sent was computed again.
    assert pool_user["failovers"] >= 1 and pool_user["pixels_computed_twice"] > 0, pool_user
    assert "0x00000102" in pool_user["pixels_per_pe"], pool_user
