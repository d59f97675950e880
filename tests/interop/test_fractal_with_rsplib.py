"""The fractal demo across implementations, over kernel SCTP: rsplib's programs and ours.

One rsplib registrar (R, 0x60) and one of ours (O, 0x70) peer for the whole module; the
registrars and the pool user of check 2 send status reports (nobody listens: they are there
for the capture). Checked:

1. rsplib's ``rspserver -fractal`` PEs, registered at our registrar, compute complete
   images for our headless pool user, pixel for pixel what our kernel computes, and a
   cell continues on the other PE from rsplib's cookie when one is killed mid-cell;
2. our ``fractal-pe`` PEs, registered at rsplib's registrar, serve rsplib's
   ``fractalpooluser``, including a failover when one of ours is killed: checked on the
   wire (a capture), every Data message's pixels against our kernel;
4. ``rsp-decode`` and tshark read that capture alike (messages per type, PE identifiers);
6. a pool mixing both kinds of PE: a failover from an rsplib PE to ours
   (``--accept-unsigned-cookies``) resumes from rsplib's unsigned cookie, with every pixel
   right (from ours to rsplib's, which restarts the cell: the control center's story in
   ``test_control_center_with_rsplib.py``).

Check 3 (ENRP) is ``test_enrp_with_rsplib.py``; check 5 (status reports both ways) is
``test_csp_monitors.py`` (rsplib's ``cspmonitor`` showing ours, on this machine) and
``test_control_center_with_rsplib.py`` (the control center showing rsplib's).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fractal_pu.fsf import read_fsf
from rsplib.session.cookies import CookieSealer, load_cookie_key
from tests.interop.fractal_checks import (
    FgpCheck,
    Record,
    Throttle,
    TraceWatch,
    check_fgp_capture,
    decode_capture,
    reference_image,
    start_headless_pu,
    write_job,
)
from tests.interop.lab import (
    KEY,
    Capture,
    LabNet,
    OurRegistrar,
    Processes,
    Rspregistrar,
    kill_now,
    occurrences,
    our_fractal_pe,
    rsplib_fractal_pe,
    wait_for_text,
    wait_resolves,
)
from tests.interop.rsplib_programs import need_programs, wait_until
from tests.support import REPO

pytestmark = [pytest.mark.sctp, pytest.mark.timeout(300)]

R_ID, O_ID = 0x60, 0x70
CSP_PORT = 2960  # CSP's own port: rsp-decode and tshark recognise the reports by it
SEAHORSE = read_fsf(REPO / "assets/fsf/02-seahorse-valley.fsf")
#: For rsplib's PEs: about 6 M iterations in 96x64 pixels, so that a throttled PE is
#: still computing when it is killed.
DEEP_JOB = dataclasses.replace(SEAHORSE, max_iterations=2000)
WIDTH, HEIGHT = 96, 64
#: Where our PEs compute: our numpy kernel pays per iteration of a block, which under
#: emulation (the lab) is slow; a shallow limit and a smaller image keep it brisk.
LIGHT_JOB = dataclasses.replace(SEAHORSE, max_iterations=100)
LIGHT_WIDTH, LIGHT_HEIGHT = 64, 48
#: Sessions (cells) of rsplib's pool user in check 2.
POOL_USER_THREADS = 2
#: Status reports once a second, redrawn every two: cheap under emulation.
CSP_INTERVAL_MS = 1000


@dataclass
class Pair:
    r: Rspregistrar
    o: OurRegistrar
    csp: str


@pytest.fixture(scope="module")
def pair(net: LabNet, module_procs: Processes) -> Iterator[Pair]:
    need_programs("rspregistrar", "rspserver", "fractalpooluser")
    csp = net.endpoint(CSP_PORT)
    r = Rspregistrar(
        module_procs, net, R_ID, 3863, 9901, peers=[net.endpoint(19901)],
        extra=[f"-cspserver={csp}", f"-cspinterval={CSP_INTERVAL_MS}"],
    )  # fmt: skip
    o = OurRegistrar(
        module_procs, net, O_ID, 13863, 19901, peers=[net.endpoint(9901)],
        extra=["--cspserver", csp, "--cspinterval", str(CSP_INTERVAL_MS)],
    ).ready()  # fmt: skip
    wait_for_text(o.process, r"new ENRP peer 0x00000060", 30.0)
    yield Pair(r, o, csp)


Json = dict[str, Any]


def failovers_from(image: Json, pe: int) -> list[Json]:
    name = f"0x{pe:08x}"
    return [f for cell in image["cells"] for f in cell["failovers"] if f["old_pe"] == name]


def complete_image(report: Json) -> Json:
    assert report["complete"] is True, report
    (image,) = report["images"]
    assert image["missing_pixels"] == 0
    return dict(image)


# ------------------------------------------------------------------------------ 1


def test_rsplib_pes_compute_for_our_pool_user_and_a_cell_fails_over(
    net: LabNet, pair: Pair, procs: Processes
) -> None:
    pool = "InteropRsplibPes"
    fsf = write_job(procs.directory / "job.fsf", DEEP_JOB)
    # rsplib's PE sends its Data only every -fgpdatamaxtime (1 s by default) unless a
    # packet fills up: a short time gets the throttled victim's pixels out early.
    victim = rsplib_fractal_pe(
        procs, 0x1A1, pair.o.asap, pool, "-fgpcookiemaxpackets=1", "-fgpdatamaxtime=50"
    )
    rsplib_fractal_pe(procs, 0x1A2, pair.o.asap, pool, "-fgpcookiemaxpackets=1")
    wait_resolves(pair.o.asap, pool, {0x1A1, 0x1A2})
    watch = TraceWatch()
    throttle = Throttle(victim)
    try:
        pu = start_headless_pu(
            procs, "pu", pair.o.asap, pool, fsf, width=WIDTH, height=HEIGHT, sessions=2,
            extra=["--trace", watch.address],
        )  # fmt: skip
        connected = r"connected to PE 0x000001a1 \((\S+)\)"
        wait_until(
            lambda: re.search(connected, pu.process.log_text()) is not None,
            120.0,
            lambda: f"the pool user never used the victim:\n{pu.process.log_text()}",
        )
        match = re.search(connected, pu.process.log_text())
        assert match is not None
        peer = match.group(1)
        # Kill it once the pool user has some of its pixels and a cookie, by the pool
        # user's own trace (the victim is mid-cell: it runs a few ms in every 100).
        wait_until(
            lambda: (
                watch.received(peer, "fgp", "FGP_DATA") > 0
                and watch.received(peer, "asap", "COOKIE") > 0
            ),
            120.0,
            lambda: f"no Data and cookie from the victim at {peer}",
        )
        kill_now(victim)
    finally:
        throttle.release()
        watch.close()
    image = complete_image(pu.finish())
    assert np.array_equal(pu.values(), reference_image(DEEP_JOB, WIDTH, HEIGHT, 2))
    moved = failovers_from(image, 0x1A1)
    assert moved, f"no failover away from the killed PE:\n{pu.process.log_text()}"
    assert all(f["had_cookie"] and not f["cookie_rejected"] for f in moved)
    assert set(image["pixels_per_pe"]) == {"0x000001a1", "0x000001a2"}


# --------------------------------------------------------------------------- 2, 4, 5


@dataclass
class PoolUserRun:
    capture: Path
    records: list[Record]
    check: FgpCheck
    killed: int


@pytest.fixture(scope="module")
def rsplib_pool_user_run(net: LabNet, pair: Pair, module_procs: Processes) -> Iterator[PoolUserRun]:
    """rsplib's fractalpooluser at rsplib's registrar, served by two of our PEs; once the
    first image is complete, the PE that gets the next job is killed in the middle of it;
    the run ends when the pool user starts the image after that one. Captured throughout."""
    procs = module_procs
    pool = "InteropOurPes"
    configs = procs.directory / "fsf"
    configs.mkdir()
    write_job(configs / "seahorse.fsf", dataclasses.replace(SEAHORSE, max_iterations=60))
    watches = {identifier: TraceWatch() for identifier in (0x2A1, 0x2A2)}
    try:
        pes = {
            identifier: our_fractal_pe(
                procs, net, identifier, pair.r.asap, pool,
                "--cspserver", pair.csp, "--cspinterval", str(CSP_INTERVAL_MS),
                "--trace", watch.address,
            )
            for identifier, watch in watches.items()
        }  # fmt: skip
        for pe in pes.values():
            pe.wait_registered(120.0)
        capture = Capture(procs, procs.directory / "fractal.pcapng")
        procs.rsplib(
            "fractalpooluser",
            ["fractalpooluser", f"-registrar={pair.r.asap[0]}:{pair.r.asap[1]}",
             f"-poolhandle={pool}", f"-configdir={configs}", "-width=160", "-height=100",
             f"-threads={POOL_USER_THREADS}", "-interimagetime=1", "-identifier=0x7",
             f"-cspserver={pair.csp}", f"-cspinterval={CSP_INTERVAL_MS}", "-loglevel=2",
             "-logcolor=off",
             # Under emulation our PEs can be slower than rsplib's 5 s receive timeout expects.
             "-recvtimeout=30000", "-sendtimeout=30000"],
        )  # fmt: skip
        # rsplib's pool user restarts its very first job when its window appears, so count
        # completed cells (our PEs log each) instead of trusting the first job.
        done, started = r"rectangle complete", r"rectangle, algorithm"

        def total(pattern: str) -> int:
            return sum(occurrences(pe, pattern) for pe in pes.values())

        wait_until(lambda: total(done) >= POOL_USER_THREADS, 120.0, lambda: "no image completed")
        starts = {i: occurrences(pe, started) for i, pe in pes.items()}
        wait_until(
            lambda: any(occurrences(pe, started) > starts[i] for i, pe in pes.items()),
            60.0,
            lambda: "no next image started",
        )
        killed = next(i for i, pe in pes.items() if occurrences(pe, started) > starts[i])
        # Kill it once it has sent Data and a cookie of this job, by its own trace (the
        # previous image was complete before the job started, so what it sent from now
        # on is of this job).
        watch, job_seen = watches[killed], time.time()
        wait_until(
            lambda: (
                watch.sent("fgp", "FGP_DATA", since=job_seen) > 0
                and watch.sent("asap", "COOKIE", since=job_seen) > 0
            ),
            60.0,
            lambda: f"PE {killed:#x} sent no Data and cookie of its new job",
        )
        kill_now(pes[killed])
    finally:
        for each in watches.values():
            each.close()
    survivor = next(pe for i, pe in pes.items() if i != killed)
    # The pool user starts the next image only when every cell of this one is complete,
    # the cells it resumed on the survivor included.
    mark = len(survivor.log_text())
    wait_until(
        lambda: new_job_after(survivor.log_text(), mark), 180.0, lambda: "the image never completed"
    )
    path = capture.stop()
    records = decode_capture(path)
    sealer = CookieSealer(load_cookie_key(env={"RSERPOOL_COOKIE_KEY": KEY}), pool.encode())
    yield PoolUserRun(path, records, check_fgp_capture(records, sealer), killed)


def new_job_after(log: str, offset: int) -> bool:
    """Did a PE start a job from a Parameter message (not a resumed one) after ``offset``?"""
    tail = log[offset:]
    resumed = set(re.findall(r"session from (\S+) resumes a", tail))
    started = re.findall(r"session from (\S+): \d+x\d+ rectangle, algorithm", tail)
    return any(session not in resumed for session in started)


def test_our_pes_serve_rsplibs_pool_user_and_its_failover_on_the_wire(
    rsplib_pool_user_run: PoolUserRun,
) -> None:
    check = rsplib_pool_user_run.check
    assert check.wrong_pixels == []
    assert check.unknown_job == [], "Data on an association without a known job"
    assert check.data_messages >= 4
    complete = [job for job in check.jobs if job.complete]
    assert len(complete) >= 2 * POOL_USER_THREADS, f"complete jobs: {len(complete)}"
    resumed = [job for job in check.jobs if job.resumed_from_cookie]
    assert resumed, "no job continued from one of our cookies after the kill"
    assert all(job.complete for job in resumed), "a resumed job did not complete"
    # Every finalized job got every one of its pixels.
    assert all(job.complete for job in check.jobs if job.finalized)


def test_rsp_decode_and_tshark_agree_on_the_capture(rsplib_pool_user_run: PoolUserRun) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (scripts/setup.sh installs it as root)")
    fields = [
        "asap.message_type", "enrp.message_type", "fractalgeneratorprotocol.message_type",
        "componentstatusprotocol.message_type", "asap.pool_element_pe_identifier",
        "asap.pe_identifier",
    ]  # fmt: skip
    command = ["tshark", "-n", "-r", str(rsplib_pool_user_run.capture), "-T", "fields"]
    command += ["-E", "occurrence=a", "-E", "aggregator=|"]
    for name in fields:
        command += ["-e", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    theirs: collections.Counter[tuple[str, int]] = collections.Counter()
    their_pes: set[int] = set()
    protocols = ("asap", "enrp", "fgp", "csp")
    for line in result.stdout.splitlines():
        cells = line.split("\t")
        for protocol, cell in zip(protocols, cells[:4], strict=True):
            for value in filter(None, cell.split("|")):
                theirs[(protocol, int(value, 0))] += 1
        for cell in cells[4:6]:
            their_pes.update(int(v, 0) for v in filter(None, cell.split("|")))
    ours: collections.Counter[tuple[str, int]] = collections.Counter()
    our_pes: set[int] = set()
    for record in rsplib_pool_user_run.records:
        ours[(record["protocol"], record["type_code"])] += 1
        our_pes.update(pe_identifiers(record))
    assert ours == theirs
    assert our_pes == their_pes
    assert {"asap", "enrp", "fgp", "csp"} <= {protocol for protocol, _ in ours}


def pe_identifiers(record: Record) -> set[int]:
    """PE identifiers of an ASAP message as tshark lists them (PE parameters and the
    PE Identifier parameter)."""
    if record["protocol"] != "asap":
        return set()
    fields = record["fields"]
    found = {pe["identifier"] for pe in fields.get("pool_elements", ())}
    if isinstance(fields.get("pool_element"), dict):
        found.add(fields["pool_element"]["identifier"])
    if isinstance(fields.get("identifier"), int):
        found.add(fields["identifier"])
    return found


# ------------------------------------------------------------------------------- 6


def test_mixed_pool_failover_from_rsplibs_pe_to_ours_resumes_from_its_cookie(
    net: LabNet, pair: Pair, procs: Processes
) -> None:
    """rsplib's failure mode: after 3 Data messages its PE sends a cookie and ends the
    session, so the cell moves to our PE at a known point. (From our PE to rsplib's:
    ``test_control_center_with_rsplib.py``.)"""
    pool = "InteropMixed"
    fsf = write_job(procs.directory / "job.fsf", LIGHT_JOB)
    ours = our_fractal_pe(
        procs, net, 0x6B1, pair.o.asap, pool, "--policy", "Priority:1", "--accept-unsigned-cookies"
    )
    rsplib_fractal_pe(procs, 0x6B2, pair.o.asap, pool, "-policy=Priority:9", "-fgpfailureafter=3")
    ours.wait_registered(120.0)
    wait_resolves(pair.o.asap, pool, {0x6B1, 0x6B2})
    pu = start_headless_pu(
        procs, "pu", pair.o.asap, pool, fsf, width=LIGHT_WIDTH, height=LIGHT_HEIGHT, sessions=1
    )
    image = complete_image(pu.finish())
    assert np.array_equal(pu.values(), reference_image(LIGHT_JOB, LIGHT_WIDTH, LIGHT_HEIGHT, 1))
    (cell,) = image["cells"]
    assert cell["cookies_rejected"] == 0 and cell["restarts"] == 0, cell
    moved = failovers_from(image, 0x6B2)
    assert moved and all(f["had_cookie"] for f in moved)
    # Our PE went on where rsplib's stopped. rsplib's cookie names the last pixel it
    # sent rather than the next one, so exactly that pixel is computed twice.
    sent = 3 * 324
    assert image["pixels_per_pe"] == {"0x000006b2": sent, "0x000006b1": 64 * 48 - sent + 1}
    assert image["pixels_computed_twice"] == 1
    assert f"resumes a 64x48 rectangle at pixel {sent - 1} from its cookie" in ours.log_text()
