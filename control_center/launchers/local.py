"""Launcher for components on this machine (plain child processes).

Each component runs in its own session (``start_new_session``), so a Ctrl-C
in the control center's terminal does not reach it and signals go to exactly
the process we started, by pid. stdout and stderr go to the component's log
file; the launcher never reads the pipes, so a chatty component cannot block.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Sequence
from datetime import datetime

from control_center.launchers.base import ExitStatus, Launcher, ProcessInfo


def tail_lines(path: str, lines: int, block: int = 8192) -> list[str]:
    """Last ``lines`` lines of a text file, reading backwards in blocks."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            data = b""
            while end > 0 and data.count(b"\n") <= lines:
                step = min(block, end)
                end -= step
                fh.seek(end)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


class LocalLauncher(Launcher):
    """Runs components as child processes of the control center."""

    def __init__(self) -> None:
        super().__init__()
        self._watchers: set[asyncio.Task[None]] = set()

    def _argv(self, info: ProcessInfo) -> Sequence[str]:
        """The command to execute; subclasses wrap it (e.g. in a namespace)."""
        return info.command.argv

    async def _spawn(self, info: ProcessInfo) -> int:
        cmd = info.command
        os.makedirs(os.path.dirname(cmd.log_file) or ".", exist_ok=True)
        argv = list(self._argv(info))
        with open(cmd.log_file, "ab") as logf:
            stamp = datetime.now().isoformat(timespec="seconds")
            logf.write(f"=== {stamp} start: {shlex.join(argv)}\n".encode())
            logf.flush()
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **cmd.env},
                cwd=cmd.cwd,
                start_new_session=True,
            )
        task = asyncio.create_task(self._watch(info, proc), name=f"watch {info.component}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return proc.pid

    async def _watch(self, info: ProcessInfo, proc: asyncio.subprocess.Process) -> None:
        returncode = await proc.wait()
        status = ExitStatus.from_returncode(returncode)
        with contextlib.suppress(OSError), open(info.command.log_file, "ab") as logf:
            stamp = datetime.now().isoformat(timespec="seconds")
            logf.write(f"=== {stamp} {status}\n".encode())
        self._exited(info, status)

    async def _signal(self, info: ProcessInfo, sig: signal.Signals) -> None:
        if not info.running or info.pid <= 0:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, sig)

    async def _read_tail(self, info: ProcessInfo, lines: int) -> list[str]:
        return await asyncio.to_thread(tail_lines, info.command.log_file, lines)

    async def close(self) -> None:
        await super().close()
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
