"""Hostile load against one ``rsp-registrar``: does a well-behaved client stay served?

Run: ``python bench/hostile.py [--json] [--seconds 6] [--phases garbage,slow,...]``

One registrar process (TCP mapping on loopback, default options) and one pool element
registered at it. Then, one after the other, bounded floods from other processes, each
from its own loopback source address (127.0.0.2 ...), as different hosts would:

* ``garbage``: connections sending random bytes, records with impossible lengths and
  broken ASAP messages, reconnecting as they are closed;
* ``slow``: 300 connections trickling one byte of a record every half second;
* ``nonreaders``: 20 connections pushing heartbeat requests and resolutions without ever
  reading an answer;
* ``registrations``: connections registering PEs as fast as the window allows, dropping
  the connection (and so every PE on it) at the per-connection limit, and again;
* ``enrp``: four rogue peers (a Presence, then Handle Updates of new PEs at full speed).

During each flood a well-behaved pool user on 127.0.0.1 resolves the pool every 5 ms over
its connection and, at the end, from a new connection. Printed per phase: its Handle
Resolution latency p50/p99/max, how many requests failed, whether a new client was
served, the registrar's CPU share and the client's own scheduling noise (how late its
sleeps end: on a busy machine latencies include that); overall: the registrar's peak RSS
(VmHWM) and the tracebacks in its log.

Goals (issue): well-behaved p99 under 50 ms in every flood, peak RSS under 150 MB, no
traceback. Floods are bounded in time (``--seconds``) and in connections and messages.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import multiprocessing as mp
import os
import random
import selectors
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.wire.asap import (
    EndpointKeepAliveAck,
    HandleResolution,
    Registration,
    decode_asap,
    encode_asap,
)
from rsplib.wire.constants import PPID, AsapType, PolicyType, UpdateAction
from rsplib.wire.enrp import HandleUpdate, Presence, encode_enrp
from rsplib.wire.params import PolicyParam, PoolElementParam, ServerInformation, TcpTransport
from rsplib.wire.tcpmap import RecordType, data_record, encode_record, heartbeat_request
from tests.registrar.service_helpers import RegistrarProcess, registrar_args

POOL = b"HostileBenchPool"
FLOOD_POOL = b"FloodPool"
GOOD_PE = 0x600D
_HEADER = struct.Struct("!BBHII")
PHASES = ("idle", "garbage", "slow", "nonreaders", "registrations", "enrp")
#: Pause between the well-behaved client's resolutions.
PROBE_INTERVAL = 0.005
#: A resolution not answered within this counts as failed.
PROBE_TIMEOUT = 1.0
#: Scheduling priority of the flood processes (see _flood_main).
FLOOD_NICENESS = 10


def asap_record(payload: bytes) -> bytes:
    return encode_record(data_record(PPID.ASAP, payload))


def enrp_record(payload: bytes) -> bytes:
    return encode_record(data_record(PPID.ENRP, payload))


def pe_param(identifier: int, port: int, home: int = 0) -> PoolElementParam:
    address = ipaddress.ip_address("127.0.0.1")
    return PoolElementParam(
        identifier=identifier,
        home_registrar_id=home,
        registration_life=30_000,
        user_transport=TcpTransport(port, (address,)),
        policy=PolicyParam(PolicyType.ROUND_ROBIN),
        asap_transport=TcpTransport(port + 1, (address,)) if home else None,
    )


def connect(address: tuple[str, int], source: str, timeout: float = 2.0) -> socket.socket | None:
    try:
        sock = socket.create_connection(address, timeout=timeout, source_address=(source, 0))
    except OSError:
        return None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Reader:
    """Whole records from a socket; answers heartbeat requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def read(self) -> list[tuple[int, bytes]]:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk
        records: list[tuple[int, bytes]] = []
        offset = 0
        while len(self.buffer) - offset >= 12:
            kind, _flags, _stream, length, _ppid = _HEADER.unpack_from(self.buffer, offset)
            if len(self.buffer) - offset < length:
                break
            payload = bytes(self.buffer[offset + 12 : offset + length])
            offset += length
            if kind == RecordType.HEARTBEAT_REQUEST:
                ack = _HEADER.pack(RecordType.HEARTBEAT_ACK, 0, 0, length, 0) + payload
                self.sock.sendall(ack)
            else:
                records.append((kind, payload))
        del self.buffer[:offset]
        return records


# ----------------------------------------------------------------------- the good side


