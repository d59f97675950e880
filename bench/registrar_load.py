"""Load benchmark of one ``rsp-registrar`` process.

Run: ``python bench/registrar_load.py [--json] [--pes 10000] [--duration 10] ...``

The registrar runs as its own process (TCP mapping on loopback); load comes
from other processes (multiprocessing) speaking ASAP over raw TCP-mapping
sockets with pre-encoded messages, so the generators stay cheap:

* holders: ``--pes`` pool elements registered on several connections,
  answering every Endpoint Keep-Alive (and the mapping's heartbeats);
* pool users: ``--pus`` processes doing Handle Resolutions, ``--window``
  requests in flight per connection;
* re-registrars: ``--rereg-procs`` processes re-registering their own PEs,
  as fast as the window allows or at ``--rereg-rate`` per second in total.

Phases (``--phases``): ``keepalive`` (registrar CPU with the holders only,
over at least two keep-alive rounds), ``hr`` (sustained resolutions/s),
``rereg`` (sustained re-registrations/s), ``mixed`` (resolutions plus
re-registrations at ``--mixed-rereg-rate``). Latency is request-to-response
time as a generator sees it (it includes queueing behind the window).
Registrar CPU comes from /proc/PID/stat over each phase's measuring window;
``*_per_core_s`` divides a rate by that CPU fraction: what the registrar
would sustain with a whole core to itself (the load generators share the
machine's cores with it).

Goals (issue): >= 20,000 resolutions/s and >= 12,000 re-registrations/s
sustained; 10,000 PEs with 5 s keep-alives at < 30 % of one core.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import multiprocessing as mp
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.wire.asap import EndpointKeepAliveAck, HandleResolution, Registration
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import PPID, AsapType, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport
from rsplib.wire.tcpmap import RecordType, data_record, encode_record
from tests.support import LOOPBACK_REGISTRAR_ARGS

_HEADER = struct.Struct("!BBHII")
_KA_TYPE = int(AsapType.ENDPOINT_KEEP_ALIVE)
_PES_PER_CONNECTION = 2000
READY_RE = re.compile(r"ready: ASAP on (?P<host>[\d.]+):(?P<port>\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------- raw TCP mapping


def _record(payload: bytes) -> bytes:
    return encode_record(data_record(PPID.ASAP, payload))


class Connection:
    """A blocking-socket TCP-mapping connection with a tiny record parser."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buffer = bytearray()
        self.outgoing = bytearray()

    def read_records(self) -> list[tuple[int, bytes]]:
        """Reads what the socket has; returns (record type, payload) of whole records.

        Heartbeat requests are answered here, so the registrar never drops us.
        """
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("registrar closed the connection")
        buf = self.buffer
        buf += chunk
        out: list[tuple[int, bytes]] = []
        offset = 0
        size = len(buf)
        while size - offset >= 12:
            rtype, _flags, _stream, length, _ppid = _HEADER.unpack_from(buf, offset)
            if size - offset < length:
                break
            payload = bytes(buf[offset + 12 : offset + length])
            offset += length
            if rtype == RecordType.HEARTBEAT_REQUEST:
                self.outgoing += _HEADER.pack(RecordType.HEARTBEAT_ACK, 0, 0, length, 0) + payload
            else:
                out.append((rtype, payload))
        del buf[:offset]
        return out

    def flush(self) -> None:
        if self.outgoing:
            self.sock.sendall(self.outgoing)
            self.outgoing.clear()


def make_pe_messages(pool: bytes, identifier: int) -> tuple[bytes, bytes]:
    """(registration record, keep-alive-ack record) for one PE, encoded once."""
    pe = PoolElementParam(
        identifier=identifier,
        home_registrar_id=0,
        registration_life=90_000,
        user_transport=TcpTransport(
            port=20000 + identifier % 40000, addresses=(ipaddress.ip_address("127.0.0.1"),)
        ),
        policy=PolicyParam(PolicyType.ROUND_ROBIN),
    )
    registration = _record(encode_asap(Registration(pool, pe)))
    ack = _record(encode_asap(EndpointKeepAliveAck(pool, identifier)))
    return registration, ack


# ----------------------------------------------------------------------- workers


@dataclass
class Window:
    start: float
    end: float


