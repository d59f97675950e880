"""Processes and probes for the interop checks that run over kernel SCTP (the lab VM).

rsplib's PEs refuse hosts whose only addresses are loopback ones, so the checks put a
private address on a dummy interface of their own (:func:`lab_address`) and run every
component on it: rsplib's programs (``rspregistrar``, ``rspserver``, ``fractalpooluser``,
``hsdump``) next to ours (``rsp-registrar``, ``fractal-pe``, ``fractal-pu``). Every
process is a :class:`LoggedProcess`, stopped by PID by the fixture that started it.
rsplib's programs write their logs through C stdio; ``stdbuf -oL`` makes each line reach
the log file at once, so the tests can wait for it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rsplib.transport import SCTP, ChannelClosed, connect
from rsplib.wire.asap import HandleResolution, HandleResolutionResponse
from rsplib.wire.codec import decode_asap, encode_asap
from rsplib.wire.constants import PPID
from tests.interop.rsplib_programs import need_programs
from tests.registrar.service_helpers import RegistrarProcess
from tests.support import FractalPeProcess, LoggedProcess

#: The checks' own subnet on their dummy interface (unused elsewhere in the lab).
SUBNET = "10.231.0"
KEY = "hex:" + "5a" * 32
#: Fast ENRP peer supervision on both kinds of registrar: a dead peer is noticed
#: after 2 + 1.5 s, and a takeover waits at most 2 s for its acknowledgements.
RSPLIB_PEER_TIMERS = (
    "-peerheartbeatcycle=1000",
    "-peermaxtimelastheard=2000",
    "-peermaxtimenoresponse=1500",
    "-takeoverexpiryinterval=2000",
    "-mentordiscoverytimeout=500",
)
OUR_PEER_TIMERS = (
    "--peer-heartbeat-interval", "1000",
    "--peer-max-time-last-heard", "2000",
    "--peer-max-time-no-response", "1500",
    "--takeover-expiry", "2000",
    "--mentor-discovery-timeout", "500",
)  # fmt: skip


def component_env() -> dict[str, str]:
    """Environment of our fractal components: the pool key, the numpy kernel (numba's
    compiler would take minutes under emulation), offscreen Qt for rsplib's pool user."""
    return dict(
        os.environ,
        RSERPOOL_COOKIE_KEY=KEY,
        FRACTAL_KERNEL="numpy",
        QT_QPA_PLATFORM="offscreen",
    )


@dataclass(frozen=True)
class LabNet:
    interface: str
    address: str

    def endpoint(self, port: int) -> str:
        return f"{self.address}:{port}"


@contextmanager
def lab_address() -> Iterator[LabNet]:
    """A dummy interface with a private address, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add a private test address (rsplib refuses loopback-only hosts)")
    if shutil.which("ip") is None:
        pytest.skip("needs the ip command (iproute2)")
    shown = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True)
    if f" {SUBNET}." in shown.stdout:
        pytest.fail(f"subnet {SUBNET}.0/24 is already in use here: {shown.stdout}")
    name = f"rspi{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "dummy"], check=True)
    try:
        for command in (
            ["ip", "addr", "add", f"{SUBNET}.1/24", "dev", name],
            ["ip", "link", "set", name, "up"],
        ):
            subprocess.run(command, check=True)
        yield LabNet(name, f"{SUBNET}.1")
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


# ------------------------------------------------------------------------- processes


@dataclass
class Processes:
    """Every process a test or fixture started; :meth:`stop_all` ends them by PID."""

    directory: Path
    started: list[LoggedProcess] = field(default_factory=list)

    def add(self, process: LoggedProcess) -> LoggedProcess:
        self.started.append(process)
        return process

    def rsplib(self, name: str, argv: Sequence[str]) -> LoggedProcess:
        """One of rsplib's programs, line-buffered into ``name.log``."""
        need_programs(argv[0])
        return self.add(
            LoggedProcess.program(
                ["stdbuf", "-oL", "-eL", *argv], self.directory / f"{name}.log", component_env()
            )
        )

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()


