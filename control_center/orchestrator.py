"""Runs a scenario: one launcher per host, actions by component name, ordered start/stop.

``start_all`` starts registrars first (and waits until their ASAP ports
accept connections), then pool elements, then pool users, honouring
``depends_on``; ``stop_all`` goes the other way round. Every single action
(start, stop, kill, hang, resume, restart, unplug, replug, impair) is also
available by component or host name, so a GUI or a storyboard drives the
scenario through this one object and receives every launcher's events
through :meth:`Orchestrator.subscribe`.

Typical use::

    async with Orchestrator(scenario) as orch:   # creates the lab, connects SSH hosts
        monitor.bind(orch.csp_listen_address, scenario.csp_port)
        orch.csp_port = monitor.port              # if the monitor picked a free port
        await orch.start_all()
        ...
    # leaving the block stops everything and removes the lab, also after errors
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import ipaddress
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from control_center.commands import (
    RSPLIB_PACKAGE,
    RSPLIB_PROGRAM,
    CommandLine,
    RunContext,
    build_command,
    registrar_endpoints,
)
from control_center.launchers.base import (
    Action,
    ExitStatus,
    HostConnectionError,
    Impairment,
    Launcher,
    LauncherError,
    LauncherEvent,
    ProcessState,
)
from control_center.launchers.local import LocalLauncher
from control_center.launchers.netns import NetnsLab, NetnsLauncher
from control_center.launchers.ssh import SshLauncher
from control_center.scenario import (
    Component,
    ComponentKind,
    LocalHost,
    NetnsHost,
    Scenario,
    SshHost,
)
from rsplib.core_driver import Listeners
from rsplib.transport import SCTP, TransportError, connect, sctp_available
from rsplib.wire.csp import ComponentGroup

log = logging.getLogger(__name__)

LAB_KEY = "<lab>"
SSH_RUN_SUBDIR = ".rsp-run"


#: Called by ``start_all`` before the pool users start; returns a note for the user.
BeforePoolUsers = Callable[["Orchestrator"], Awaitable[str | None]]


class OrchestratorError(RuntimeError):
    """One or more components or hosts failed; ``failures`` maps each name to its message."""

    def __init__(self, what: str, failures: dict[str, str]) -> None:
        self.failures = failures
        lines = "; ".join(f"{name}: {msg}" for name, msg in failures.items())
        super().__init__(f"{what}: {lines}")


def scenario_slug(scenario: Scenario) -> str:
    base = scenario.source.stem if scenario.source is not None else scenario.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-") or "scenario"


def default_run_dir(scenario: Scenario) -> Path:
    """Logs and outputs: the scenario's ``run_dir`` or a per-user temporary directory."""
    if scenario.run_dir is not None:
        return scenario.run_dir
    user = re.sub(r"[^A-Za-z0-9_-]", "_", getpass.getuser())
    return Path(tempfile.gettempdir()) / f"rsp-control-center.{user}" / scenario_slug(scenario)


#: How long a started registrar may take to accept connections. A Python registrar needs
#: 4-5 s on an emulated (TCG) machine and twice that when the machine is shared; the
#: wait ends at once when the process exits, so only a live, silent registrar waits it out.
READY_TIMEOUT_S = 30.0


def _speaks_sctp(registrar: Component) -> bool:
    """Does this registrar listen on SCTP (rsplib's always; ours by its transport option)?"""
    if registrar.kind is ComponentKind.RSP_REGISTRAR:
        return True
    transport = str(registrar.options.get("transport", "auto"))
    return transport == "sctp" or (transport == "auto" and sctp_available())


