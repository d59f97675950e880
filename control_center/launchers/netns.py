"""Virtual-host lab: one network namespace per host, all on one bridge.

Layout (``T`` = a token unique to this lab, so several labs can coexist)::

    root namespace            switch namespace rsp-T-sw              host namespace rsp-T-NAME
    rspT  (gateway addr) ---- up0 ---+                                eth0 (host address)
                                     br0 ---- pN -------------------- (veth)

The control center keeps one port on the bridge (``rspT`` in the root
namespace, with the lab's gateway address) so components' status reports
reach the monitor. Unplugging a host takes its switch port down (or disables
it in the bridge), so the host keeps its address and sees no error: exactly a
pulled cable. Impairments use ``tc`` on both ends of the host's link (tbf for
a rate limit; netem for delay and loss where the kernel has it).

Everything is removed again when the lab is destroyed, also after errors, and
at interpreter exit as a last resort.
"""

from __future__ import annotations

import asyncio
import atexit
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence

from control_center.launchers.base import (
    HOST_ACTIONS,
    PROCESS_ACTIONS,
    HostChanged,
    HostConnectionError,
    Impairment,
    LauncherError,
    ProcessInfo,
)
from control_center.launchers.local import LocalLauncher
from control_center.scenario import NetnsHost

log = logging.getLogger(__name__)

MULTICAST_ROUTE = "224.0.0.0/4"
_live_labs: set[NetnsLab] = set()


def lab_requirements_problem() -> str | None:
    """Why a lab cannot be built here, or ``None`` if it can."""
    if os.geteuid() != 0:
        return "virtual hosts need root (network namespaces, veth, bridge); run as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"virtual hosts need the {tool!r} tool (Debian package iproute2)"
    return None


