"""Pixels per second delivered to a headless fractal PU by 3 fractal PEs, and failovers.

    python bench/demo_throughput.py [--json] [--runs 3] [--width 800 --height 600]

Starts one registrar and three ``fractal-pe`` processes on loopback (TCP
mapping), then runs ``fractal-pu --headless`` several times in three modes:

* ``test-pattern``: PEs draw the cheap test pattern, so the figure is the
  protocol/session path (FGP encode, TCP mapping, PU decode and painting);
* ``fractal``: real Mandelbrot maths with the PEs' default kernel;
* ``failure-after``: test pattern with ``--failure-after 20`` (the demo's
  failure mode): failover counts and times (fault noticed -> first pixel from
  the new PE) taken from the PU's JSON report.

Prints the median over the runs of each mode. Every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import LOOPBACK_REGISTRAR_ARGS, REPO

READY = re.compile(r"ready: ASAP on (\S+) ")
POOL = "BenchFractalPool"
KEY = "hex:" + "3c" * 32


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
        )


def _wait_for(path: Path, pattern: str | re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = regex.search(text)
        if match:
            return match
        time.sleep(0.05)
    raise RuntimeError(f"timeout waiting for {regex.pattern!r} in {path}")


class Cluster:
    def __init__(self, workdir: Path, pe_options: list[str]) -> None:
        self.workdir = workdir
        self.env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY)
        self.procs: list[subprocess.Popen[bytes]] = []
        reg_log = workdir / f"registrar-{time.monotonic_ns()}.log"
        self.procs.append(
            _spawn(
                [
                    "rsplib.registrar.cli",
                    *LOOPBACK_REGISTRAR_ARGS,
                ],
                reg_log,
                self.env,
            )
        )
        self.registrar = _wait_for(reg_log, READY).group(1)
        logs = []
        for i in range(3):
            log = workdir / f"pe{i}-{time.monotonic_ns()}.log"
            logs.append(log)
            self.procs.append(
                _spawn(
                    [
                        "fractal_pe.cli",
                        "--registrar",
                        self.registrar,
                        "--transport",
                        "tcp",
                        "--poolhandle",
                        POOL,
                        "--identifier",
                        f"0x{0xB0 + i:x}",
                        *pe_options,
                    ],
                    log,
                    self.env,
                )
            )
        for log in logs:
            _wait_for(log, "registered \\(registrar", timeout=60.0)

    def run_pu(self, width: int, height: int, sessions: int, tag: str) -> dict[str, Any]:
        report = self.workdir / f"{tag}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fractal_pu.cli",
                "--headless",
                "--registrar",
                self.registrar,
                "--transport",
                "tcp",
                "--poolhandle",
                POOL,
                "--sessions",
                str(sessions),
                "--width",
                str(width),
                "--height",
                str(height),
                "--config",
                str(REPO / "assets" / "fsf" / "01-whole-set.fsf"),
                "--output",
                str(self.workdir / f"{tag}.png"),
                "--report",
                str(report),
                "--loglevel",
                "warning",
            ],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"PU failed ({done.returncode}): {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(report.read_text())
        return result

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _measure(
    workdir: Path, pe_options: list[str], args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    cluster = Cluster(workdir, pe_options)
    rates: list[float] = []
    failovers: list[int] = []
    times: list[float] = []
    try:
        cluster.run_pu(args.width, args.height, args.sessions, f"{tag}-warmup")  # not counted
        for run in range(args.runs):
            report = cluster.run_pu(args.width, args.height, args.sessions, f"{tag}-{run}")
            (image,) = report["images"]
            rates.append(image["pixels"] / (image["total_time_ms"] / 1000.0))
            failovers.append(image["failovers"])
            times.extend(
                f["failover_ms"]
                for cell in image["cells"]
                for f in cell["failovers"]
                if f["failover_ms"] is not None
            )
    finally:
        cluster.close()
    out: dict[str, Any] = {
        "pixels_per_s_median": round(statistics.median(rates)),
        "pixels_per_s_runs": [round(r) for r in rates],
        "failovers_median": statistics.median(failovers),
    }
    if times:
        ordered = sorted(times)
        out["failover_ms_median"] = round(statistics.median(ordered), 2)
        out["failover_ms_p95"] = round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--sessions", type=int, default=9)
    parser.add_argument("--failure-after", type=int, default=20)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "image": f"{args.width}x{args.height}",
        "sessions": args.sessions,
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory(prefix="demo-throughput-") as tmp:
        work = Path(tmp)
        results["test-pattern"] = _measure(work, ["--test-mode"], args, "test")
        results["fractal"] = _measure(work, [], args, "fractal")
        results["failure-after"] = _measure(
            work, ["--test-mode", "--failure-after", str(args.failure_after)], args, "fail"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"image {results['image']}, {args.sessions} sessions, 3 PEs, {args.runs} runs")
        for mode in ("test-pattern", "fractal", "failure-after"):
            r = results[mode]
            line = f"  {mode:14s} {r['pixels_per_s_median']:>10,d} pixels/s"
            if mode == "failure-after":
                line += (
                    f", {r['failovers_median']} failovers/image, failover "
                    f"{r.get('failover_ms_median')} ms median, {r.get('failover_ms_p95')} ms p95"
                )
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