async def _probe_connection(address: str, port: int, *, sctp: bool) -> None:
    """Open and drop one connection; raises OSError/TimeoutError when nobody listens."""
    if sctp:
        channel = await connect(address, port, transport=SCTP, timeout=1.0)
        channel.abort()
        return
    _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 1.0)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def display_available() -> bool:
    """Can GUI programs started here open windows? (A display, and Qt not told otherwise.)"""
    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def free_tcp_port(address: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind to 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class Orchestrator:
    def __init__(
        self,
        scenario: Scenario,
        *,
        run_dir: str | Path | None = None,
        csp_port: int | None = None,
        python: str = sys.executable,
        ready_timeout: float = READY_TIMEOUT_S,
        ssh_poll_interval: float = 0.25,
        lab_token: str | None = None,
        local_display: bool | None = None,
    ) -> None:
        self.scenario = scenario
        #: GUI components on this machine may open windows (default: a display is there).
        self.local_display = display_available() if local_display is None else local_display
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(scenario)
        #: Port the components report to; set it to the monitor's port before start_all.
        self.csp_port = csp_port if csp_port is not None else scenario.csp_port
        #: Where the components send their trace (set once the receiver listens).
        self.trace_port: int | None = None
        self.python = python
        self.ready_timeout = ready_timeout
        self.ssh_poll_interval = ssh_poll_interval
        self.lab_token = lab_token
        self.lab: NetnsLab | None = None
        #: Launcher per host name (all virtual hosts share the lab's launcher).
        self.launchers: dict[str, Launcher] = {}
        #: Hosts that could not be reached or set up, with the reason.
        self.host_errors: dict[str, str] = {}
        self.registrar_ports: dict[str, tuple[int, int]] = {}
        self._listeners: Listeners[LauncherEvent] = Listeners("orchestrator")
        self._opened: list[Launcher] = []
        # One key per run, shared by all fractal components of the pool (failover
        # cookies must verify at every PE); unused when the scenario names a key file.
        self.cookie_key = "hex:" + secrets.token_hex(32)

    # -- events -----------------------------------------------------------------
    def subscribe(self, listener: Callable[[LauncherEvent], None]) -> Callable[[], None]:
        """Receive the events of every launcher; returns an unsubscribe function."""
        return self._listeners.add(listener)

    def _forward(self, event: LauncherEvent) -> None:
        self._listeners.emit(event)

    # -- lifecycle ------------------------------------------------------------------
    async def __aenter__(self) -> Orchestrator:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def used_hosts(self) -> list[str]:
        seen: dict[str, None] = {}
        for comp in self.scenario.components:
            seen.setdefault(comp.host, None)
        return list(seen)

    async def open(self, *, require_all_hosts: bool = True) -> None:
        """Create the lab and connect SSH hosts (in parallel).

        A host that fails is recorded in :attr:`host_errors`; with
        ``require_all_hosts`` the whole scenario is closed again and
        :class:`OrchestratorError` names every failed host.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._resolve_registrar_ports()
        groups: dict[str, tuple[Launcher, list[str]]] = {}
        for name in self.used_hosts():
            host = self.scenario.hosts[name]
            if isinstance(host, LocalHost):
                key = "<local>"
                if key not in groups:
                    groups[key] = (LocalLauncher(), [])
            elif isinstance(host, NetnsHost):
                key = LAB_KEY
                if key not in groups:
                    self.lab = NetnsLab(
                        self.scenario.netns_hosts(),
                        self._lab_gateway(),
                        self.scenario.lab.unplug_method,
                        token=self.lab_token,
                    )
                    groups[key] = (NetnsLauncher(self.lab), [])
            else:
                key = name
                groups[key] = (
                    SshLauncher(
                        host, self._ssh_run_dir(host), poll_interval=self.ssh_poll_interval
                    ),
                    [],
                )
            groups[key][1].append(name)

        async def open_one(launcher: Launcher, hosts: list[str]) -> None:
            launcher.subscribe(self._forward)
            try:
                await launcher.open()
            except (HostConnectionError, LauncherError, OSError) as exc:
                for host_name in hosts:
                    self.host_errors[host_name] = str(exc)
                if isinstance(launcher, NetnsLauncher):
                    await launcher.close()
                return
            self._opened.append(launcher)
            for host_name in hosts:
                self.launchers[host_name] = launcher

        await asyncio.gather(*(open_one(launcher, hosts) for launcher, hosts in groups.values()))
        if self.host_errors and require_all_hosts:
            errors = dict(self.host_errors)
            await self.close()
            raise OrchestratorError("hosts not available", errors)

    async def close(self) -> None:
        """Stop every component (dependency order) and release hosts; never raises."""
        try:
            await self.stop_all()
        except Exception:
            log.exception("stopping the scenario failed")
        for launcher in self._opened:
            try:
                await launcher.close()
            except Exception:
                log.exception("closing %s failed", type(launcher).__name__)
        self._opened.clear()
        self.launchers.clear()

    # -- addresses and commands -----------------------------------------------------
    def _lab_gateway(self) -> ipaddress.IPv4Interface:
        gateway = self.scenario.lab_gateway()
        assert gateway is not None  # only called with virtual hosts
        return gateway

    def _ssh_run_dir(self, host: SshHost) -> str:
        return f"{host.workdir.rstrip('/')}/{SSH_RUN_SUBDIR}/{scenario_slug(self.scenario)}"

    def _resolve_registrar_ports(self) -> None:
        """Port 0 in a scenario means "any free port", picked now for this run."""
        taken: dict[str, set[int]] = {}
        for reg in self.scenario.registrars():
            host = self.scenario.host_of(reg)
            ports = []
            for port, default in ((reg.asap_port, 3863), (reg.enrp_port, 9901)):
                if port == 0:
                    if isinstance(host, LocalHost):
                        port = free_tcp_port(host.component_address)
                    elif isinstance(host, NetnsHost):
                        # A fresh namespace has every port free; avoid only our own picks.
                        port = default
                        while port in taken.setdefault(host.name, set()):
                            port += 1
                    else:
                        raise OrchestratorError(
                            "registrar ports", {reg.name: "SSH hosts need fixed ports"}
                        )
                taken.setdefault(host.name, set()).add(port)
                ports.append(port)
            self.registrar_ports[reg.name] = (ports[0], ports[1])

    @property
    def csp_listen_address(self) -> str:
        """Where the monitor should listen so that every host's reports arrive."""
        kinds = {type(self.scenario.hosts[h]) for h in self.used_hosts()}
        return "127.0.0.1" if kinds <= {LocalHost} else "0.0.0.0"

    def csp_address_of(self, host_name: str) -> str:
        host = self.scenario.hosts[host_name]
        if isinstance(host, NetnsHost):
            return str(self._lab_gateway().ip)
        if isinstance(host, SshHost):
            return host.csp_address
        return "127.0.0.1"

    def run_context(self) -> RunContext:
        run_dirs: dict[str, str] = {}
        for name, host in self.scenario.hosts.items():
            if isinstance(host, SshHost):
                run_dirs[name] = self._ssh_run_dir(host)
            else:
                run_dirs[name] = str(self.run_dir)
        return RunContext(
            run_dirs=run_dirs,
            csp_port=self.csp_port,
            trace_port=self.trace_port,
            csp_addresses={h: self.csp_address_of(h) for h in self.scenario.hosts},
            registrar_ports=dict(self.registrar_ports),
            python=self.python,
            cookie_key=self.cookie_key,
            local_display=self.local_display,
        )

    def command(self, name: str) -> CommandLine:
        return build_command(self.scenario, self.scenario.component(name), self.run_context())

    def files(self, name: str) -> dict[str, str]:
        """Output files of a component (e.g. a PU's ``report`` and ``image``)."""
        return dict(self.command(name).files)

    # -- lookups ----------------------------------------------------------------------
    def launcher_of(self, name: str) -> Launcher:
        comp = self.scenario.component(name)
        return self._host_launcher(comp.host)

    def _host_launcher(self, host: str) -> Launcher:
        if host in self.host_errors:
            raise LauncherError(f"host {host} is not available: {self.host_errors[host]}")
        try:
            return self.launchers[host]
        except KeyError:
            raise LauncherError(f"host {host} is not open (no component uses it?)") from None

    def supports(self, host: str, action: Action) -> bool:
        launcher = self.launchers.get(host)
        return launcher is not None and action in launcher.supported

    def state(self, name: str) -> ProcessState | None:
        launcher = self.launchers.get(self.scenario.component(name).host)
        return launcher.state(name) if launcher is not None else None

    def is_running(self, name: str) -> bool:
        launcher = self.launchers.get(self.scenario.component(name).host)
        return launcher is not None and launcher.is_running(name)

    def pid(self, name: str) -> int | None:
        launcher = self.launchers.get(self.scenario.component(name).host)
        if launcher is None or name not in launcher.processes:
            return None
        return launcher.processes[name].pid

    def log_file(self, name: str) -> str:
        return self.command(name).log_file

    async def log_tail(self, name: str, lines: int = 50) -> list[str]:
        return await self.launcher_of(name).log_tail(name, lines)

    def _grace(self, comp: Component, grace: float | None) -> float:
        if grace is not None:
            return grace
        return comp.stop_grace_s if comp.stop_grace_s is not None else self.scenario.stop_grace_s

    # -- component actions -------------------------------------------------------------
    async def start(self, name: str) -> None:
        comp = self.scenario.component(name)
        if comp.kind.from_rsplib:
            self._check_rsplib_runs(comp)
        await self.launcher_of(name).start(name, comp.host, self.command(name))
        if comp.kind.is_registrar:
            await self.wait_ready(name)

    def _check_rsplib_runs(self, comp: Component) -> None:
        """rsplib's programs need their package and kernel SCTP (checked for this machine)."""
        if isinstance(self.scenario.host_of(comp), SshHost):
            return  # that host's business; its log says what is wrong
        program = RSPLIB_PROGRAM[comp.kind][0]
        if shutil.which(program) is None:
            package = RSPLIB_PACKAGE[comp.kind]
            raise LauncherError(
                f"{comp.name}: {program} is not installed "
                f"(Debian package {package}; scripts/setup.sh installs it as root)"
            )
        if not sctp_available():
            raise LauncherError(
                f"{comp.name}: {program} needs kernel SCTP, which this machine lacks "
                "(run the scenario inside the SCTP lab: docs/sctp-lab.md)"
            )

    async def stop(self, name: str, grace: float | None = None) -> ExitStatus | None:
        comp = self.scenario.component(name)
        return await self.launcher_of(name).stop(name, self._grace(comp, grace))

    async def kill(self, name: str) -> ExitStatus | None:
        return await self.launcher_of(name).kill(name)

    async def hang(self, name: str) -> None:
        await self.launcher_of(name).hang(name)

    async def resume(self, name: str) -> None:
        await self.launcher_of(name).resume(name)

    async def restart(self, name: str, grace: float | None = None) -> None:
        comp = self.scenario.component(name)
        launcher = self.launcher_of(name)
        if name in launcher.processes:
            await launcher.restart(name, self._grace(comp, grace), self.command(name))
        else:
            await launcher.start(name, comp.host, self.command(name))
        if comp.kind.is_registrar:
            await self.wait_ready(name)

    async def wait_ready(self, name: str) -> None:
        """Wait until a registrar accepts ASAP connections (local and virtual hosts)."""
        comp = self.scenario.component(name)
        host = self.scenario.host_of(comp)
        if isinstance(host, SshHost):
            return  # not reachable from here in general; PEs retry their registrar hunt
        address, port, _ = registrar_endpoints(self.scenario, comp, self.run_context())
        deadline = time.monotonic() + self.ready_timeout
        launcher = self.launcher_of(name)
        while True:
            if not launcher.is_running(name):
                info = launcher.processes.get(name)
                status = info.exit_status if info is not None else None
                tail = "; ".join(await launcher.log_tail(name, 3)) if info else ""
                raise LauncherError(f"{name} exited during start-up ({status}): {tail}")
            try:
                # The transport the registrar listens on: kernel SCTP for rsplib's, and
                # for ours with --transport auto where this kernel has it (a TCP probe
                # would never connect there).
                await _probe_connection(address, port, sctp=_speaks_sctp(comp))
            except (OSError, TimeoutError, TransportError):
                if time.monotonic() > deadline:
                    raise LauncherError(
                        f"{name} does not accept connections on {address}:{port} "
                        f"after {self.ready_timeout:g} s"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            return

    # -- whole scenario --------------------------------------------------------------------
    async def start_all(self, *, before_pool_users: BeforePoolUsers | None = None) -> str | None:
        """Start every component that is not running, wave by wave (registrars first).

        ``before_pool_users`` runs before the first wave with a pool user (it waits
        for the pool elements' registration); what it returns is returned here.
        """
        note: str | None = None
        waited = before_pool_users is None
        for wave in self.scenario.start_waves():
            pending = [c.name for c in wave if not self.is_running(c.name)]
            if not waited and any(c.group == ComponentGroup.POOL_USER for c in wave):
                waited = True
                assert before_pool_users is not None
                note = await before_pool_users(self)
            results = await asyncio.gather(
                *(self.start(name) for name in pending), return_exceptions=True
            )
            failures = {
                name: str(result)
                for name, result in zip(pending, results, strict=True)
                if isinstance(result, BaseException)
            }
            if failures:
                raise OrchestratorError("start failed", failures)
        return note

    async def stop_all(self, *, kill: bool = False, grace: float | None = None) -> None:
        """Stop (or kill) every running component: pool users first, registrars last."""
        for wave in self.scenario.stop_waves():
            running = [c.name for c in wave if self.is_running(c.name)]
            actions = [self.kill(n) if kill else self.stop(n, grace) for n in running]
            results = await asyncio.gather(*actions, return_exceptions=True)
            for name, result in zip(running, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("stopping %s failed: %s", name, result)

    # -- host faults -------------------------------------------------------------------------
    async def unplug(self, host: str) -> None:
        await self._host_launcher(host).unplug(host)

    async def replug(self, host: str) -> None:
        await self._host_launcher(host).replug(host)

    async def impair(self, host: str, impairment: Impairment | None) -> None:
        await self._host_launcher(host).impair(host, impairment)
