"""Handlespace benchmark: five phases in one pool, per policy and pool size.

Phases (operations per second each):
  register      N new PEs (with the keep-alive transmission timer a
                registrar arms for each)
  reregister    all N again with new loads (updates)
  resolve k=1   M handle resolutions asking for one PE
  resolve k=3   M handle resolutions asking for three PEs
  timer         N keep-alive timer restarts
  deregister    all N

Usage: python bench/handlespace.py [--json] [--runs 3] [--sizes 1000,10000,100000]
       [--policies rr,lu,random,wrr] [--resolutions 100000]
Each figure is the median over ``--runs`` runs. Phases are timed with the
process's CPU time (``time.process_time``), so other load on a shared machine
does not count against the handlespace; ``--wall`` uses wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.handlespace import Handlespace, TimerKind
from rsplib.wire.constants import PolicyType
from rsplib.wire.params import PolicyParam, PoolElementParam, TcpTransport

POOL = b"BenchmarkPool"
HOME = 0x11111111
PHASES = ("register", "reregister", "resolve_k1", "resolve_k3", "timer", "deregister")

POLICIES: dict[str, Callable[[random.Random], PolicyParam]] = {
    "rr": lambda r: PolicyParam(PolicyType.ROUND_ROBIN),
    "lu": lambda r: PolicyParam(PolicyType.LEAST_USED, load=r.randrange(0x100000000)),
    "random": lambda r: PolicyParam(PolicyType.RANDOM),
    "wrr": lambda r: PolicyParam(PolicyType.WEIGHTED_ROUND_ROBIN, weight=r.randrange(1, 10)),
}


def make_pes(n: int, policy: str, rng: random.Random) -> list[PoolElementParam]:
    make = POLICIES[policy]
    ids = rng.sample(range(1, 0x100000000), n)
    return [
        PoolElementParam(
            identifier=i,
            home_registrar_id=0,
            registration_life=90_000,
            user_transport=TcpTransport(
                10000 + (i & 0x3FFF), (IPv4Address(0x0A000000 + (i & 0xFFFF)),)
            ),
            policy=make(rng),
        )
        for i in ids
    ]


def run_once(
    n: int, policy: str, resolutions: int, seed: int, clock: Callable[[], float]
) -> dict[str, float]:
    rng = random.Random(seed)
    pes = make_pes(n, policy, rng)
    updates = [
        PoolElementParam(
            p.identifier,
            p.home_registrar_id,
            p.registration_life,
            p.user_transport,
            POLICIES[policy](rng),
        )
        for p in pes
    ]
    hs = Handlespace(rng=random.Random(seed + 1))
    register = hs.register
    set_timer = hs.set_timer
    ka = TimerKind.KEEPALIVE_TRANSMISSION
    rates: dict[str, float] = {}

    now = 0.0
    t0 = clock()
    for pe in pes:
        entry = register(POOL, pe, home_registrar_id=HOME, now=now, connection=None).entry
        set_timer(entry, ka, now + 5.0)
    rates["register"] = n / (clock() - t0)

    t0 = clock()
    for pe in updates:
        register(POOL, pe, home_registrar_id=HOME, now=1.0, connection=None)
    rates["reregister"] = n / (clock() - t0)

    resolve = hs.resolve
    for k, name in ((1, "resolve_k1"), (3, "resolve_k3")):
        t0 = clock()
        for _ in range(resolutions):
            resolve(POOL, k, 2.0)
        rates[name] = resolutions / (clock() - t0)

    entries = hs.pool_entries(POOL)
    rng.shuffle(entries)
    at = 10.0
    t0 = clock()
    for entry in entries:
        set_timer(entry, ka, at)
        at += 0.0001
    rates["timer"] = n / (clock() - t0)

    deregister = hs.deregister
    ids = [p.identifier for p in pes]
    rng.shuffle(ids)
    t0 = clock()
    for identifier in ids:
        deregister(POOL, identifier)
    rates["deregister"] = n / (clock() - t0)
    if len(hs) != 0:
        raise RuntimeError("deregistration left PEs behind")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--policies", default="rr,lu,random,wrr")
    parser.add_argument("--resolutions", type=int, default=100_000)
    parser.add_argument("--wall", action="store_true", help="time with the wall clock")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    policies = args.policies.split(",")
    for p in policies:
        if p not in POLICIES:
            parser.error(f"unknown policy {p!r}; choose from {', '.join(POLICIES)}")

    clock = time.perf_counter if args.wall else time.process_time
    results = []
    for policy in policies:
        for n in sizes:
            runs = [run_once(n, policy, args.resolutions, seed, clock) for seed in range(args.runs)]
            median = {ph: statistics.median(r[ph] for r in runs) for ph in PHASES}
            results.append({"policy": policy, "n": n, "runs": args.runs, "ops_per_s": median})
            if not args.json:
                cells = "  ".join(f"{ph}={median[ph] / 1000:8.1f}k" for ph in PHASES)
                print(f"{policy:6s} N={n:>7,d}  {cells}", flush=True)
    if args.json:
        doc = {
            "benchmark": "handlespace",
            "python": sys.version.split()[0],
            "resolutions": args.resolutions,
            "clock": "wall" if args.wall else "process",
            "results": results,
        }
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