async def run_ip(*args: str, check: bool = True) -> str:
    """Run an ``ip``/``tc``/``bridge`` command; raise :class:`LauncherError` with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise LauncherError(f"{' '.join(args)}: {message}")
    return out.decode(errors="replace")


class NetnsLab:
    """Creates, changes and removes the namespaces and links of one lab."""

    def __init__(
        self,
        hosts: Sequence[NetnsHost],
        gateway: ipaddress.IPv4Interface,
        unplug_method: str = "link",
        token: str | None = None,
    ) -> None:
        if not hosts:
            raise ValueError("a lab needs at least one virtual host")
        self.hosts = {h.name: h for h in hosts}
        self.gateway = gateway
        self.unplug_method = unplug_method
        self.token = token or secrets.token_hex(3)
        self.switch = f"rsp-{self.token}-sw"
        self.uplink = f"rsp{self.token}"
        self._ports = {name: f"p{i}" for i, name in enumerate(self.hosts)}
        self._created: list[str] = []  # namespaces that exist now
        self._uplink_created = False
        self.unplugged: set[str] = set()
        self.impaired: set[str] = set()

    def namespace(self, host: str) -> str:
        if host not in self.hosts:
            raise LauncherError(f"{host} is not a virtual host of this lab")
        return f"rsp-{self.token}-{host}"

    def switch_port(self, host: str) -> str:
        self.namespace(host)
        return self._ports[host]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.gateway.network

    # -- create / destroy -------------------------------------------------------
    async def create(self) -> None:
        problem = lab_requirements_problem()
        if problem is not None:
            raise HostConnectionError("lab", problem)
        await self._check_subnet_free()
        _live_labs.add(self)
        try:
            await self._build()
        except Exception:
            await self.destroy()
            raise
        log.info(
            "lab %s: %d virtual hosts on %s, control center at %s",
            self.token,
            len(self.hosts),
            self.network,
            self.gateway.ip,
        )

    async def _check_subnet_free(self) -> None:
        """Refuse a subnet this machine already uses: the uplink would hijack its routes."""
        routes = json.loads(await run_ip("ip", "-4", "-j", "route", "show") or "[]")
        for route in routes:
            dst = route.get("dst", "")
            if dst in ("", "default"):
                continue
            try:
                network = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            except ValueError:
                continue
            if network.overlaps(self.network):
                raise HostConnectionError(
                    "lab",
                    f"subnet {self.network} overlaps {network} (dev {route.get('dev')}) "
                    "on this machine; choose other virtual-host addresses",
                )

    async def _build(self) -> None:
        sw = self.switch
        await run_ip("ip", "netns", "add", sw)
        self._created.append(sw)
        await run_ip("ip", "-n", sw, "link", "set", "lo", "up")
        await run_ip("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        await run_ip("ip", "-n", sw, "link", "set", "br0", "up")
        for name, host in self.hosts.items():
            ns = self.namespace(name)
            port = self._ports[name]
            await run_ip("ip", "netns", "add", ns)
            self._created.append(ns)
            await run_ip("ip", "-n", ns, "link", "set", "lo", "up")
            await run_ip(
                "ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                "peer", "name", port, "netns", sw,
            )  # fmt: skip
            await run_ip("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
            await run_ip("ip", "-n", ns, "addr", "add", str(host.interface), "dev", "eth0")
            await run_ip("ip", "-n", ns, "link", "set", "eth0", "up")
            # Multicast (ASAP announces, ENRP presence) leaves through the lab link.
            await run_ip("ip", "-n", ns, "route", "add", MULTICAST_ROUTE, "dev", "eth0")
        await run_ip(
            "ip", "link", "add", self.uplink, "type", "veth", "peer", "name", "up0", "netns", sw
        )
        self._uplink_created = True
        await run_ip("ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
        await run_ip("ip", "addr", "add", str(self.gateway), "dev", self.uplink)
        await run_ip("ip", "link", "set", self.uplink, "up")

    async def destroy(self) -> None:
        """Remove everything this lab created; errors are logged, never raised."""
        if self._uplink_created:
            await run_ip("ip", "link", "del", self.uplink, check=False)
            self._uplink_created = False
        for ns in reversed(self._created):
            try:
                await run_ip("ip", "netns", "del", ns)
            except LauncherError as exc:
                log.warning("lab %s: %s", self.token, exc)
        self._created.clear()
        _live_labs.discard(self)

    def destroy_sync(self) -> None:
        """Blocking variant for interpreter exit (no event loop any more)."""
        if self._uplink_created:
            subprocess.run(["ip", "link", "del", self.uplink], capture_output=True, check=False)
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._created.clear()

    @property
    def exists(self) -> bool:
        return bool(self._created)

    # -- faults --------------------------------------------------------------------
    async def unplug(self, host: str) -> None:
        port = self.switch_port(host)
        if self.unplug_method == "bridge":
            # Port disabled in the bridge: carrier stays up, frames are dropped.
            await run_ip("bridge", "-n", self.switch, "link", "set", "dev", port, "state", "0")
        else:
            await run_ip("ip", "-n", self.switch, "link", "set", port, "down")
        self.unplugged.add(host)

    async def replug(self, host: str) -> None:
        port = self.switch_port(host)
        if self.unplug_method == "bridge":
            await run_ip("bridge", "-n", self.switch, "link", "set", "dev", port, "state", "3")
        else:
            await run_ip("ip", "-n", self.switch, "link", "set", port, "up")
        self.unplugged.discard(host)

    async def impair(self, host: str, impairment: Impairment | None) -> None:
        """Apply ``impairment`` to both directions of the host's link; ``None`` clears it."""
        ends = [(self.switch, self.switch_port(host)), (self.namespace(host), "eth0")]
        if impairment is None:
            for ns, dev in ends:
                await run_ip("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
            self.impaired.discard(host)
            return
        qdisc = qdisc_args(impairment)
        for ns, dev in ends:
            try:
                await run_ip("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", *qdisc)
            except LauncherError as exc:
                raise LauncherError(
                    f"cannot impair {host} with {qdisc[0]} (the kernel may lack it): {exc}"
                ) from exc
        self.impaired.add(host)


def qdisc_args(imp: Impairment) -> list[str]:
    """tc arguments for an impairment: netem for delay/loss, else tbf for a rate limit."""
    if imp.delay_ms is not None or imp.loss_percent is not None:
        args = ["netem"]
        if imp.delay_ms is not None:
            args += ["delay", f"{imp.delay_ms:g}ms"]
        if imp.loss_percent is not None:
            args += ["loss", f"{imp.loss_percent:g}%"]
        if imp.rate is not None:
            args += ["rate", imp.rate]
        return args
    if imp.rate is None:
        raise ValueError("an impairment needs a rate, a delay or a loss")
    return ["tbf", "rate", imp.rate, "burst", imp.burst, "latency", f"{imp.latency_ms:g}ms"]


@atexit.register
def _destroy_leftover_labs() -> None:
    for lab in list(_live_labs):
        lab.destroy_sync()


class NetnsLauncher(LocalLauncher):
    """Runs each component inside its virtual host's namespace (``ip netns exec``).

    ``ip netns exec`` replaces itself with the command (no extra process), so the
    pid we signal is the component's own.
    """

    supported = PROCESS_ACTIONS | HOST_ACTIONS

    def __init__(self, lab: NetnsLab) -> None:
        super().__init__()
        self.lab = lab

    async def open(self) -> None:
        await self.lab.create()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.lab.destroy()

    def _argv(self, info: ProcessInfo) -> Sequence[str]:
        return ["ip", "netns", "exec", self.lab.namespace(info.host), *info.command.argv]

    async def unplug(self, host: str) -> None:
        await self.lab.unplug(host)
        self._emit(HostChanged(host, "unplugged", time.monotonic()))

    async def replug(self, host: str) -> None:
        await self.lab.replug(host)
        self._emit(HostChanged(host, "replugged", time.monotonic()))

    async def impair(self, host: str, impairment: Impairment | None) -> None:
        await self.lab.impair(host, impairment)
        self._emit(HostChanged(host, "impaired" if impairment else "unimpaired", time.monotonic()))