def _register_all(
    connections: list[Connection], regs: list[list[bytes]], acks: dict[int, bytes]
) -> int:
    """Registers every PE, up to 256 in flight per connection, all connections at once
    (so none falls silent long enough to miss the mapping's heartbeats); returns the
    keep-alive acks sent meanwhile."""
    ka_acks = 0
    todo = {id(conn): deque(batch) for conn, batch in zip(connections, regs, strict=True)}
    pending = dict.fromkeys(todo, 0)
    selector = selectors.DefaultSelector()
    for conn in connections:
        selector.register(conn.sock, selectors.EVENT_READ, conn)

    def refill(conn: Connection) -> None:
        queue = todo[id(conn)]
        burst = []
        while queue and pending[id(conn)] < 256:
            burst.append(queue.popleft())
            pending[id(conn)] += 1
        conn.outgoing += b"".join(burst)
        conn.flush()

    for conn in connections:
        refill(conn)
    while any(pending.values()):
        for key, _ in selector.select(timeout=1.0):
            conn = key.data
            for rtype, payload in conn.read_records():
                if rtype != RecordType.DATA:
                    continue
                if payload[0] == AsapType.REGISTRATION_RESPONSE:
                    if payload[1] & 0x01:
                        raise RuntimeError(f"registration rejected: {decode_asap(payload)}")
                    pending[id(conn)] -= 1
                elif payload[0] == _KA_TYPE:
                    ka_acks += _answer_keepalive(conn, payload, acks)
            refill(conn)
    selector.close()
    return ka_acks


def _answer_keepalive(conn: Connection, payload: bytes, acks: dict[int, bytes]) -> int:
    msg = decode_asap(payload)
    identifier = getattr(msg, "identifier", None)
    ack = acks.get(identifier) if identifier is not None else None
    if ack is None:
        return 0
    conn.outgoing += ack
    return 1


def holder_worker(
    address: tuple[str, int],
    pool: bytes,
    ids: list[int],
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """Keeps ``ids`` registered and answers their keep-alives until ``stop`` is set."""
    messages = {i: make_pe_messages(pool, i) for i in ids}
    acks = {i: m[1] for i, m in messages.items()}
    connections = []
    regs = []
    for start in range(0, len(ids), _PES_PER_CONNECTION):
        chunk = ids[start : start + _PES_PER_CONNECTION]
        connections.append(Connection(address))
        regs.append([messages[i][0] for i in chunk])
    ka_acks = _register_all(connections, regs, acks)
    ready.set()
    selector = selectors.DefaultSelector()
    for conn in connections:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.2):
            conn = key.data
            for rtype, payload in conn.read_records():
                if rtype == RecordType.DATA and payload[0] == _KA_TYPE:
                    ka_acks += _answer_keepalive(conn, payload, acks)
            conn.flush()
    results.put(("holder", {"keepalive_acks": ka_acks}))
    for conn in connections:
        conn.sock.close()


def _pipeline(
    conn: Connection,
    requests: list[bytes],
    response_type: int,
    window_size: int,
    rate: float,
    measure: Window,
    acks: dict[int, bytes],
) -> tuple[int, list[float]]:
    """Sends ``requests`` round-robin with up to ``window_size`` in flight (optionally
    paced to ``rate``/s); counts responses and latencies inside the measuring window."""
    sent_at: deque[float] = deque()
    count = 0
    latencies: list[float] = []
    index = 0
    total = len(requests)
    next_send = time.monotonic()
    wall_to_mono = time.monotonic() - time.time()
    end_mono = measure.end + wall_to_mono + 0.2
    start_m = measure.start + wall_to_mono
    stop_m = measure.end + wall_to_mono
    interval = 1.0 / rate if rate > 0 else 0.0
    conn.sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(conn.sock, selectors.EVENT_READ)
    while True:
        now = time.monotonic()
        if now >= end_mono:
            break
        burst = []
        while len(sent_at) < window_size and (interval == 0.0 or next_send <= now):
            burst.append(requests[index])
            index = (index + 1) % total
            sent_at.append(now)
            if interval:
                next_send += interval
        if burst:
            conn.outgoing += b"".join(burst)
        if conn.outgoing:
            try:
                sent = conn.sock.send(conn.outgoing)
                del conn.outgoing[:sent]
            except BlockingIOError:
                pass
        if interval and len(sent_at) < window_size:
            wait = max(0.0, min(0.05, next_send - time.monotonic()))
        else:
            wait = 0.05  # window full (or unpaced): wait for responses
        if not selector.select(timeout=wait):
            continue
        try:
            records = conn.read_records()
        except BlockingIOError:
            continue
        now = time.monotonic()
        for rtype, payload in records:
            if rtype != RecordType.DATA:
                continue
            kind = payload[0]
            if kind == response_type:
                started = sent_at.popleft()
                if start_m <= now < stop_m:
                    count += 1
                    latencies.append(now - started)
            elif kind == _KA_TYPE:
                _answer_keepalive(conn, payload, acks)
    selector.close()
    return count, latencies


