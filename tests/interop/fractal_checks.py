"""Fractal interop helpers: a paced rsplib PE, our headless pool user, capture checks.

rsplib's fractal PE is C and computes a small test image in a fraction of a second, too
fast to kill it reliably in the middle of a cell. :class:`Throttle` lets it run only a
few milliseconds in every hundred (SIGSTOP/SIGCONT), so "kill it while it computes"
is not a race. The SCTP associations stay up meanwhile (the kernel answers for a stopped
process), exactly as for a PE on a slow machine.

:func:`check_fgp_capture` verifies a fractal session from the wire alone: for every
association between a pool user and a PE it takes the job from the Parameter message
(or from the state cookie the pool user echoed after a failover, opened with the pool's
key) and compares every Data message's pixels with our kernel; a job is complete when its
pixels all arrived and its PE sent the finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fractal_pe.cookie_state import decode_fgp_state, resume_offset
from fractal_pe.fgp import FINALIZER_COORDINATE, FgpParameter
from fractal_pe.kernel import compute_rows, compute_span
from fractal_pu.fsf import FractalJob, write_fsf
from fractal_pu.split import split_image_covering, sub_parameters
from rsplib.session.cookies import CookieSealer, InvalidCookie
from rsplib.trace.record import MessageRecord, decode_datagram
from tests.interop.lab import Processes, component_env
from tests.support import LoggedProcess

Record = dict[str, Any]


class Throttle:
    """Keeps a process stopped except for ``run_ms`` in every ``period_ms``."""

    def __init__(self, process: LoggedProcess, run_ms: float = 5.0, period_ms: float = 100.0):
        self._pid = process.pid
        self._run = run_ms / 1000.0
        self._pause = (period_ms - run_ms) / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="throttle", daemon=True)
        self._thread.start()

    def _signal(self, sig: int) -> bool:
        try:
            os.kill(self._pid, sig)
        except ProcessLookupError:
            return False
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._signal(signal.SIGCONT) or self._stop.wait(self._run):
                break
            if not self._signal(signal.SIGSTOP):
                break
            self._stop.wait(self._pause)
        self._signal(signal.SIGCONT)

    def release(self) -> None:
        """Let the process run freely again."""
        self._stop.set()
        self._thread.join(timeout=5)


class TraceWatch:
    """A component's live trace (``--trace``), received on a loopback UDP socket.

    It tells, from the component's own records, when Data and cookies went out or came
    in: a test kills a PE once it has delivered some of its cell, not after a guessed
    delay.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._records: list[MessageRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trace-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            records = [r for r in decode_datagram(data) if isinstance(r, MessageRecord)]
            with self._lock:
                self._records.extend(records)

    def received(self, peer: str, proto: str, message_type: str) -> int:
        """How many ``message_type`` messages the component received from ``peer``."""
        return self._count("rx", proto, message_type, peer)

    def sent(self, proto: str, message_type: str, since: float = 0.0) -> int:
        """How many ``message_type`` messages the component sent (to anyone) at or after
        wall-clock time ``since``."""
        return self._count("tx", proto, message_type, None, since)

    def _count(
        self, direction: str, proto: str, message_type: str, peer: str | None, since: float = 0.0
    ) -> int:
        with self._lock:
            return sum(
                1
                for r in self._records
                if r.direction == direction and r.proto == proto and r.type == message_type
                and (peer is None or r.peer == peer) and r.time >= since
            )  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


# -------------------------------------------------------------------- our pool user


def reference_image(job: FractalJob, width: int, height: int, sessions: int) -> np.ndarray:
    """The image our kernel computes for the job, cell by cell as the pool user splits it."""
    image = np.zeros((height, width), dtype=np.uint32)
    for rect in split_image_covering(width, height, sessions):
        param = sub_parameters(job, rect, width, height)
        cell = compute_rows(param, 0, rect.h, kernel="numpy")
        image[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = cell
    return image


@dataclass
class PuRun:
    process: LoggedProcess
    directory: Path
    name: str

    def finish(self, timeout: float = 240.0) -> dict[str, Any]:
        try:
            code = self.process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pool user still running:\n{self.process.log_text()}") from None
        assert code == 0, f"pool user exit status {code}:\n{self.process.log_text()}"
        report: dict[str, Any] = json.loads((self.directory / f"{self.name}.json").read_text())
        return report

    def values(self) -> np.ndarray:
        values: np.ndarray = np.load(self.directory / f"{self.name}.npy")
        return values


def start_headless_pu(
    procs: Processes,
    name: str,
    registrar: tuple[str, int],
    pool: str,
    fsf: Path,
    *,
    width: int,
    height: int,
    sessions: int,
    extra: Sequence[str] = (),
) -> PuRun:
    directory = procs.directory
    args = [
        "--headless",
        "--transport", "sctp",
        "--registrar", f"{registrar[0]}:{registrar[1]}",
        "--poolhandle", pool,
        "--sessions", str(sessions),
        "--width", str(width),
        "--height", str(height),
        "--config", str(fsf),
        "--output", str(directory / f"{name}.png"),
        "--report", str(directory / f"{name}.json"),
        "--values-output", str(directory / f"{name}.npy"),
        "--recvtimeout", "5000",
        "--image-timeout", "200000",
        *extra,
    ]  # fmt: skip
    log = directory / f"{name}.log"
    process = procs.add(LoggedProcess("fractal_pu.cli", args, log, component_env()))
    return PuRun(process, directory, name)


def write_job(path: Path, job: FractalJob) -> Path:
    write_fsf(job, path)
    return path


# ------------------------------------------------------------------ capture checks


@dataclass
class Job:
    """One cell as the pool user started it with a Parameter message, followed over the
    associations that continued it from cookies after failovers."""

    param: FgpParameter
    covered: set[int] = field(default_factory=set)
    associations: int = 1
    resumed_from_cookie: bool = False
    finalized: bool = False

    @property
    def complete(self) -> bool:
        return self.finalized and self.covered == set(range(self.param.width * self.param.height))


@dataclass
class Association:
    """One pool user <-> PE association seen in a capture."""

    job: Job | None = None
    #: Row-major index the PE starts at (0, or a cookie's resume point).
    start: int = 0


@dataclass
class FgpCheck:
    jobs: list[Job]
    data_messages: int
    wrong_pixels: list[str]
    unknown_job: list[str]


def check_fgp_capture(records: Sequence[Record], sealer: CookieSealer) -> FgpCheck:
    """Follow every fractal session in ``records`` (rsp-decode's JSON lines, in order).

    A Parameter message starts a job; a Cookie Echo with one of our PEs' cookies (opened
    with the pool's key) continues the newest job with the same parameters on a new
    association. Every Data message is compared with our kernel.
    """
    associations: dict[tuple[str, str], Association] = {}
    jobs: list[Job] = []
    wrong: list[str] = []
    unknown: list[str] = []
    data_messages = 0

    def association(pool_user: str, pool_element: str) -> Association:
        return associations.setdefault((pool_user, pool_element), Association())

    for record in records:
        kind = record.get("type")
        fields = record.get("fields", {})
        if kind == "FGP_PARAMETER":
            job = Job(_parameter(fields))
            jobs.append(job)
            associations[(record["src"], record["dst"])] = Association(job, 0)
        elif kind == "COOKIE_ECHO":
            try:
                opened = sealer.open(bytes.fromhex(fields["cookie"]["hex"]))
            except InvalidCookie:
                continue  # not one of our PEs' cookies (e.g. an rsplib PE's)
            param, x, y = decode_fgp_state(opened.state)
            continued = next((j for j in reversed(jobs) if j.param == param), None)
            if continued is not None:
                continued.associations += 1
                continued.resumed_from_cookie = True
            start = resume_offset(param, x, y)
            associations[(record["src"], record["dst"])] = Association(continued, start)
        elif kind == "FGP_DATA":
            assoc = association(record["dst"], record["src"])
            where = f"frame {record['frame']} {record['src']}->{record['dst']}"
            x, y, points = fields["start_x"], fields["start_y"], fields["points"]
            if assoc.job is None:
                unknown.append(where)
                continue
            if x == FINALIZER_COORDINATE and y == FINALIZER_COORDINATE and not points:
                assoc.job.finalized = True
                continue
            param = assoc.job.param
            offset = y * param.width + x
            expected = compute_span(param, offset, len(points), kernel="numpy")
            if len(expected) != len(points) or not np.array_equal(expected, points):
                wrong.append(f"{where}: pixels from ({x}, {y}) differ from our kernel")
            if offset < assoc.start:
                wrong.append(f"{where}: data before the resume point {assoc.start}")
            assoc.job.covered.update(range(offset, offset + len(points)))
            data_messages += 1
    return FgpCheck(jobs, data_messages, wrong, unknown)


def _parameter(fields: Record) -> FgpParameter:
    return FgpParameter(
        width=fields["width"],
        height=fields["height"],
        max_iterations=fields["max_iterations"],
        algorithm=fields["algorithm"],
        c1_real=fields["c1_real"],
        c1_imag=fields["c1_imag"],
        c2_real=fields["c2_real"],
        c2_imag=fields["c2_imag"],
        n=fields["n"],
    )


def decode_capture(path: Path) -> list[Record]:
    """rsp-decode's JSON lines for a capture file."""
    # The command of this interpreter's environment (the venv), PATH or not.
    command = Path(sys.executable).with_name("rsp-decode")
    result = subprocess.run(
        [str(command), str(path)], capture_output=True, text=True, timeout=300, check=True
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
