"""Real processes on loopback for the integration tests and bench/failover.py.

Registrars (``python -m rsplib.registrar.cli``) and echo PEs
(``python -m rsplib.examples.echo_pe``) run with ephemeral ports, the TCP
mapping and short timers. Their logs go to files; the helpers read the bound
addresses and progress from there. Processes are only ever signalled by PID.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY_RE = re.compile(
    r"rsp-registrar 0x(?P<id>[0-9a-f]+) ready: ASAP on (?P<asap>[^ ,]+).*?ENRP on (?P<enrp>\S+) "
)
HOME_RE = re.compile(r"home registrar is now (?P<host>[0-9.]+):(?P<port>\d+)")


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Process:
    """One child process with its log file."""

    def __init__(self, module: str, args: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 15.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails after ``timeout`` seconds."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.log_path.name} exited early:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in {self.log_path.name}:\n{self.log_text()}")
            time.sleep(0.02)

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_text()))

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGCONT + SIGTERM, wait, SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode


class Registrar(Process):
    def __init__(self, identifier: int, log_dir: Path, extra: Sequence[str] = ()) -> None:
        args = [
            "--identifier", f"0x{identifier:x}",
            "--asap", "127.0.0.1:0",
            "--enrp", "127.0.0.1:0",
            "--enrp-announce", "off",
            "--transport", "tcp",
            "--min-address-scope", "loopback",
            "--endpoint-keepalive-interval", "300",
            "--endpoint-keepalive-timeout", "300",
            "--peer-heartbeat-interval", "1000",
            "--mentor-discovery-timeout", "500",
            "--loglevel", "info",
            *extra,
        ]  # fmt: skip
        if "--asap-announce" not in extra:
            args += ["--asap-announce", "off"]
        super().__init__("rsplib.registrar.cli", args, log_dir / f"registrar-{identifier:x}.log")
        self.identifier = identifier
        self.asap: tuple[str, int] = ("", 0)
        self.enrp: tuple[str, int] = ("", 0)

    def ready(self, timeout: float = 15.0) -> Registrar:
        match = self.wait_for(READY_RE, timeout)
        self.asap = split_address(match["asap"])
        self.enrp = split_address(match["enrp"])
        return self

    @property
    def asap_text(self) -> str:
        return f"{self.asap[0]}:{self.asap[1]}"


class EchoPe(Process):
    def __init__(
        self,
        identifier: int,
        log_dir: Path,
        registrars: Sequence[Registrar] = (),
        extra: Sequence[str] = (),
    ) -> None:
        args = [
            "--identifier", f"0x{identifier:x}",
            "--transport", "tcp",
            "--rereginterval", "1000",
            "--registrar-connect-timeout", "1000",
            "--registrar-response-timeout", "1000",
            "--heartbeat-interval", "250",
            "--heartbeat-misses", "2",
            "--loglevel", "info",
            *extra,
        ]  # fmt: skip
        if registrars:
            args += ["--registrar", ",".join(r.asap_text for r in registrars)]
        super().__init__("rsplib.examples.echo_pe", args, log_dir / f"pe-{identifier:x}.log")
        self.identifier = identifier

    def registered(self, timeout: float = 15.0) -> EchoPe:
        self.wait_for(rf"PE 0x{self.identifier:08x} registered", timeout)
        return self

    def homes(self) -> list[tuple[str, int]]:
        """Every home registrar this PE adopted, in order."""
        return [(m["host"], int(m["port"])) for m in HOME_RE.finditer(self.log_text())]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_group() -> str:
    """A multicast group in the organisation-local range no other test is likely to use."""
    return f"239.255.{random.randint(1, 254)}.{random.randint(1, 254)}"