def good_pe(address: tuple[str, int], stop: Any) -> None:
    """The pool element everybody resolves: registers and answers keep-alives."""
    sock = connect(address, "127.0.0.1")
    assert sock is not None
    sock.sendall(asap_record(encode_asap(Registration(POOL, pe_param(GOOD_PE, 41000)))))
    ack = asap_record(encode_asap(EndpointKeepAliveAck(POOL, GOOD_PE)))
    reader = Reader(sock)
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            for kind, payload in reader.read():
                if kind == RecordType.DATA and payload[:1] == bytes([AsapType.ENDPOINT_KEEP_ALIVE]):
                    sock.sendall(ack)
        except TimeoutError:
            continue
        except OSError:
            return


def probe(address: tuple[str, int], seconds: float, results: Any) -> None:
    """The well-behaved pool user: sequential resolutions, then one from a new connection."""
    request = asap_record(encode_asap(HandleResolution(POOL)))
    latencies: list[float] = []
    # How late the client's own 5 ms sleeps end: the machine's scheduling noise, which
    # every latency includes too (a busy shared machine shows here, not a slow registrar).
    oversleep: list[float] = []
    failures = 0
    sock = connect(address, "127.0.0.1")
    reader = Reader(sock) if sock is not None else None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sock is None or reader is None:
            failures += 1
            sock = connect(address, "127.0.0.1")
            reader = Reader(sock) if sock is not None else None
            time.sleep(PROBE_INTERVAL)
            continue
        started = time.monotonic()
        try:
            sock.settimeout(PROBE_TIMEOUT)
            sock.sendall(request)
            answered = False
            while not answered:
                for kind, payload in reader.read():
                    if kind == RecordType.DATA and payload[:1] == bytes(
                        [AsapType.HANDLE_RESOLUTION_RESPONSE]
                    ):
                        pes = decode_asap(payload).pool_elements  # type: ignore[attr-defined]
                        answered = True
                        if not any(pe.identifier == GOOD_PE for pe in pes):
                            failures += 1
            latencies.append(time.monotonic() - started)
        except OSError:
            failures += 1
            sock.close()
            sock = reader = None
        before_sleep = time.monotonic()
        time.sleep(PROBE_INTERVAL)
        oversleep.append(time.monotonic() - before_sleep - PROBE_INTERVAL)
    if sock is not None:
        sock.close()
    served = False
    fresh = connect(address, "127.0.0.1")
    if fresh is not None:
        with contextlib.suppress(OSError):
            fresh.settimeout(PROBE_TIMEOUT * 2)
            fresh.sendall(request)
            fresh_reader = Reader(fresh)
            while not served:
                served = any(
                    p[:1] == bytes([AsapType.HANDLE_RESOLUTION_RESPONSE])
                    for _k, p in fresh_reader.read()
                )
        fresh.close()
    results.put((latencies, failures, served, oversleep))


# ----------------------------------------------------------------------- floods


def flood_garbage(address: tuple[str, int], _enrp: tuple[str, int], seconds: float) -> int:
    """Connections with random bytes, impossible lengths and broken messages."""
    rng = random.Random(1)
    valid = encode_asap(Registration(FLOOD_POOL, pe_param(77, 42000)))
    payloads: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(4096),
        lambda: _HEADER.pack(1, 0, 0, 0x7FFF_FFFF, 11) + rng.randbytes(64),
        lambda: _HEADER.pack(1, 0, 0, 2 * 1024 * 1024, 12) + rng.randbytes(4096),
        lambda: asap_record(_mutate(valid, rng)) * 50,
    ]
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and sent < 200_000:
        sock = connect(address, "127.0.0.2", timeout=0.5)
        if sock is None:
            time.sleep(0.01)
            continue
        with contextlib.suppress(OSError):
            sock.sendall(rng.choice(payloads)())
            sent += 1
        sock.close()
    return sent


def _mutate(message: bytes, rng: random.Random) -> bytes:
    data = bytearray(message)
    for _ in range(3):
        data[rng.randrange(4, len(data))] = rng.randrange(256)
    return bytes(data)


def flood_slow(address: tuple[str, int], _enrp: tuple[str, int], seconds: float) -> int:
    """300 connections each trickling one byte of a record every half second."""
    record = asap_record(encode_asap(HandleResolution(FLOOD_POOL)))
    sources = ["127.0.0.3", "127.0.0.4", "127.0.0.5"]
    conns: dict[socket.socket, int] = {}
    opened = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while len(conns) < 300 and opened < 3000:
            sock = connect(address, sources[opened % 3], timeout=0.5)
            opened += 1
            if sock is not None:
                sock.setblocking(False)
                conns[sock] = 0
        for sock, position in list(conns.items()):
            try:
                sock.send(record[position % len(record) : position % len(record) + 1])
                conns[sock] = position + 1
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                del conns[sock]
        time.sleep(0.5)
    for sock in conns:
        sock.close()
    return opened