def pu_worker(
    address: tuple[str, int],
    pool: bytes,
    window_size: int,
    measure: Window,
    results: Any,
) -> None:
    conn = Connection(address)
    request = _record(encode_asap(HandleResolution(pool, None)))
    _sleep_until(measure.start - 1.0)
    count, latencies = _pipeline(
        conn, [request], AsapType.HANDLE_RESOLUTION_RESPONSE, window_size, 0.0, measure, {}
    )
    conn.sock.close()
    results.put(("hr", {"count": count, "latencies": _sample(latencies)}))


def rereg_worker(
    address: tuple[str, int],
    pool: bytes,
    ids: list[int],
    window_size: int,
    rate: float,
    measure: Window,
    results: Any,
) -> None:
    messages = {i: make_pe_messages(pool, i) for i in ids}
    acks = {i: m[1] for i, m in messages.items()}
    conn = Connection(address)
    regs = [messages[i][0] for i in ids]
    _register_all([conn], [regs], acks)
    _sleep_until(measure.start - 1.0)
    count, latencies = _pipeline(
        conn, regs, AsapType.REGISTRATION_RESPONSE, window_size, rate, measure, acks
    )
    conn.sock.close()
    results.put(("rereg", {"count": count, "latencies": _sample(latencies)}))


def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


def _sample(values: list[float], limit: int = 50_000) -> list[float]:
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit)]


# ----------------------------------------------------------------------- registrar process