class Rspregistrar:
    """rsplib's ``rspregistrar`` on the test address (ASAP and ENRP ports given)."""

    def __init__(
        self,
        procs: Processes,
        net: LabNet,
        identifier: int,
        asap_port: int,
        enrp_port: int,
        peers: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        self.identifier = identifier
        self.asap = (net.address, asap_port)
        self.enrp = (net.address, enrp_port)
        self._procs = procs
        self._argv = [
            "rspregistrar",
            f"-identifier={identifier:#x}",
            f"-asap={net.endpoint(asap_port)}",
            f"-enrp={net.endpoint(enrp_port)}",
            "-asapannounce=off",
            "-enrpannounce=off",
            "-loglevel=4",
            "-logcolor=off",
            *RSPLIB_PEER_TIMERS,
            *(f"-peer={peer}" for peer in peers),
            *extra,
        ]
        self.process = self._start()

    def _start(self) -> LoggedProcess:
        process = self._procs.rsplib(f"rspregistrar-{self.identifier:x}", self._argv)
        wait_accepting(self.asap, process)
        return process

    def kill(self) -> None:
        self.process.kill()

    def restart(self, timeout: float = 30.0) -> None:
        """Start again with the same identifier and endpoints (after :meth:`kill`).

        A killed process's SCTP endpoint stays bound while the kernel still shuts down
        its associations (it closes them gracefully: SHUTDOWN, retransmitted until the
        peer answers), and rspregistrar sets no SO_REUSEADDR, so it exits with "Address
        already in use" until then: start it again until it binds.
        """
        self.process.stop()
        deadline = time.monotonic() + timeout
        while True:
            process = self._procs.rsplib(f"rspregistrar-{self.identifier:x}", self._argv)
            try:
                wait_accepting(self.asap, process)
            except AssertionError:
                in_use = "Address already in use" in process.log_text()
                if not in_use or time.monotonic() > deadline:
                    raise
                process.stop()
                time.sleep(0.5)
                continue
            self.process = process
            return

    def log_text(self) -> str:
        return self.process.log_text()


class OurRegistrar:
    """Our ``rsp-registrar`` over SCTP on the test address."""

    def __init__(
        self,
        procs: Processes,
        net: LabNet,
        identifier: int,
        asap_port: int,
        enrp_port: int,
        peers: Sequence[str] = (),
        timers: Sequence[str] = OUR_PEER_TIMERS,
        extra: Sequence[str] = (),
        loglevel: str = "info",
    ) -> None:
        self.identifier = identifier
        self.asap = (net.address, asap_port)
        self.enrp = (net.address, enrp_port)
        self._procs = procs
        self._args = [
            "--identifier", f"{identifier:#x}",
            "--transport", "sctp",
            "--asap", net.endpoint(asap_port),
            "--enrp", net.endpoint(enrp_port),
            "--asap-announce", "off",
            "--enrp-announce", "off",
            "--loglevel", loglevel,
            *timers,
            *extra,
        ]  # fmt: skip
        for peer in peers:
            self._args += ["--peer", peer]
        self._generation = 0
        self.process = self._start()

    def _start(self) -> RegistrarProcess:
        self._generation += 1
        log = self._procs.directory / f"rsp-registrar-{self.identifier:x}-{self._generation}.log"
        process = RegistrarProcess(self._args, log)
        self._procs.add(process)
        return process

    def ready(self) -> OurRegistrar:
        """Wait for its "ready" line (start several first: Python starts slowly here)."""
        self.process.wait_ready(60.0)
        return self

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.process.stop()
        self.process = self._start()
        self.ready()

    def log_text(self) -> str:
        return self.process.log_text()


def our_fractal_pe(
    procs: Processes,
    net: LabNet,
    identifier: int,
    registrar: tuple[str, int],
    pool: str,
    *extra: str,
) -> FractalPeProcess:
    args = [
        "--transport", "sctp",
        "--registrar", f"{registrar[0]}:{registrar[1]}",
        "--identifier", f"{identifier:#x}",
        "--poolhandle", pool,
        "--local", net.endpoint(0),
        "--kernel", "numpy",
        *extra,
    ]  # fmt: skip
    process = FractalPeProcess(
        args, procs.directory / f"fractal-pe-{identifier:x}.log", component_env()
    )
    procs.add(process)
    return process


def our_echo_pe(
    procs: Processes, net: LabNet, identifier: int, registrar: tuple[str, int], pool: str
) -> LoggedProcess:
    args = [
        "--transport", "sctp",
        "--registrar", f"{registrar[0]}:{registrar[1]}",
        "--identifier", f"{identifier:#x}",
        "--poolhandle", pool,
        "--local", net.endpoint(0),
    ]  # fmt: skip
    log = procs.directory / f"echo-pe-{identifier:x}.log"
    return procs.add(LoggedProcess("rsplib.examples.echo_pe", args, log, component_env()))


def rsplib_echo_pe(
    procs: Processes, identifier: int, registrar: tuple[str, int], pool: str
) -> LoggedProcess:
    """``rspserver -echo``, re-registering every 5 s (a restarted registrar has it soon;
    its registration life, three times that, outlives a takeover by our slowest peer)."""
    return procs.rsplib(
        f"rspserver-echo-{identifier:x}",
        [
            "rspserver",
            "-echo",
            f"-registrar={registrar[0]}:{registrar[1]}",
            f"-identifier={identifier:#x}",
            f"-poolhandle={pool}",
            "-rereginterval=5000",
            "-loglevel=2",
            "-logcolor=off",
        ],
    )


def rsplib_fractal_pe(
    procs: Processes, identifier: int, registrar: tuple[str, int], pool: str, *extra: str
) -> LoggedProcess:
    return procs.rsplib(
        f"rspserver-{identifier:x}",
        [
            "rspserver",
            "-fractal",
            f"-registrar={registrar[0]}:{registrar[1]}",
            f"-identifier={identifier:#x}",
            f"-poolhandle={pool}",
            "-loglevel=2",
            "-logcolor=off",
            *extra,
        ],
    )


def occurrences(process: LoggedProcess, pattern: str) -> int:
    """How often ``pattern`` (a regular expression) occurs in the log so far."""
    return len(re.findall(pattern, process.log_text()))


def wait_for_text(process: LoggedProcess, pattern: str, timeout: float, count: int = 1) -> None:
    """Wait until ``pattern`` (a regular expression) occurs ``count`` times in the log."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while len(regex.findall(process.log_text())) < count:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.log_path.name} exited early:\n{process.log_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{pattern!r} not {count} time(s) in {process.log_path.name} after {timeout} s:\n"
                f"{process.log_text()[-4000:]}"
            )
        time.sleep(0.05)


def kill_now(process: LoggedProcess) -> None:
    """SIGKILL: a crash (the kernel ends its associations; the application says nothing)."""
    os.kill(process.pid, signal.SIGKILL)
    process.proc.wait(timeout=10)


# ---------------------------------------------------------------------------- probes


def wait_accepting(
    endpoint: tuple[str, int], process: LoggedProcess, timeout: float = 20.0
) -> None:
    """Wait until ``endpoint`` accepts SCTP associations (the process must stay alive)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(_probe(endpoint))
            return
        except (OSError, ChannelClosed):
            if process.proc.poll() is not None:
                log = process.log_text()
                raise AssertionError(f"{process.log_path.name} exited:\n{log}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing accepts on {endpoint} after {timeout} s") from None
            time.sleep(0.1)


async def _probe(endpoint: tuple[str, int]) -> None:
    channel = await connect(endpoint[0], endpoint[1], transport=SCTP, timeout=2.0)
    channel.abort()


def resolve(registrar: tuple[str, int], pool: str) -> set[int]:
    """Identifiers of the PEs ``registrar`` hands out for ``pool`` (one ASAP Handle
    Resolution over a fresh SCTP association)."""
    return asyncio.run(asyncio.wait_for(_resolve(registrar, pool.encode()), 10.0))


async def _resolve(registrar: tuple[str, int], pool: bytes) -> set[int]:
    channel = await connect(registrar[0], registrar[1], transport=SCTP, timeout=5.0)
    try:
        await channel.send(PPID.ASAP, encode_asap(HandleResolution(pool, items=16)))
        while True:
            ppid, data = await channel.receive()
            if ppid != PPID.ASAP:
                continue
            answer = decode_asap(data)
            if isinstance(answer, HandleResolutionResponse):
                return {pe.identifier for pe in answer.pool_elements}
    finally:
        channel.abort()


def wait_resolves(
    registrar: tuple[str, int], pool: str, expected: set[int], timeout: float = 30.0
) -> None:
    """Wait until ``registrar`` resolves ``pool`` to exactly ``expected``."""
    deadline = time.monotonic() + timeout
    seen: set[int] | str = set()
    while True:
        try:
            seen = resolve(registrar, pool)
        except (OSError, ChannelClosed, TimeoutError) as exc:
            seen = f"no answer ({exc!r})"
        if seen == expected:
            return
        if time.monotonic() > deadline:
            want = sorted(hex(i) for i in expected)
            raise AssertionError(f"{registrar} resolves {pool} to {seen}, expected {want}")
        time.sleep(0.3)


# ------------------------------------------------------------------------- capture


class Capture:
    """``dumpcap`` on the loopback interface (all traffic between local addresses).

    :meth:`stop` ends it with SIGINT, so the file is complete, and returns its path.
    """

    def __init__(self, procs: Processes, path: Path, capture_filter: str = "sctp or udp") -> None:
        if shutil.which("dumpcap") is None:
            pytest.skip("dumpcap not installed (Debian package tshark; scripts/setup.sh)")
        self.path = path
        self.process = procs.add(
            LoggedProcess.program(
                ["dumpcap", "-i", "lo", "-f", capture_filter, "-w", str(path)],
                path.with_suffix(".log"),
            )
        )
        # dumpcap says so on stderr once it captures (seconds under emulation).
        wait_for_text(self.process, r"Capturing on", 60.0)

    def stop(self) -> Path:
        if self.process.alive():
            self.process.signal(signal.SIGINT)
            self.process.proc.wait(timeout=30)
        return self.path
