"""Load benchmark of one registrar process: ours, or rsplib's side by side with ours.

Run: ``python bench/registrar_load.py [--json] [--pes 10000] [--duration 10] ...``
Over kernel SCTP (inside the SCTP lab where this kernel lacks it), against our
``rsp-registrar`` and rsplib's ``rspregistrar`` with the same load generator on the
same CPU, printing both and their ratio::

    bash scripts/sctp-lab.sh -- python bench/registrar_load.py --transport sctp \\
        --registrar both --pes 1000

The registrar runs as its own process on loopback (the TCP mapping by default,
``--transport sctp`` for kernel SCTP); load comes from other processes
(multiprocessing) speaking ASAP over raw sockets with pre-encoded messages, so the
generators stay cheap:

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
sustained; 10,000 PEs with 5 s keep-alives at < 30 % of one core. Side by side
with rsplib's C registrar: at least half its rate, aiming for the same.
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
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.transport.sctp_kernel import IPPROTO_SCTP, SCTP_NODELAY, SOL_SCTP, pack_sndinfo
from rsplib.transport.sctp_kernel import SCTP_SNDINFO as SCTP_SNDINFO_CMSG
from rsplib.wire.asap import EndpointKeepAliveAck, HandleResolution, Registration
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import PPID, AsapType, PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, SctpTransport, TcpTransport
from rsplib.wire.tcpmap import RecordType, data_record, encode_record

_HEADER = struct.Struct("!BBHII")
_KA_TYPE = int(AsapType.ENDPOINT_KEEP_ALIVE)
_PES_PER_CONNECTION = 2000
READY_RE = re.compile(r"ready: ASAP on (?P<host>[\d.]+):(?P<port>\d+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------- raw channels


def _record(payload: bytes) -> bytes:
    return encode_record(data_record(PPID.ASAP, payload))


class Connection:
    """A raw ASAP connection: the TCP mapping (records) or kernel SCTP (one message per
    SCTP message, PPID 11). Messages are queued in wire form (:meth:`wire`), so the
    generators encode each one once."""

    def __init__(self, address: tuple[str, int], transport: str) -> None:
        self.sctp = transport == "sctp"
        if self.sctp:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
            self.sock.setsockopt(SOL_SCTP, SCTP_NODELAY, 1)
            self.sock.settimeout(10)
            self.sock.connect(address)
        else:
            self.sock = socket.create_connection(address, timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.buffer = bytearray()
        self.outgoing = bytearray()
        self.messages: deque[bytes] = deque()
        self._sndinfo = [(IPPROTO_SCTP, SCTP_SNDINFO_CMSG, pack_sndinfo(PPID.ASAP))]

    def wire(self, payload: bytes) -> bytes:
        """``payload`` as this transport sends it."""
        return payload if self.sctp else _record(payload)

    def queue(self, units: list[bytes]) -> None:
        if self.sctp:
            self.messages.extend(units)
        else:
            self.outgoing += b"".join(units)

    def has_output(self) -> bool:
        return bool(self.messages) if self.sctp else bool(self.outgoing)

    def send_some(self) -> None:
        """Send what the socket takes now (non-blocking sockets)."""
        try:
            if self.sctp:
                while self.messages:
                    self.sock.sendmsg([self.messages[0]], self._sndinfo)
                    self.messages.popleft()
            elif self.outgoing:
                sent = self.sock.send(self.outgoing)
                del self.outgoing[:sent]
        except BlockingIOError:
            pass

    def flush(self) -> None:
        """Send everything queued (blocking sockets)."""
        if self.sctp:
            while self.messages:
                self.sock.sendmsg([self.messages.popleft()], self._sndinfo)
        elif self.outgoing:
            self.sock.sendall(self.outgoing)
            self.outgoing.clear()

    def read(self) -> list[bytes]:
        """ASAP messages that arrived (at least one read: call it when readable).

        TCP-mapping heartbeat requests are answered here, so the registrar never drops us.
        """
        if self.sctp:
            return self._read_sctp()
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("registrar closed the connection")
        buf = self.buffer
        buf += chunk
        out: list[bytes] = []
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
            elif rtype == RecordType.DATA:
                out.append(payload)
        del buf[:offset]
        return out

    def _read_sctp(self) -> list[bytes]:
        out: list[bytes] = []
        flags = 0
        while True:
            try:
                data, _ancillary, msg_flags, _address = self.sock.recvmsg(1 << 16, 0, flags)
            except BlockingIOError:
                return out
            if not data:
                if out:
                    return out
                raise ConnectionError("registrar closed the association")
            self.buffer += data
            if msg_flags & socket.MSG_EOR:
                out.append(bytes(self.buffer))
                self.buffer.clear()
            flags = socket.MSG_DONTWAIT


def make_pe_messages(pool: bytes, identifier: int, conn: Connection) -> tuple[bytes, bytes]:
    """(registration, keep-alive ack) for one PE in ``conn``'s wire form, encoded once.

    The PE's user transport names the transport it registers over (rsplib keeps a pool
    to one transport protocol) and the address it registers from.
    """
    address = (ipaddress.ip_address(conn.sock.getsockname()[0]),)
    port = 20000 + identifier % 40000
    pe = PoolElementParam(
        identifier=identifier,
        home_registrar_id=0,
        registration_life=90_000,
        user_transport=SctpTransport(port, address) if conn.sctp else TcpTransport(port, address),
        policy=PolicyParam(PolicyType.ROUND_ROBIN),
    )
    registration = conn.wire(encode_asap(Registration(pool, pe)))
    ack = conn.wire(encode_asap(EndpointKeepAliveAck(pool, identifier)))
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
        conn.queue(burst)
        conn.flush()

    for conn in connections:
        refill(conn)
    while any(pending.values()):
        for key, _ in selector.select(timeout=1.0):
            conn = key.data
            for payload in conn.read():
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
    conn.queue([ack])
    return 1


def holder_worker(
    address: tuple[str, int],
    transport: str,
    pool: bytes,
    ids: list[int],
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """Keeps ``ids`` registered and answers their keep-alives until ``stop`` is set."""
    connections = []
    regs = []
    acks: dict[int, bytes] = {}
    for start in range(0, len(ids), _PES_PER_CONNECTION):
        chunk = ids[start : start + _PES_PER_CONNECTION]
        conn = Connection(address, transport)
        messages = {i: make_pe_messages(pool, i, conn) for i in chunk}
        acks.update((i, m[1]) for i, m in messages.items())
        connections.append(conn)
        regs.append([messages[i][0] for i in chunk])
    ka_acks = _register_all(connections, regs, acks)
    ready.set()
    selector = selectors.DefaultSelector()
    for conn in connections:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.2):
            conn = key.data
            for payload in conn.read():
                if payload[0] == _KA_TYPE:
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
    answers: list[bytes] | None = None,
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
    drain_until = end_mono + 5.0
    while True:
        now = time.monotonic()
        # After the window: send nothing more, collect what is in flight (leaving with
        # requests outstanding makes a registrar answer a closed association).
        draining = now >= end_mono
        if draining and (not sent_at or now >= drain_until):
            break
        burst = []
        while not draining and len(sent_at) < window_size and (interval == 0.0 or next_send <= now):
            burst.append(requests[index])
            index = (index + 1) % total
            sent_at.append(now)
            if interval:
                next_send += interval
        if burst:
            conn.queue(burst)
        if conn.has_output():
            conn.send_some()
        if interval and len(sent_at) < window_size:
            wait = max(0.0, min(0.05, next_send - time.monotonic()))
        else:
            wait = 0.05  # window full (or unpaced): wait for responses
        if not selector.select(timeout=wait):
            continue
        try:
            messages = conn.read()
        except BlockingIOError:
            continue
        now = time.monotonic()
        for payload in messages:
            kind = payload[0]
            if kind == response_type:
                started = sent_at.popleft()
                if start_m <= now < stop_m:
                    count += 1
                    latencies.append(now - started)
                    if answers is not None and len(answers) < 16:
                        answers.append(payload)
            elif kind == _KA_TYPE:
                _answer_keepalive(conn, payload, acks)
    selector.close()
    return count, latencies


def pu_worker(
    address: tuple[str, int],
    transport: str,
    pool: bytes,
    hr_items: int,
    window_size: int,
    measure: Window,
    results: Any,
) -> None:
    conn = Connection(address, transport)
    # rsplib's Handle Resolution option asks every registrar for the same answer size.
    request = conn.wire(encode_asap(HandleResolution(pool, hr_items)))
    _sleep_until(measure.start - 1.0)
    answers: list[bytes] = []
    count, latencies = _pipeline(
        conn, [request], AsapType.HANDLE_RESOLUTION_RESPONSE, window_size, 0.0, measure, {},
        answers,
    )  # fmt: skip
    conn.sock.close()
    sizes = [len(getattr(decode_asap(a), "pool_elements", ())) for a in answers]
    results.put(("hr", {"count": count, "latencies": _sample(latencies), "pes_per_hr": sizes}))


def rereg_worker(
    address: tuple[str, int],
    transport: str,
    pool: bytes,
    ids: list[int],
    window_size: int,
    rate: float,
    measure: Window,
    results: Any,
) -> None:
    conn = Connection(address, transport)
    messages = {i: make_pe_messages(pool, i, conn) for i in ids}
    acks = {i: m[1] for i, m in messages.items()}
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
    """The registrar under test, as its own process with its log in a temporary directory.

    ``kind`` "ours" is ``rsp-registrar``; "rsplib" is rsplib's ``rspregistrar`` (kernel
    SCTP only), configured alike: on ``address``, no announces, PE addresses of any scope
    accepted, the same keep-alive interval.
    """

    def __init__(
        self,
        kind: str,
        transport: str,
        address: str,
        keepalive_ms: int,
        hr_items: int,
        profile: str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="rsp-bench-")
        self.log = Path(self.dir) / "registrar.log"
        if kind == "rsplib":
            port = _free_sctp_port(address)
            self.address = (address, port)
            args = [
                "rspregistrar",
                f"-asap={address}:{port}",
                f"-enrp={address}:{_free_sctp_port(address)}",
                "-asapannounce=off",
                "-enrpannounce=off",
                "-minaddressscope=loopback",
                f"-endpointkeepalivetransmissioninterval={keepalive_ms}",
                "-loglevel=1",
            ]
        else:
            # --profile: run it under cProfile (written at its clean SIGTERM exit).
            profiler = ["-m", "cProfile", "-o", profile] if profile else []
            args = [
                sys.executable,
                *profiler,
                "-m",
                "rsplib.registrar.cli",
                *("--asap", f"{address}:0", "--enrp", f"{address}:0"),
                *("--asap-announce", "off", "--enrp-announce", "off"),
                *("--min-address-scope", "loopback", "--transport", transport),
                "--endpoint-keepalive-interval",
                str(keepalive_ms),
                "--max-hr-items",
                str(hr_items),
                # INFO only for the ready line: the bench reads the bound port from it.
                "--loglevel",
                "info",
                *extra,
            ]
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            if kind == "rsplib":
                _wait_accepting(self.address, self.proc)
            else:
                self.address = self._ready_address()
        except BaseException:
            self.stop()
            raise

    def _ready_address(self) -> tuple[str, int]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = READY_RE.search(self.log.read_text(errors="replace"))
            if match:
                return (match["host"], int(match["port"]))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
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


def _free_sctp_port(address: str) -> int:
    """An SCTP port on ``address`` that is free right now (rspregistrar takes no port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _wait_accepting(address: tuple[str, int], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP) as sock:
                sock.settimeout(2)
                sock.connect(address)
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rspregistrar does not accept on {address}") from None
            time.sleep(0.1)


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
    collected = [results.get(timeout=120) for _ in range(count)]
    failures = [r["traceback"] for kind, r in collected if kind == "error"]
    if failures:
        raise RuntimeError("a load generator failed:\n" + "\n".join(failures))
    return collected


def _reporting(worker: Any) -> Any:
    """Run ``worker``; if it fails, put its traceback where the results go."""

    def run(*args: Any) -> None:
        try:
            worker(*args)
        except BaseException:
            args[-1].put(("error", {"traceback": traceback.format_exc()}))
            raise

    return run


def _summarise(
    name: str, parts: list[dict[str, Any]], seconds: float, cpu: float
) -> dict[str, Any]:
    count = sum(p["count"] for p in parts)
    latencies = [v for p in parts for v in p["latencies"]]
    rate = count / seconds
    sizes = [n for p in parts for n in p.get("pes_per_hr", ())]
    extra = {f"{name}_pes_per_answer": sum(sizes) / len(sizes)} if sizes else {}
    return {
        **extra,
        f"{name}_per_s": rate,
        # What one full core would sustain at the measured CPU cost per message; on a
        # shared 2-core machine the registrar rarely gets a whole core during the run.
        f"{name}_per_core_s": rate / cpu if cpu > 0 else float("nan"),
        f"{name}_p50_ms": _percentile(latencies, 0.50) * 1e3,
        f"{name}_p99_ms": _percentile(latencies, 0.99) * 1e3,
        "registrar_cpu": cpu,
    }


# ----------------------------------------------------------------------- phases


def run(args: argparse.Namespace, kind: str = "ours") -> dict[str, Any]:
    ctx = mp.get_context("fork")
    pool = b"BenchPool"
    rereg_pool = b"BenchReregPool"
    transport = args.transport
    sink = TraceSink() if args.trace and kind == "ours" else None
    registrar = Registrar(
        kind,
        transport,
        args.address,
        args.keepalive_ms,
        args.hr_items,
        args.profile,
        extra=["--trace", f"127.0.0.1:{sink.port}"] if sink is not None else [],
    )
    report: dict[str, Any] = {
        "registrar": kind,
        "transport": transport,
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
                target=_reporting(holder_worker),
                args=(
                    registrar.address,
                    transport,
                    pool,
                    ids[start : start + per],
                    ready,
                    stop,
                    results,
                ),
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
                    target=_reporting(pu_worker),
                    args=(
                        registrar.address,
                        transport,
                        pool,
                        args.hr_items,
                        args.window,
                        window,
                        results,
                    ),
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
                    target=_reporting(rereg_worker),
                    args=(
                        registrar.address,
                        transport,
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
                    target=_reporting(pu_worker),
                    args=(
                        registrar.address,
                        transport,
                        pool,
                        args.hr_items,
                        args.window,
                        window,
                        results,
                    ),
                )
                for _ in range(args.pus)
            ]
            procs += [
                ctx.Process(
                    target=_reporting(rereg_worker),
                    args=(
                        registrar.address,
                        transport,
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


#: Figures compared side by side (higher is better except for the latencies).
COMPARED = (
    "hr_per_s", "hr_per_core_s", "hr_p99_ms",
    "rereg_per_s", "rereg_per_core_s", "rereg_p99_ms",
    "keepalive_registrar_cpu",
)  # fmt: skip


def compare(ours: dict[str, Any], rsplib: dict[str, Any]) -> dict[str, float]:
    """ours / rsplib for each compared figure both runs have."""
    ratios = {}
    for key in COMPARED:
        a, b = ours.get(key), rsplib.get(key)
        if isinstance(a, float | int) and isinstance(b, float | int) and b:
            ratios[key] = a / b
    return ratios


def _median_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key: the median of the numbers (the value itself for anything else)."""
    merged: dict[str, Any] = {}
    for key in reports[0]:
        values = [r[key] for r in reports if key in r]
        numbers = [v for v in values if isinstance(v, float | int) and not isinstance(v, bool)]
        if len(numbers) != len(values):
            merged[key] = values[0]
            continue
        median = statistics.median(numbers)
        integral = all(isinstance(v, int) for v in numbers) and median == int(median)
        merged[key] = int(median) if integral else median
    return merged


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
    parser.add_argument(
        "--transport", choices=("tcp", "sctp"), default="tcp",
        help="TCP mapping (default) or kernel SCTP",
    )  # fmt: skip
    parser.add_argument(
        "--registrar", choices=("ours", "rsplib", "both"), default="ours",
        help="registrar under test; rsplib's and both need --transport sctp",
    )  # fmt: skip
    parser.add_argument(
        "--address", default="127.0.0.1",
        help="where the registrar listens and the load comes from (rsplib's registrar "
        "accepts no loopback PE addresses: give it a private address)",
    )  # fmt: skip
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
    parser.add_argument("--profile", metavar="FILE", help="cProfile our registrar into FILE")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--phases", default="keepalive,hr,rereg,mixed", help="comma list of phases")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="runs per registrar, alternating which goes first; medians are printed",
    )  # fmt: skip
    parser.add_argument("--trace", action="store_true", help="our registrar traces to a local sink")
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
    if args.trace_compare:
        report = compare_trace(args)
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            _print_table({"ours": report})
        return 0
    if args.registrar != "ours" and args.transport != "sctp":
        parser.error("rsplib's registrar speaks kernel SCTP only: add --transport sctp")
    if args.registrar != "ours" and shutil.which("rspregistrar") is None:
        parser.error("rspregistrar is not installed (Debian package rsplib-registrar)")
    kinds = ["ours", "rsplib"] if args.registrar == "both" else [args.registrar]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    ratios: list[dict[str, float]] = []
    for round_index in range(max(1, args.repeat)):
        # Alternate the order, so a machine getting busier or quieter favours neither.
        order = kinds if round_index % 2 == 0 else kinds[::-1]
        round_reports = {kind: run(args, kind) for kind in order}
        for kind, report in round_reports.items():
            runs[kind].append(report)
        if len(kinds) == 2:
            ratios.append(compare(round_reports["ours"], round_reports["rsplib"]))
    reports = {kind: _median_report(kind_runs) for kind, kind_runs in runs.items()}
    ratio = _median_report(ratios) if ratios else None
    if args.json:
        result: dict[str, Any] = reports[kinds[0]] if len(kinds) == 1 else dict(reports)
        if ratio is not None:
            result["ours_to_rsplib"] = ratio
        result["runs"] = max(1, args.repeat)
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_table(reports, ratio)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


def _print_table(
    reports: dict[str, dict[str, Any]], ratios: dict[str, float] | None = None
) -> None:
    def text(value: Any) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    kinds = list(reports)
    header = f"{'':34s}" + "".join(f"{kind:>16s}" for kind in kinds)
    print(header + (f"{'ours/rsplib':>14s}" if ratios is not None else ""))
    keys = sorted(set().union(*(r.keys() for r in reports.values())))
    for key in keys:
        row = f"{key:34s}" + "".join(f"{text(reports[k].get(key, '-')):>16s}" for k in kinds)
        if ratios is not None and key in ratios:
            row += f"{ratios[key]:>14.2f}"
        print(row)


if __name__ == "__main__":
    sys.exit(main())
