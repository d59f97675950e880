#!/usr/bin/env python3
"""Makes the README screenshots from real runs, offscreen (no display needed).

    python scripts/screenshots.py [--out docs/img] [--keep DIR]

1. The control center during a failover: the shipped failover storyboard
   (scenarios/failover-story.toml) plays in a 1600x1000 window on a copy of
   scenarios/local.toml with free ports and the map background of
   assets/maps; the window (map and the pool user's picture side by side)
   and the map alone are saved when the pool user fails over after the
   story's kill.
2. The fractal viewer after a failover: the same scenario with the pool user
   started as its viewer window (``--viewers``); a pool element serving it is
   killed mid-image and the viewer saves its window once the image is done.

Every image is a PNG under 300 KB. The JSON reports and all intermediate
screenshots stay in ``--keep DIR`` (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
BACKGROUND = REPO / "assets" / "maps" / "demo-zones.svg"
MAX_BYTES = 300_000

VIEWER_STORY = """\
# The viewer's screenshot: compute, kill the serving pool element, let the image finish.
[storyboard]
name = "Viewer screenshot"
scenario = "local.toml"
timeout_s = 120

[options."PE-*"]
block_delay = 40

[options."PU-1"]
screenshot = "{shot}"
exit_after = 16
interimagetime = 60

[[step]]
do = "start-all"

[[step]]
do = "wait-until"
computing = "PU-1"
timeout_s = 30

[[step]]
do = "wait"
seconds = 2

[[step]]
do = "kill"
serving = "PU-1"

[[step]]
do = "expect"
exited = "PU-1"
within_s = 40
"""


def scenario_copy(directory: Path) -> Path:
    """scenarios/local.toml with free ports and the map background found from a copy."""
    text = (SCENARIOS / "local.toml").read_text()
    text = re.sub(r"(?m)^(asap_port|enrp_port) = \d+", r"\1 = 0", text)
    text = re.sub(r"(?m)^csp_port = \d+", "csp_port = 0", text)
    text = re.sub(r"(?m)^background = .*$", f'background = "{BACKGROUND}"', text)
    path = directory / "local.toml"
    path.write_text(text)
    return path


def run_window(args: list[str], env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "control_center.cli", *args]
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=REPO, env=env, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"screenshots: the run failed with status {result.returncode}")


def copy_image(source: Path, target: Path) -> None:
    if not source.exists():
        raise SystemExit(f"screenshots: {source} was not written")
    shutil.copyfile(source, target)
    size = target.stat().st_size
    print(f"{target} ({size // 1024} KB)")
    if size > MAX_BYTES:
        raise SystemExit(f"screenshots: {target} is larger than {MAX_BYTES // 1000} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img"), help="where the PNGs go")
    parser.add_argument("--keep", help="directory for reports and all intermediate images")
    parser.add_argument(
        "--skip-viewer", action="store_true", help="only the control-center screenshots"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rsp-screenshots-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}

    # 1. the map and the window during the failover story
    story_dir = work / "failover"
    story_dir.mkdir(exist_ok=True)
    scenario_copy(story_dir)
    story = story_dir / "failover-story.toml"
    story.write_text((SCENARIOS / "failover-story.toml").read_text())
    shots = story_dir / "shots"
    run_window(
        [
            "--storyboard",
            str(story),
            "--screenshot-dir",
            str(shots),
            "--close-when-done",
            "--size",
            "1600x1000",
            "--run-dir",
            str(story_dir / "run"),
        ],
        env,
    )
    copy_image(shots / "window-failover.png", out / "control-center-window.png")
    copy_image(shots / "map-failover.png", out / "control-center-map-failover.png")

    # 2. the viewer after a failover
    if not args.skip_viewer:
        viewer_dir = work / "viewer"
        viewer_dir.mkdir(exist_ok=True)
        scenario_copy(viewer_dir)
        shot = viewer_dir / "viewer.png"
        story = viewer_dir / "viewer-story.toml"
        story.write_text(VIEWER_STORY.format(shot=shot))
        run_window(
            [
                "--storyboard",
                str(story),
                "--viewers",
                "--close-when-done",
                "--run-dir",
                str(viewer_dir / "run"),
            ],
            env,
        )
        copy_image(shot, out / "fractal-viewer-failover.png")
    print(f"reports and intermediate images: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