def flood_nonreaders(address: tuple[str, int], _enrp: tuple[str, int], seconds: float) -> int:
    """20 connections each pushing 1 MiB of resolutions (and a heartbeat request or two)
    and never reading an answer; a closed one is replaced, 400 connections at most."""
    heartbeat = encode_record(heartbeat_request(b"\0" * 8))
    resolution = asap_record(encode_asap(HandleResolution(POOL)))
    chunk = heartbeat + resolution * 2048
    conns: dict[socket.socket, int] = {}
    opened = 0
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while len(conns) < 20 and opened < 400:
            sock = connect(address, "127.0.0.6", timeout=0.5)
            opened += 1
            if sock is None:
                break
            sock.setblocking(False)
            conns[sock] = 0
        for sock, pushed in list(conns.items()):
            if pushed >= 1 << 20:
                continue  # its share is sent: now it only never reads
            try:
                count = sock.send(chunk)
                conns[sock] = pushed + count
                sent += count
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                del conns[sock]
        # Closed by the registrar? (Without reading: poll for the hang-up.)
        for sock in list(conns):
            with contextlib.suppress(OSError):
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    sock.close()
                    del conns[sock]
        time.sleep(0.02)
    for sock in conns:
        sock.close()
    return sent


def flood_registrations(address: tuple[str, int], _enrp: tuple[str, int], seconds: float) -> int:
    """Registrations as fast as a window of 256 allows; reconnect at the PE limit."""
    per_connection = 4096  # the registrar's default max PEs per connection
    next_id = 0x10_0000
    registered = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and registered < 1_000_000:
        sock = connect(address, "127.0.0.7", timeout=0.5)
        if sock is None:
            time.sleep(0.01)
            continue
        reader = Reader(sock)
        sock.settimeout(1.0)
        in_flight = 0
        done = 0
        try:
            while done < per_connection and time.monotonic() < end:
                batch = []
                while in_flight < 256 and done + in_flight < per_connection:
                    pe = pe_param(next_id, 20000 + next_id % 40000)
                    batch.append(asap_record(encode_asap(Registration(FLOOD_POOL, pe))))
                    next_id += 1
                    in_flight += 1
                if batch:
                    sock.sendall(b"".join(batch))
                answers = sum(
                    1
                    for kind, payload in reader.read()
                    if kind == RecordType.DATA
                    and payload[:1] == bytes([AsapType.REGISTRATION_RESPONSE])
                )
                in_flight -= answers
                done += answers
                registered += answers
        except OSError:
            pass
        sock.close()  # every PE registered over it goes with it
    return registered


def flood_enrp(_asap: tuple[str, int], address: tuple[str, int], seconds: float) -> int:
    """Four rogue peers: a Presence each, then Handle Updates of new PEs at full speed."""
    sel = selectors.DefaultSelector()
    peers = []
    for index in range(4):
        sock = connect(address, f"127.0.0.{8 + index}")
        if sock is None:
            continue
        server_id = 0xBAD00000 + index
        info = ServerInformation(
            server_id, TcpTransport(40000 + index, (ipaddress.ip_address("127.0.0.1"),))
        )
        sock.sendall(enrp_record(encode_enrp(Presence(server_id, 0, 0xFFFF, info))))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, Reader(sock))
        peers.append((sock, server_id))
    sent = 0
    next_id = 1
    end = time.monotonic() + seconds
    while time.monotonic() < end and sent < 2_000_000:
        for sock, server_id in peers:
            batch = []
            for _ in range(128):
                pe = pe_param(next_id, 30000 + next_id % 30000, home=server_id)
                update = HandleUpdate(server_id, 0, UpdateAction.ADD_PE, FLOOD_POOL, pe)
                batch.append(enrp_record(encode_enrp(update)))
                next_id += 1
            with contextlib.suppress(BlockingIOError, OSError):
                sock.send(b"".join(batch))
                sent += len(batch)
        for key, _mask in sel.select(timeout=0):
            with contextlib.suppress(OSError):
                key.data.read()
    for sock, _server_id in peers:
        sock.close()
    return sent


FLOODS: dict[str, Callable[[tuple[str, int], tuple[str, int], float], int]] = {
    "garbage": flood_garbage,
    "slow": flood_slow,
    "nonreaders": flood_nonreaders,
    "registrations": flood_registrations,
    "enrp": flood_enrp,
}


