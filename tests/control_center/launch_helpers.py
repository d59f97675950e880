"""Shared pieces of the launcher tests: small child programs and a CSP collector."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from control_center.commands import CommandLine
from rsplib.wire.csp import CspReport, decode_csp

#: Prints "ready", then sleeps; exits 0 on SIGINT (like a component's clean shutdown).
GRACEFUL = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, lambda *a: (print('got SIGINT', flush=True), sys.exit(0)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
#: Ignores SIGINT: a stop has to fall back to SIGKILL.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
#: Counts ticks to a file, so a test can see whether it runs or is stopped.
TICKER = (
    "import sys, time\n"
    "n = 0\n"
    "while True:\n"
    "    n += 1\n"
    "    open(sys.argv[1], 'w').write(str(n))\n"
    "    time.sleep(0.02)\n"
)


def python_command(
    tmp: Path, name: str, code: str, *args: str, python: str = sys.executable
) -> CommandLine:
    return CommandLine(
        argv=(python, "-c", code, *args),
        env={"PYTHONUNBUFFERED": "1"},
        cwd=None,
        log_file=str(tmp / f"{name}.log"),
    )


def proc_state(pid: int) -> str:
    """One-letter scheduler state of ``pid`` (R, S, T, Z...)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rsplit(")", 1)[1].split()[0]


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_log(path: str | Path, pattern: str, timeout: float = 10.0) -> None:
    def found() -> bool:
        try:
            return re.search(pattern, Path(path).read_text()) is not None
        except FileNotFoundError:
            return False

    await wait_for(found, timeout, f"{pattern!r} in {path}")


class CspCollector(asyncio.DatagramProtocol):
    """Collects decoded CSP reports arriving on an ephemeral UDP port."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, CspReport]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        with contextlib.suppress(Exception):
            self.reports.append((time.monotonic(), decode_csp(data)))

    @property
    def port(self) -> int:
        assert self.transport is not None
        sock: socket.socket = self.transport.get_extra_info("socket")
        return int(sock.getsockname()[1])

    def senders(self) -> set[int]:
        return {r.sender_id for _, r in self.reports}

    def final_from(self, sender: int) -> bool:
        return any(r.sender_id == sender and r.final for _, r in self.reports)

    def last_from(self, sender: int) -> CspReport | None:
        found = [r for _, r in self.reports if r.sender_id == sender]
        return found[-1] if found else None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_collector(address: str = "127.0.0.1") -> CspCollector:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(CspCollector, local_addr=(address, 0))
    return protocol
