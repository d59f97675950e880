"""SSH launcher against a private sshd on 127.0.0.1 (own host and client keys).

Skipped with the reason when openssh-server (or ssh-keygen) is missing or we
are not root (sshd's privilege separation needs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from control_center.launchers.base import (
    Action,
    ExitStatus,
    HostFailed,
    LauncherEvent,
    ProcessExited,
    ProcessState,
)
from control_center.launchers.ssh import SshLauncher
from control_center.orchestrator import Orchestrator, OrchestratorError, free_tcp_port
from control_center.scenario import SshHost
from control_center.scenario_file import loads_scenario
from tests.control_center.launch_helpers import (
    GRACEFUL,
    open_collector,
    proc_state,
    python_command,
    wait_for,
)

T = TypeVar("T")
SSHD = "/usr/sbin/sshd"
PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh-keygen") and os.geteuid() == 0),
    reason="needs root, /usr/sbin/sshd and ssh-keygen (apt-get install openssh-server)",
)


def run(factory: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(main())


@dataclass(frozen=True)
class Sshd:
    port: int
    client_key: Path
    known_hosts: Path
    empty_known_hosts: Path


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    port = free_tcp_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"PidFile {keys / 'sshd.pid'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with open(keys / "sshd.log", "wb") as sshd_log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=sshd_log)
    try:
        host_key = (keys / "host.pub").read_text().split()
        known = keys / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        empty = keys / "empty_known_hosts"
        empty.write_text("")
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"sshd did not start: {(keys / 'sshd.log').read_text()}")
                time.sleep(0.05)
        yield Sshd(port, keys / "client", known, empty)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ssh_host(server: Sshd, tmp_path: Path, **changes: object) -> SshHost:
    values: dict[str, object] = {
        "name": "remote1",
        "address": "127.0.0.1",
        "user": "root",
        "key_file": str(server.client_key),
        "workdir": str(PROJECT),
        "port": server.port,
        "known_hosts": str(server.known_hosts),
        "python": sys.executable,
        "connect_timeout_s": 3.0,
    }
    values.update(changes)
    return SshHost(**values)  # type: ignore[arg-type]


def test_process_actions_over_ssh(sshd: Sshd, tmp_path: Path) -> None:
    async def body() -> None:
        launcher = SshLauncher(ssh_host(sshd, tmp_path), str(tmp_path / "run"))
        events: list[LauncherEvent] = []
        launcher.subscribe(events.append)
        await launcher.open()
        try:
            cmd = python_command(tmp_path / "run", "g", GRACEFUL)
            info = await launcher.start("G", "remote1", cmd)
            await wait_for(lambda: "ready" in Path(cmd.log_file).read_text().splitlines(), 10, "up")
            await launcher.hang("G")
            await wait_for(lambda: proc_state(info.pid) == "T", 3, "stopped")
            await launcher.resume("G")
            await wait_for(lambda: proc_state(info.pid) != "T", 3, "running")
            # The wrapper restored SIGINT, so the program's own handler gets it.
            assert await launcher.stop("G", grace=5) == ExitStatus(code=0)
            assert await launcher.log_tail("G", 1) == ["got SIGINT"]

            await launcher.start("G", "remote1", cmd)
            assert await launcher.kill("G") == ExitStatus(signal=signal.SIGKILL)

            crash = python_command(tmp_path / "run", "c", "import sys; sys.exit(4)")
            await launcher.start("C", "remote1", crash)
            await wait_for(lambda: launcher.state("C") is ProcessState.EXITED, 5, "crash seen")
            exits = [e for e in events if isinstance(e, ProcessExited) and e.component == "C"]
            assert exits[0].status == ExitStatus(code=4) and not exits[0].expected
        finally:
            await launcher.close()

    run(body)


def test_scenario_pe_on_ssh_host_reports_stops_and_is_killed(sshd: Sshd, tmp_path: Path) -> None:
    text = f"""\
[scenario]
csp_port = 0
stop_grace_s = 5
[hosts.remote1]
kind = "ssh"
address = "127.0.0.1"
port = {sshd.port}
user = "root"
key_file = "{sshd.client_key}"
known_hosts = "{sshd.known_hosts}"
workdir = "{PROJECT}"
python = "{sys.executable}"
[[components]]
name = "PR-1"
kind = "registrar"
asap_port = 0
enrp_port = 0
[[components]]
name = "PE-1"
kind = "fractal-pe"
host = "remote1"
options = {{ test_mode = true }}
"""
    scenario = loads_scenario(text, source=tmp_path / "remote.toml")
    pe = scenario.component("PE-1")
    assert pe.csp_id is not None

    async def body() -> None:
        collector = await open_collector()
        try:
            async with Orchestrator(scenario, run_dir=tmp_path, csp_port=collector.port) as orch:
                assert orch.supports("remote1", Action.HANG)
                assert not orch.supports("remote1", Action.UNPLUG)
                await orch.start_all()
                await wait_for(lambda: pe.csp_id in collector.senders(), 15, "remote PE report")
                assert await orch.stop("PE-1") == ExitStatus(code=0)
                assert collector.final_from(pe.csp_id)  # type: ignore[arg-type]
                await orch.restart("PE-1")
                assert await orch.kill("PE-1") == ExitStatus(signal=signal.SIGKILL)
                assert "PE-1.log" in orch.log_file("PE-1")
        finally:
            collector.close()

    run(body)


def test_unknown_host_key_is_refused_per_host(sshd: Sshd, tmp_path: Path) -> None:
    async def body() -> None:
        host = ssh_host(sshd, tmp_path, known_hosts=str(sshd.empty_known_hosts))
        launcher = SshLauncher(host, str(tmp_path))
        events: list[LauncherEvent] = []
        launcher.subscribe(events.append)
        with pytest.raises(Exception, match="accept_unknown_host_keys") as info:
            await launcher.open()
        assert "remote1" in str(info.value)
        assert [type(e) for e in events] == [HostFailed]
        # Accepting unknown keys is an explicit choice.
        trusting = SshLauncher(
            ssh_host(sshd, tmp_path, known_hosts=str(sshd.empty_known_hosts),
                     accept_unknown_host_keys=True),
            str(tmp_path),
        )  # fmt: skip
        await trusting.open()
        code, out, _ = await trusting.run("echo ok")
        assert (code, out) == (0, "ok\n")
        await trusting.close()

    run(body)


def test_unreachable_host_fails_fast_and_names_it(tmp_path: Path) -> None:
    closed_port = free_tcp_port()
    text = f"""\
[scenario]
csp_port = 0
[hosts.nowhere]
kind = "ssh"
address = "127.0.0.1"
port = {closed_port}
user = "root"
key_file = "{tmp_path / "none"}"
known_hosts = "{tmp_path / "kh"}"
accept_unknown_host_keys = true
workdir = "/tmp"
connect_timeout_s = 2
[[components]]
name = "PE-1"
kind = "echo-pe"
host = "nowhere"
"""
    scenario = loads_scenario(text, source=tmp_path / "s.toml")

    async def body() -> None:
        began = time.monotonic()
        with pytest.raises(OrchestratorError) as info:
            await Orchestrator(scenario, run_dir=tmp_path).open()
        assert time.monotonic() - began < 5
        assert set(info.value.failures) == {"nowhere"}
        assert "cannot connect" in info.value.failures["nowhere"]

    run(body)