def _flood_main(name: str, asap: Any, enrp: Any, seconds: float, results: Any) -> None:
    # A remote attacker costs the registrar's host no CPU; here the attacker shares the
    # machine, so it yields the CPU to the registrar and the measuring client first.
    os.nice(FLOOD_NICENESS)
    results.put((name, FLOODS[name](asap, enrp, seconds)))


# ----------------------------------------------------------------------- running


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_phase(ctx: Any, registrar: RegistrarProcess, name: str, seconds: float) -> dict[str, Any]:
    probes = ctx.Queue()
    floods = ctx.Queue()
    prober = ctx.Process(target=probe, args=(registrar.asap, seconds, probes))
    attackers = []
    if name != "idle":
        attackers.append(
            ctx.Process(
                target=_flood_main, args=(name, registrar.asap, registrar.enrp, seconds, floods)
            )
        )
    for proc in attackers:
        proc.start()
    time.sleep(0.3)  # the flood is on
    prober.start()
    cpu_before, wall_before = _cpu_seconds(registrar.pid), time.monotonic()
    peak = 0.0
    while prober.is_alive():
        peak = max(peak, _rss_mb(registrar.pid, "VmRSS"))
        time.sleep(0.05)
    cpu = (_cpu_seconds(registrar.pid) - cpu_before) / (time.monotonic() - wall_before)
    latencies, failures, served, oversleep = probes.get(timeout=10)
    prober.join()
    volume = 0
    for proc in attackers:
        proc.join(timeout=seconds + 30)
        if proc.is_alive():
            proc.kill()
        with contextlib.suppress(Exception):
            volume = floods.get(timeout=1)[1]
    time.sleep(1.0)  # let the registrar settle before the next phase
    return {
        "phase": name,
        "requests": len(latencies),
        "failed": failures,
        "p50_ms": _percentile(latencies, 0.50) * 1e3,
        "p99_ms": _percentile(latencies, 0.99) * 1e3,
        "max_ms": max(latencies, default=float("nan")) * 1e3,
        "new_client_served": served,
        "client_oversleep_p99_ms": _percentile(oversleep, 0.99) * 1e3,
        "rss_mb_peak_in_phase": peak,
        # The registrar's share of one core: high means the flood keeps it busy; low with
        # long latencies means the machine gave it little CPU.
        "registrar_cpu": cpu,
        "flood_volume": volume,
        "registrar_alive": registrar.alive(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="rsp-hostile-") as tmp:
        args_list = [a for a in registrar_args(0x40571E) if a not in ("--loglevel", "debug")]
        registrar = RegistrarProcess(
            [*args_list, "--loglevel", "info"], Path(tmp) / "registrar.log"
        ).wait_ready()
        stop = ctx.Event()
        pe = ctx.Process(target=good_pe, args=(registrar.asap, stop))
        pe.start()
        try:
            time.sleep(0.5)
            phases = [run_phase(ctx, registrar, name, args.seconds) for name in args.phases]
            log = registrar.log_text()
            report = {
                "seconds_per_phase": args.seconds,
                "phases": phases,
                "peak_rss_mb": _rss_mb(registrar.pid, "VmHWM"),
                "tracebacks": log.count("Traceback"),
                "log_lines": len(log.splitlines()),
                "registrar_alive": registrar.alive(),
            }
        finally:
            stop.set()
            pe.join(timeout=5)
            if pe.is_alive():
                pe.kill()
            registrar.stop()
    report["goals_met"] = (
        all(p["p99_ms"] < 50 and p["new_client_served"] for p in report["phases"])
        and report["peak_rss_mb"] < 150
        and report["tracebacks"] == 0
    )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each flood")
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}"
    )
    args = parser.parse_args()
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(f"{'phase':<14}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'new client':>12}{'RSS MB':>8}{'noise p99':>11}{'PR CPU':>8}")  # fmt: skip
    for p in report["phases"]:
        print(
            f"{p['phase']:<14}{p['requests']:>9}{p['failed']:>8}{p['p50_ms']:>9.2f}"
            f"{p['p99_ms']:>9.2f}{p['max_ms']:>9.1f}"
            f"{'served' if p['new_client_served'] else 'REFUSED':>12}"
            f"{p['rss_mb_peak_in_phase']:>8.1f}{p['client_oversleep_p99_ms']:>11.2f}"
            f"{p['registrar_cpu']:>8.0%}"
        )
    print(
        f"peak RSS {report['peak_rss_mb']:.1f} MB, tracebacks {report['tracebacks']}, "
        f"log lines {report['log_lines']}, goals {'met' if report['goals_met'] else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
