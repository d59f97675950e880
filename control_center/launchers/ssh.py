"""Launcher for components on an SSH host (paramiko, key authentication).

Host keys are checked against a known_hosts file; unknown keys are refused
unless the scenario explicitly accepts them. Every remote call has a time
limit, so an unreachable host produces an error for that host instead of a
hang.

A component is started in the background through a tiny Python wrapper
(``setsid nohup python -c WRAPPER ... &``) that

* resets SIGINT/SIGQUIT to their defaults -- a background job of a
  non-interactive shell starts with them ignored, which would make a graceful
  stop impossible;
* writes the component's pid to a file, waits for it and writes its exit
  status to another file.

The launcher then signals the component's own pid (stop, kill, hang, resume)
and polls the status files, so exits are noticed with their status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from dataclasses import dataclass

import paramiko

from control_center.launchers.base import (
    ExitStatus,
    HostConnectionError,
    HostFailed,
    Launcher,
    LauncherError,
    ProcessInfo,
    ProcessState,
)
from control_center.scenario import SshHost

log = logging.getLogger(__name__)

#: Runs argv[3:] as a child, records its pid (argv[2]) and exit status (argv[1]).
WRAPPER = """\
import os, signal, subprocess, sys
for s in (signal.SIGINT, signal.SIGQUIT):
    signal.signal(s, signal.SIG_DFL)
status_file, pid_file = sys.argv[1], sys.argv[2]
def put(path, text):
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
try:
    child = subprocess.Popen(sys.argv[3:])
except OSError as exc:
    print('cannot start %s: %s' % (sys.argv[3], exc), file=sys.stderr)
    put(pid_file, '0')
    put(status_file, '127')
    sys.exit(127)
