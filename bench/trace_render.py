"""Can the control center show a busy trace? 2,000 records/s into the window, stalls measured.

Run: ``python bench/trace_render.py [--json] [--rate 2000] [--duration 20]``

A sender thread writes trace datagrams over UDP, paced at ``--rate`` records per second
(each message traced by both ends: a ``tx`` record of the sender and an ``rx`` record of
the receiver, between the components of ``scenarios/local.toml``). They take the real
path: the control center's trace collector (its own asyncio thread, as in the engine),
the trace store, and the window (offscreen), which draws them as dots on the map in real
time and as arrows in the sequence chart. A 10 ms timer in the window's thread measures
how late it fires (CPU time other processes took is subtracted, as in the window tests).

Goal (issue): no stall over 100 ms at 2,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.scenario_file import load_scenario
from control_center.trace_collector import TraceCollector
from rsplib.trace.buffer import TraceBuffer
from rsplib.trace.record import MessageRecord, encode_record
from tests.control_center.gui.conftest import StallMeter

REPO = Path(__file__).resolve().parents[1]
TYPES = ("ENDPOINT_KEEP_ALIVE", "HANDLE_RESOLUTION", "FGP_DATA", "HANDLE_UPDATE", "COOKIE")


def _pairs(ids: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for a in ids for b in ids if a != b]


def sender(port: int, ids: list[int], rate: float, duration: float, stop: Any) -> int:
    """Send ``rate`` records/s for ``duration`` s (pairs of tx/rx records); returns the count."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    buffers = {c: TraceBuffer(rate=1e9, burst=10**9, max_queue=10**9) for c in ids}
    pairs = _pairs(ids)
    sent = 0
    start = time.monotonic()
    step = 0.01
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= duration:
            break
        due = int(elapsed * rate) - sent
        for _ in range(max(0, due) // 2):
            a, b = pairs[sent % len(pairs)]
            kind = TYPES[sent % len(TYPES)]
            now = time.time()
            for record in (
                MessageRecord(time=now, component=a, seq=buffers[a].next_seq, direction="tx",
                              peer=f"127.0.0.{b % 250 + 1}:1", local=f"127.0.0.{a % 250 + 1}:1",
                              proto="asap", type=kind, pool_handle="FractalGeneratorPool"),
                MessageRecord(time=now, component=b, seq=buffers[b].next_seq, direction="rx",
                              peer=f"127.0.0.{a % 250 + 1}:1", local=f"127.0.0.{b % 250 + 1}:1",
                              proto="asap", type=kind, pool_handle="FractalGeneratorPool"),
            ):  # fmt: skip
                buffer = buffers[record.component]
                buffer.next_seq += 1
                buffer.push(encode_record(record))
            sent += 2
        for buffer in buffers.values():
            for datagram in buffer.pop_datagrams():
                sock.sendto(datagram, ("127.0.0.1", port))
        time.sleep(step)
    sock.close()
    return sent


def _send_process(
    port: int, ids: list[int], rate: float, duration: float, stop: Any, count: Any
) -> None:
    count.value = sender(port, ids, rate, duration, stop)


def run(args: argparse.Namespace) -> dict[str, Any]:
    app = QApplication.instance() or QApplication([])
    scenario = load_scenario(REPO / "scenarios" / "local.toml")
    bridge = EngineBridge(scenario, csp_port=0)  # not started: no processes
    window = MainWindow(bridge)
    window.quit_on_close = False
    window.resize(1400, 860)
    window.show()
    window.messages_dock.raise_()
    ids = [c.csp_id for c in scenario.components if c.csp_id is not None]

    loop = asyncio.new_event_loop()
    collector = TraceCollector(bridge.trace_store)
    ready = threading.Event()

    def engine() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(collector.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=engine, daemon=True)
    thread.start()
    ready.wait(10)
    meter = StallMeter()
    # The components are other processes: so is the sender (no GIL shared with the window).
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    sent_count = ctx.Value("q", 0)
    feeder = ctx.Process(
        target=_send_process,
        args=(collector.address[1], ids, args.rate, args.duration, stop, sent_count),
        daemon=True,
    )
    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    meter.timer.timeout.connect(tick)
    meter.start()
    cpu_start = time.thread_time()
    feeder.start()
    deadline = time.monotonic() + args.duration + 1.0
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)
    stop.set()
    gui_cpu = time.thread_time() - cpu_start
    feeder.join(5)
    worst = meter.stop()
    loop.call_soon_threadsafe(collector.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    view = window.trace_view
    report = {
        "rate_target": args.rate,
        "records_sent": int(sent_count.value),
        "records_received": bridge.trace_store.records,
        "records_per_s": bridge.trace_store.records / args.duration,
        "chart_rows": len(view.sequence.chart.rows),
        "dots_shown": view.dots.shown,
        "dots_skipped": view.dots.skipped,
        "worst_stall_ms": worst * 1000,
        "tick_gap_p99_ms": statistics.quantiles(gaps, n=100)[98] * 1000 if len(gaps) > 100 else 0,
        "goal_stall_ms": 100.0,
        # CPU the window's thread used (share of one core): robust on a loaded machine.
        "gui_thread_cpu_percent": 100.0 * gui_cpu / (args.duration + 1.0),
    }
    window.trace_view.stop()
    window.bridge.signals.stopped.emit()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for key, value in sorted(report.items()):
            print(f"{key:22s} {value:,.1f}" if isinstance(value, float) else f"{key:22s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