class Registrar:
    def __init__(self, extra: list[str], profile: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="rsp-bench-")
        self.log = Path(self.dir) / "registrar.log"
        # --profile: run it under cProfile (written at its clean SIGTERM exit).
        profiler = ["-m", "cProfile", "-o", profile] if profile else []
        args = [
            sys.executable,
            *profiler,
            "-m",
            "rsplib.registrar.cli",
            *LOOPBACK_REGISTRAR_ARGS,
            "--loglevel",
            "warning",
            *extra,
        ]
        # INFO only for the ready line: the bench reads the bound port from it.
        args[args.index("warning")] = "info"
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=self._log_file, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = READY_RE.search(self.log.read_text(errors="replace"))
            if match:
                self.address = (match["host"], int(match["port"]))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"registrar did not start:\n{self.log.read_text(errors='replace')}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # fields[11], fields[12] = utime, stime (fields 14 and 15 of proc(5))
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _cpu_over(registrar: Registrar, window: Window) -> float:
    """Registrar CPU as a fraction of one core over ``window`` (wall-clock times)."""
    _sleep_until(window.start)
    cpu0, t0 = registrar.cpu_seconds(), time.monotonic()
    _sleep_until(window.end)
    cpu1, t1 = registrar.cpu_seconds(), time.monotonic()
    return (cpu1 - cpu0) / (t1 - t0)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _collect(results: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    return [results.get(timeout=120) for _ in range(count)]


def _summarise(
    name: str, parts: list[dict[str, Any]], seconds: float, cpu: float
) -> dict[str, Any]:
    count = sum(p["count"] for p in parts)
    latencies = [v for p in parts for v in p["latencies"]]
    rate = count / seconds
    return {
        f"{name}_per_s": rate,
        # What one full core would sustain at the measured CPU cost per message; on a
        # shared 2-core machine the registrar rarely gets a whole core during the run.
        f"{name}_per_core_s": rate / cpu if cpu > 0 else float("nan"),
        f"{name}_p50_ms": _percentile(latencies, 0.50) * 1e3,
        f"{name}_p99_ms": _percentile(latencies, 0.99) * 1e3,
        "registrar_cpu": cpu,
    }


# ----------------------------------------------------------------------- phases


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    pool = b"BenchPool"
    rereg_pool = b"BenchReregPool"
    sink = TraceSink() if args.trace else None
    registrar = Registrar(
        [
            "--endpoint-keepalive-interval",
            str(args.keepalive_ms),
            "--max-hr-items",
            str(args.hr_items),
            *(["--trace", f"127.0.0.1:{sink.port}"] if sink is not None else []),
        ],
        profile=args.profile,
    )
    report: dict[str, Any] = {
        "pes": args.pes,
        "pus": args.pus,
        "window": args.window,
        "duration_s": args.duration,
        "keepalive_interval_ms": args.keepalive_ms,
    }
    results = ctx.Queue()
    holders: list[Any] = []
    stop = ctx.Event()
    try:
        # Holders: N PEs, registered on several connections, answering keep-alives.
        ids = list(range(1, args.pes + 1))
        per = max(1, -(-len(ids) // args.holder_procs))
        readies = []
        t_reg = time.monotonic()
        for start in range(0, len(ids), per):
            ready = ctx.Event()
            proc = ctx.Process(
                target=holder_worker,
                args=(registrar.address, pool, ids[start : start + per], ready, stop, results),
            )
            proc.start()
            holders.append(proc)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(timeout=120):
                raise RuntimeError("holders did not finish registering")
        report["initial_registration_s"] = time.monotonic() - t_reg
        report["registrar_rss_mb_with_pes"] = registrar.rss_mb()

        if "keepalive" in args.phases:
            # Two keep-alive rounds at least, after the registration burst settled.
            seconds = max(args.duration, 2.2 * args.keepalive_ms / 1000)
            window = Window(time.time() + 1.0, time.time() + 1.0 + seconds)
            report["keepalive_registrar_cpu"] = _cpu_over(registrar, window)

        if "hr" in args.phases:
            window = Window(time.time() + 2.0, time.time() + 2.0 + args.duration)
            procs = [
                ctx.Process(
                    target=pu_worker, args=(registrar.address, pool, args.window, window, results)
                )
                for _ in range(args.pus)
            ]
            for p in procs:
                p.start()
            cpu = _cpu_over(registrar, window)
            parts = [r for _, r in _collect(results, len(procs))]
            for p in procs:
                p.join()
            report.update(
                {
                    f"hr_{k}" if k == "registrar_cpu" else k: v
                    for k, v in _summarise("hr", parts, args.duration, cpu).items()
                }
            )

        rereg_ids = list(range(10_000_001, 10_000_001 + args.rereg_pes))
        chunk = max(1, -(-len(rereg_ids) // args.rereg_procs))
        if "rereg" in args.phases:
            window = Window(time.time() + 3.0, time.time() + 3.0 + args.duration)
            procs = [
                ctx.Process(
                    target=rereg_worker,
                    args=(
                        registrar.address,
                        rereg_pool,
                        rereg_ids[i : i + chunk],
                        args.window,
                        args.rereg_rate / args.rereg_procs if args.rereg_rate else 0.0,
                        window,
                        results,
                    ),
                )
                for i in range(0, len(rereg_ids), chunk)
            ]
            for p in procs:
                p.start()
            cpu = _cpu_over(registrar, window)
            parts = [r for _, r in _collect(results, len(procs))]
            for p in procs:
                p.join()
            report.update(
                {
                    f"rereg_{k}" if k == "registrar_cpu" else k: v
                    for k, v in _summarise("rereg", parts, args.duration, cpu).items()
                }
            )

        if "mixed" in args.phases:
            # Other PE ids than the rereg phase's: a PE id stays bound to the connection that
            # registered it until the registrar has seen that connection go.
            mixed_ids = [i + len(rereg_ids) for i in rereg_ids]
            window = Window(time.time() + 3.0, time.time() + 3.0 + args.duration)
            procs = [
                ctx.Process(
                    target=pu_worker, args=(registrar.address, pool, args.window, window, results)
                )
                for _ in range(args.pus)
            ]
            procs += [
                ctx.Process(
                    target=rereg_worker,
                    args=(
                        registrar.address,
                        rereg_pool,
                        mixed_ids[i : i + chunk],
                        args.window,
                        args.mixed_rereg_rate / args.rereg_procs,
                        window,
                        results,
                    ),
                )
                for i in range(0, len(mixed_ids), chunk)
            ]
            for p in procs:
                p.start()
            cpu = _cpu_over(registrar, window)
            collected = _collect(results, len(procs))
            for p in procs:
                p.join()
            hr = _summarise("hr", [r for k, r in collected if k == "hr"], args.duration, cpu)
            rr = _summarise("rereg", [r for k, r in collected if k == "rereg"], args.duration, cpu)
            # Both loads share the registrar's CPU: a per-core figure would mislead here.
            report.update({f"mixed_{k}": v for k, v in {**hr, **rr}.items() if "per_core" not in k})

        stop.set()
        acks = [r for _, r in _collect(results, len(holders))]
        report["keepalive_acks_sent"] = sum(r["keepalive_acks"] for r in acks)
        report["registrar_alive"] = registrar.proc.poll() is None
    except BaseException:
        print(registrar.log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        stop.set()
        for proc in holders:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        registrar.stop()
        if sink is not None:
            report.update(sink.close())
    report["trace"] = bool(args.trace)
    return report


class TraceSink:
    """The receiving end of the registrar's trace: a UDP socket drained by a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams = 0
        self.records = 0
        self.last_seq = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            self.datagrams += 1
            lines = data.splitlines()
            self.records += len(lines)
            match = re.search(rb'"seq":(\d+)', lines[-1]) if lines else None
            if match:
                self.last_seq = int(match[1])

    def close(self) -> dict[str, Any]:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        made = self.last_seq + 1
        return {
            "trace_records_received": self.records,
            "trace_records_made": made,
            "trace_records_dropped": max(0, made - self.records),
        }


def compare_trace(args: argparse.Namespace) -> dict[str, Any]:
    """Resolutions/s with the registrar's trace off and on, alternating runs; medians.

    On a shared machine the registrar's share of a core varies from run to run, so the
    cost is also given per core (resolutions per CPU-second of the registrar), which
    measures the work tracing adds rather than how much CPU the registrar happened to get.
    """
    args.phases = {"hr"}
    rates: dict[bool, list[float]] = {False: [], True: []}
    per_core: dict[bool, list[float]] = {False: [], True: []}
    dropped: list[int] = []
    for _ in range(args.trace_compare):
        for traced in (False, True):
            args.trace = traced
            result = run(args)
            rates[traced].append(result["hr_per_s"])
            per_core[traced].append(result["hr_per_core_s"])
            if traced:
                dropped.append(result["trace_records_dropped"])

    def cost(off: float, on: float) -> float:
        return 100.0 * (off - on) / off if off else 0.0

    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    core_off = statistics.median(per_core[False])
    core_on = statistics.median(per_core[True])
    return {
        "hr_per_s_trace_off": off,
        "hr_per_s_trace_on": on,
        "hr_runs_trace_off": rates[False],
        "hr_runs_trace_on": rates[True],
        "trace_cost_percent": cost(off, on),
        "hr_per_core_s_trace_off": core_off,
        "hr_per_core_s_trace_on": core_on,
        "trace_cost_percent_per_core": cost(core_off, core_on),
        "trace_goal_percent": 15.0,
        "trace_records_dropped_median": statistics.median(dropped),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--pes", type=int, default=10_000, help="registered PEs (holders)")
    parser.add_argument("--holder-procs", type=int, default=2)
    parser.add_argument("--pus", type=int, default=2, help="pool-user processes")
    parser.add_argument("--window", type=int, default=64, help="requests in flight per PU")
    parser.add_argument("--rereg-procs", type=int, default=2)
    parser.add_argument("--rereg-pes", type=int, default=1000, help="PEs that re-register")
    parser.add_argument("--rereg-rate", type=float, default=0.0, help="0 = as fast as possible")
    parser.add_argument("--mixed-rereg-rate", type=float, default=2000.0)
    parser.add_argument("--hr-items", type=int, default=3)
    parser.add_argument("--keepalive-ms", type=int, default=5000)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the registrar into FILE")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--phases", default="keepalive,hr,rereg,mixed", help="comma list of phases")
    parser.add_argument("--trace", action="store_true", help="registrar traces to a local sink")
    parser.add_argument(
        "--trace-compare",
        type=int,
        metavar="N",
        default=0,
        help="run the hr phase N times each with tracing off and on (alternating); report "
        "the medians and the cost of tracing (goal: at most 15 %% fewer resolutions/s)",
    )
    args = parser.parse_args(argv)
    args.phases = set(args.phases.split(","))
    report = compare_trace(args) if args.trace_compare else run(args)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for key in sorted(report):
            value = report[key]
            text = f"{value:,.2f}" if isinstance(value, float) else str(value)
            print(f"{key:34s} {text}")
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
