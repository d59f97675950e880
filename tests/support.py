"""Helpers shared by the real-process tests and the benchmarks (bench/ imports them too).

Child processes run ``python -m MODULE`` from the repository root with their output in a
log file, and are only ever signalled by PID. Registrars started by tests and benchmarks
listen on loopback with ephemeral ports, no multicast and the TCP mapping.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Factor for waits on process start-up and completion (a registrar becoming ready, a PE
#: registering, a PU finishing its image). The lab VM sets it: code there runs 10-25
#: times slower, and a Python process takes seconds to start. Bounds on protocol timing
#: (failover within the heartbeat timeout, ...) are never scaled.
SLOWDOWN = float(os.environ.get("RSERPOOL_TEST_SLOWDOWN", "1"))


def patience(seconds: float) -> float:
    """``seconds`` of waiting for a process, scaled by :data:`SLOWDOWN`."""
    return seconds * SLOWDOWN


#: Registrar options for a test or benchmark: loopback, ephemeral ASAP and ENRP ports,
#: no announces, the TCP mapping, and pool-element addresses on loopback accepted.
LOOPBACK_REGISTRAR_ARGS: tuple[str, ...] = (
    "--asap", "127.0.0.1:0",
    "--enrp", "127.0.0.1:0",
    "--asap-announce", "off",
    "--enrp-announce", "off",
    "--transport", "tcp",
    "--min-address-scope", "loopback",
)  # fmt: skip


def split_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port free on ``host`` right now (for services that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LoggedProcess:
    """One ``python -m MODULE ARGS`` child process whose output goes to ``log_path``.

    :meth:`program` starts any other program (e.g. one of rsplib's) the same way.
    """

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        open_files: int | None = None,
        prefix: Sequence[str] = (),
        argv: Sequence[str] | None = None,
    ) -> None:
        """``prefix`` goes before the interpreter (``ip netns exec NAME``, ...); ``argv``
        replaces the whole command line (see :meth:`program`)."""
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(argv) if argv is not None else [*prefix, sys.executable, "-m", module, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=None if env is None else dict(env),
            preexec_fn=None if open_files is None else _limit_open_files(open_files),
        )

    @classmethod
    def program(
        cls, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> LoggedProcess:
        """Any program (``argv[0]`` found on PATH), logged and stopped like the others."""
        return cls("", (), log_path, env, argv=argv)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(
        self, pattern: re.Pattern[str] | str, timeout: float = 15.0, *, poll: float = 0.02
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails after ``timeout`` seconds
        (scaled by :data:`SLOWDOWN`)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + patience(timeout)
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.log_path.name} exited early:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in {self.log_path.name}:\n{self.log_text()}")
            time.sleep(poll)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT + SIGTERM, wait; SIGKILL if it does not end. Returns the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill_and_close(self) -> None:
        """SIGKILL at once (a crash, as far as its peers can tell), then close the log."""
        try:
            self.kill()
        finally:
            self._log.close()


def _limit_open_files(count: int) -> Callable[[], None]:
    """A preexec function giving the child an open-file limit (as ``ulimit -n``)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return limit


class FractalPeProcess(LoggedProcess):
    """One ``fractal-pe`` (``python -m fractal_pe.cli ARGS``)."""

    def __init__(self, args: Sequence[str], log_path: Path, env: Mapping[str, str]) -> None:
        super().__init__("fractal_pe.cli", args, log_path, env)

    def wait_registered(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + patience(timeout)
        while "registered (registrar" not in self.log_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"fractal-pe exited early:\n{self.log_text()}")
            assert time.monotonic() < deadline, f"fractal-pe not registered:\n{self.log_text()}"
            time.sleep(0.05)


class LoopbackCapture:
    """dumpcap on lo writing to a pipe, copied into a file by a thread.

    dumpcap reports "Capturing on" before its filter is really active, and a capture file
    is only flushed in large blocks, so neither tells when packets start being recorded.
    A pipe delivers each packet at once: the capture is ready when probe datagrams (UDP to
    ``probe_port``, which the filter must match and the decoders ignore) come out of it.
    """

    def __init__(self, capture_filter: str, path: Path, log: Path) -> None:
        self.path = path
        self.received = 0
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["dumpcap", "-q", "-i", "lo", "-f", capture_filter, "-w", "-"],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        with self.path.open("wb") as out:
            while chunk := os.read(self.proc.stdout.fileno(), 65536):
                out.write(chunk)
                out.flush()
                self.received += len(chunk)

    def wait_ready(self, probe_port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.received == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        header = self.received
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            while self.received == header:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"dumpcap never captured: {self._log.name}")
                probe.sendto(b"probe", ("127.0.0.1", probe_port))
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=10)
        self._log.close()