put(pid_file, str(child.pid))
put(status_file, str(child.wait()))
"""

DEFAULT_COMMAND_TIMEOUT_S = 10.0


def remote_quote(path: str) -> str:
    """Shell-quote a remote path, keeping a leading ``~/`` expandable."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class _LogUnknownHostKey(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]  # untyped
    """Accept an unknown host key (explicitly configured) and say so in the log."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        log.warning(
            "accepting unknown %s host key of %s (fingerprint %s) as configured",
            key.get_name(),
            hostname,
            key.fingerprint,
        )


@dataclass(slots=True)
class _RemoteFiles:
    pid: str
    status: str


class SshLauncher(Launcher):
    """Runs components on one SSH host."""

    def __init__(
        self,
        host: SshHost,
        run_dir: str,
        *,
        poll_interval: float = 0.25,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.host = host
        self.run_dir = run_dir
        self.poll_interval = poll_interval
        self.command_timeout = command_timeout
        self._client: paramiko.SSHClient | None = None
        self._files: dict[str, _RemoteFiles] = {}
        self._poller: asyncio.Task[None] | None = None
        self._failed_reported = False

    # -- connection -----------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._client = await asyncio.to_thread(self._connect)
            await self.run(f"mkdir -p {remote_quote(self.run_dir)}")
        except HostConnectionError as exc:
            self._emit(HostFailed(self.host.name, str(exc), time.monotonic()))
            raise
        self._poller = asyncio.create_task(self._poll_loop(), name=f"ssh poll {self.host.name}")

    def _connect(self) -> paramiko.SSHClient:
        host = self.host
        client = paramiko.SSHClient()
        known_hosts = os.path.expanduser(host.known_hosts)
        if os.path.exists(known_hosts):
            client.load_host_keys(known_hosts)
        elif not host.accept_unknown_host_keys:
            raise HostConnectionError(
                host.name,
                f"known_hosts file {known_hosts} does not exist; add the host key there "
                "or set accept_unknown_host_keys = true",
            )
        if host.accept_unknown_host_keys:
            client.set_missing_host_key_policy(_LogUnknownHostKey())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        timeout = host.connect_timeout_s
        try:
            client.connect(
                host.address,
                port=host.port,
                username=host.user,
                key_filename=os.path.expanduser(host.key_file),
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostConnectionError(
                host.name, f"host key of {host.address} does not match {known_hosts}: {exc}"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise HostConnectionError(
                host.name, f"authentication as {host.user} with {host.key_file} failed: {exc}"
            ) from exc
        except paramiko.SSHException as exc:
            client.close()
            hint = ""
            if "not found in known_hosts" in str(exc):
                hint = " (add it to known_hosts or set accept_unknown_host_keys = true)"
            raise HostConnectionError(host.name, f"{exc}{hint}") from exc
        except (OSError, EOFError) as exc:
            client.close()
            where = f"{host.address}:{host.port}"
            raise HostConnectionError(host.name, f"cannot connect to {where}: {exc}") from exc
        log.info("connected to %s (%s@%s:%d)", host.name, host.user, host.address, host.port)
        return client

    async def close(self) -> None:
        try:
            if self._client is not None:
                await super().close()
        finally:
            if self._poller is not None:
                self._poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._poller
                self._poller = None
            if self._client is not None:
                self._client.close()
                self._client = None

    async def run(self, command: str, timeout: float | None = None) -> tuple[int, str, str]:
        """Run ``command`` on the host: (exit status, stdout, stderr)."""
        return await asyncio.to_thread(self._run_blocking, command, timeout or self.command_timeout)

    async def check(self, command: str, timeout: float | None = None) -> str:
        code, out, err = await self.run(command, timeout)
        if code != 0:
            detail = err.strip() or out.strip() or f"exit status {code}"
            raise LauncherError(f"{self.host.name}: {detail}")
        return out

    def _run_blocking(self, command: str, timeout: float) -> tuple[int, str, str]:
        client = self._client
        if client is None:
            raise HostConnectionError(self.host.name, "not connected")
        try:
            _, stdout, stderr = client.exec_command(command, timeout=timeout)
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
            raise HostConnectionError(self.host.name, f"remote command failed: {exc}") from exc
        return code, out, err

    # -- primitives -----------------------------------------------------------------
    async def _spawn(self, info: ProcessInfo) -> int:
        cmd = info.command
        stem = os.path.splitext(cmd.log_file)[0]
        files = _RemoteFiles(pid=f"{stem}.pid", status=f"{stem}.status")
        pid_q, status_q, log_q = (remote_quote(p) for p in (files.pid, files.status, cmd.log_file))
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cmd.env.items())
        argv = " ".join(shlex.quote(a) for a in cmd.argv)
        wrapper = f"{shlex.quote(self.host.python)} -c {shlex.quote(WRAPPER)}"
        header = shlex.quote(f"=== start: {' '.join(cmd.argv)}")
        # One command per line and a plain '&': 'cd DIR && CMD &' would keep the channel open.
        script = "\n".join(
            [
                f"mkdir -p {remote_quote(os.path.dirname(cmd.log_file))}",
                f"cd {remote_quote(cmd.cwd or self.run_dir)} || exit 97",
                f"rm -f {pid_q} {status_q}",
                f"echo {header} >>{log_q}",
                f"env {env} setsid nohup {wrapper} {status_q} {pid_q} {argv} "
                f">>{log_q} 2>&1 </dev/null &",
                f"for i in $(seq 1 200); do [ -s {pid_q} ] && break; sleep 0.05; done",
                f"cat {pid_q}",
            ]
        )
        code, out, err = await self.run(script)
        if code != 0:
            raise LauncherError(err.strip() or f"remote start failed with status {code}")
        try:
            pid = int(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise LauncherError(f"no pid from the remote wrapper (output {out!r})") from None
        if pid <= 0:
            tail = await self._tail_path(cmd.log_file, 5)
            raise LauncherError("; ".join(tail) or "the command could not be started")
        self._files[info.component] = files
        return pid

    async def _signal(self, info: ProcessInfo, sig: signal.Signals) -> None:
        if not info.running or info.pid <= 0:
            return
        # Failure means the process is already gone; the poller reports that.
        await self.run(f"kill -{sig.name.removeprefix('SIG')} {info.pid} 2>/dev/null")

    async def _read_tail(self, info: ProcessInfo, lines: int) -> list[str]:
        return await self._tail_path(info.command.log_file, lines)

    async def _tail_path(self, path: str, lines: int) -> list[str]:
        _, out, _ = await self.run(f"tail -n {int(lines)} {remote_quote(path)} 2>/dev/null")
        return out.splitlines()

    # -- exit detection ----------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            watched = [p for p in self.processes.values() if p.running]
            if not watched:
                continue
            try:
                await self.poll_once(watched)
                self._failed_reported = False
            except HostConnectionError as exc:
                if not self._failed_reported:
                    log.error("%s", exc)
                    self._emit(HostFailed(self.host.name, str(exc), time.monotonic()))
                    self._failed_reported = True

    async def poll_once(self, watched: list[ProcessInfo]) -> None:
        """One status round trip for all ``watched`` processes."""
        parts = []
        for info in watched:
            files = self._files[info.component]
            status_q = remote_quote(files.status)
            parts.append(
                f"if [ -s {status_q} ]; then echo {info.pid} exit $(cat {status_q}); "
                f"elif [ -d /proc/{info.pid} ]; then echo {info.pid} state "
                f"$(cut -d')' -f2 /proc/{info.pid}/stat | cut -d' ' -f2); "
                f"else echo {info.pid} gone; fi"
            )
        _, out, _ = await self.run("; ".join(parts))
        by_pid = {info.pid: info for info in watched}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) < 2 or not fields[0].isdigit():
                continue
            found = by_pid.get(int(fields[0]))
            if found is None or not found.running:
                continue
            info = found
            if fields[1] == "exit" and len(fields) == 3:
                try:
                    self._exited(info, ExitStatus.from_returncode(int(fields[2])))
                except ValueError:
                    self._exited(info, ExitStatus())
            elif fields[1] == "gone":
                # The wrapper itself was killed: the pid is gone, its status unknown.
                self._exited(info, ExitStatus())
            elif fields[1] == "state" and len(fields) == 3 and fields[2] == "Z":
                continue  # the wrapper is about to write the status
            elif fields[1] == "state" and info.state is ProcessState.HUNG and fields[2] != "T":
                info.state = ProcessState.RUNNING  # continued by someone else
