"""Fractal kernel speed: iterations per second of each kernel on one core.

Image: 800x600 pixels, MaxIterations 1024, the whole set. FGP iterates z^2 - c,
the mirror image of the textbook z^2 + c set, so the textbook region
Re -2..1 x Im -1.2..1.2 becomes Re -1..2 here; that gives the same amount of
work (about 105 M iterations, printed as "total iterations").

Usage: python bench/kernel.py [--runs N] [--json]

Each compiled/vector kernel computes the whole image N times (median reported;
the numba kernel is compiled before timing). Rates are given per wall-clock
second (the goals) and per CPU second of the computing thread, which stays
meaningful when other processes share the cores. The pure-Python reference is
timed on every 10th row and column, which is enough for a rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fractal_pe.fgp import Algorithm, FgpParameter
from fractal_pe.kernel import (
    available_kernels,
    compute_rows,
    prepare_kernel,
    scalar_reference,
)

PARAM = FgpParameter(800, 600, 1024, Algorithm.MANDELBROT, -1.0, -1.2, 2.0, 1.2, 2.0)
GOALS = {"numpy": 80e6, "numba": 250e6}  # iterations per second
SUBSAMPLE_STRIDE = 10


def iterations_done(values: np.ndarray[Any, Any], max_iterations: int) -> int:
    """Iterations actually performed: value+1 for an escaped pixel, max otherwise."""
    v = values.astype(np.int64)
    return int(np.where(v < max_iterations, v + 1, max_iterations).sum())


def time_kernel(name: str, runs: int) -> tuple[list[float], list[float], np.ndarray[Any, Any]]:
    """Wall-clock and CPU seconds of each run (CPU time shows the cost when cores are shared)."""
    prepare_kernel(name)
    wall = []
    cpu = []
    values: np.ndarray[Any, Any] = np.empty(0)
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        values = compute_rows(PARAM, 0, PARAM.height, kernel=name)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu, values


def time_pure_python(runs: int) -> tuple[list[float], list[float], int]:
    pixels = [
        (x, y)
        for y in range(0, PARAM.height, SUBSAMPLE_STRIDE)
        for x in range(0, PARAM.width, SUBSAMPLE_STRIDE)
    ]
    wall = []
    cpu = []
    iterations = 0
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        values = [scalar_reference(PARAM, x, y) for x, y in pixels]
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        iterations = iterations_done(np.array(values), PARAM.max_iterations)
    return wall, cpu, iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per kernel (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    results: dict[str, Any] = {}
    reference: np.ndarray[Any, Any] | None = None
    total = 0
    for name in available_kernels():
        times, cpu, values = time_kernel(name, args.runs)
        if reference is None:
            reference = values
            total = iterations_done(values, PARAM.max_iterations)
        median = statistics.median(times)
        results[name] = {
            "median_s": median,
            "runs_s": times,
            "median_cpu_s": statistics.median(cpu),
            "iterations_per_s": total / median,
            "iterations_per_cpu_s": total / statistics.median(cpu),
            "goal_iterations_per_s": GOALS[name],
            "goal_met": total / median >= GOALS[name],
            "identical_to_first_kernel": bool(np.array_equal(values, reference)),
        }
    py_times, py_cpu, py_iterations = time_pure_python(max(1, min(args.runs, 3)))
    py_median = statistics.median(py_times)
    results["python"] = {
        "median_s": py_median,
        "runs_s": py_times,
        "median_cpu_s": statistics.median(py_cpu),
        "iterations": py_iterations,
        "iterations_per_s": py_iterations / py_median,
        "iterations_per_cpu_s": py_iterations / statistics.median(py_cpu),
        "subsample_stride": SUBSAMPLE_STRIDE,
    }
    report = {
        "image": {
            "width": PARAM.width,
            "height": PARAM.height,
            "max_iterations": PARAM.max_iterations,
            "c1": [PARAM.c1_real, PARAM.c1_imag],
            "c2": [PARAM.c2_real, PARAM.c2_imag],
        },
        "total_iterations": total,
        "runs": args.runs,
        "kernels": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"image {PARAM.width}x{PARAM.height}, max {PARAM.max_iterations} iterations, "
        f"Re {PARAM.c1_real}..{PARAM.c2_real} x Im {PARAM.c1_imag}..{PARAM.c2_imag} (z^2 - c)"
    )
    print(f"total iterations: {total:,} ({total / 1e6:.1f} M)")
    print(f"{'kernel':<8} {'median':>9} {'M iter/s':>10} {'per CPU s':>10}  goal (wall clock)")
    for label, r in results.items():
        if label == "python":
            note = f"(subsample every {SUBSAMPLE_STRIDE}th row/column)"
        else:
            met = "met" if r["goal_met"] else "NOT met"
            same = "" if r["identical_to_first_kernel"] else ", VALUES DIFFER"
            note = f">= {r['goal_iterations_per_s'] / 1e6:.0f} M/s {met}{same}"
        rate, cpu_rate = r["iterations_per_s"] / 1e6, r["iterations_per_cpu_s"] / 1e6
        print(f"{label:<8} {r['median_s']:>8.3f}s {rate:>10.1f} {cpu_rate:>10.1f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
