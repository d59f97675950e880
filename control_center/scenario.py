"""Scenario model: hosts, components, colours, start order.

A scenario says where each component runs (this machine, a virtual host in a
network namespace, or an SSH host), how it is identified in status reports
(``identifier`` -> CSP id ``group << 56 | identifier``), which registrars it
uses, and how the control center draws it. Reading and validating a scenario file is
:mod:`control_center.scenario_file`'s job; the format is documented in
``scenarios/README.md``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from rsplib.wire.csp import ComponentGroup, component_id

DEFAULT_POOL_HANDLE = "FractalGeneratorPool"
DEFAULT_CSP_PORT = 2960
DEFAULT_REPORT_INTERVAL_MS = 250
DEFAULT_TIMEOUT_MULTIPLIER = 5.0
DEFAULT_STOP_GRACE_S = 5.0
DEFAULT_ASAP_PORT = 3863
DEFAULT_ENRP_PORT = 9901
DEFAULT_COLORS: dict[str, str] = {
    "asap": "#1f5fbf",
    "enrp": "#d02020",
    "application": "#e0a800",
    "data": "#808080",
}
LOCAL_HOST_NAME = "local"
IDENTIFIER_MAX = (1 << 56) - 1

OptionValue = str | int | float | bool | tuple[str | int | float, ...]


class ComponentKind(StrEnum):
    REGISTRAR = "registrar"
    FRACTAL_PE = "fractal-pe"
    FRACTAL_PU = "fractal-pu"
    ECHO_PE = "echo-pe"
    #: rsplib's own programs (Debian's rsplib-registrar and rsplib-services packages).
    RSP_REGISTRAR = "rspregistrar"
    RSP_FRACTAL_PE = "rspserver-fractal"
    RSP_FRACTAL_PU = "fractalpooluser"
    #: Any program, given as ``command = [...]``; its group (if any) comes from ``group``.
    COMMAND = "command"

    @property
    def is_registrar(self) -> bool:
        """A registrar with ASAP and ENRP endpoints (ours or rsplib's)."""
        return self in _REGISTRAR_KINDS

    @property
    def from_rsplib(self) -> bool:
        """One of rsplib's programs (rsplib's option syntax, kernel SCTP only)."""
        return self in _RSPLIB_KINDS


_REGISTRAR_KINDS = frozenset({ComponentKind.REGISTRAR, ComponentKind.RSP_REGISTRAR})
_RSPLIB_KINDS = frozenset(
    {ComponentKind.RSP_REGISTRAR, ComponentKind.RSP_FRACTAL_PE, ComponentKind.RSP_FRACTAL_PU}
)


class PictureDisplay(StrEnum):
    PANE = "pane"
    WINDOW = "window"


KIND_GROUP: dict[ComponentKind, ComponentGroup | None] = {
    ComponentKind.REGISTRAR: ComponentGroup.REGISTRAR,
    ComponentKind.FRACTAL_PE: ComponentGroup.POOL_ELEMENT,
    ComponentKind.ECHO_PE: ComponentGroup.POOL_ELEMENT,
    ComponentKind.FRACTAL_PU: ComponentGroup.POOL_USER,
    ComponentKind.RSP_REGISTRAR: ComponentGroup.REGISTRAR,
    ComponentKind.RSP_FRACTAL_PE: ComponentGroup.POOL_ELEMENT,
    ComponentKind.RSP_FRACTAL_PU: ComponentGroup.POOL_USER,
    ComponentKind.COMMAND: None,
}
GROUP_NAMES: dict[str, ComponentGroup] = {
    "registrar": ComponentGroup.REGISTRAR,
    "pool-element": ComponentGroup.POOL_ELEMENT,
    "pool-user": ComponentGroup.POOL_USER,
}
#: Start order: registrars first, then pool elements, then pool users (and untyped commands).
GROUP_STAGE: dict[ComponentGroup | None, int] = {
    ComponentGroup.REGISTRAR: 0,
    ComponentGroup.POOL_ELEMENT: 1,
    ComponentGroup.POOL_USER: 2,
    None: 2,
}
#: First automatic identifier per group, as in rsplib's demo scenarios.
AUTO_IDENTIFIER_BASE: dict[ComponentGroup, int] = {
    ComponentGroup.REGISTRAR: 0x10000,
    ComponentGroup.POOL_ELEMENT: 0x100,
    ComponentGroup.POOL_USER: 0x1,
}


# --------------------------------------------------------------------------- model
@dataclass(frozen=True, slots=True)
class LocalHost:
    name: str
    #: Address components on this machine listen on; another one than loopback
    #: is needed when components on SSH hosts must reach them.
    address: str = "127.0.0.1"

    @property
    def kind(self) -> str:
        return "local"

    @property
    def component_address(self) -> str:
        """Address components on this host listen on and are reached at."""
        return self.address


@dataclass(frozen=True, slots=True)
class NetnsHost:
    """A virtual host: one network namespace with ``eth0`` on the lab bridge."""

    name: str
    interface: ipaddress.IPv4Interface

    @property
    def kind(self) -> str:
        return "netns"

    @property
    def component_address(self) -> str:
        return str(self.interface.ip)


@dataclass(frozen=True, slots=True)
class SshHost:
    name: str
    address: str
    user: str
    key_file: str
    workdir: str
    port: int = 22
    known_hosts: str = "~/.ssh/known_hosts"
    accept_unknown_host_keys: bool = False
    python: str = "python3"
    #: Where components on that host send their status reports (the monitor's address).
    csp_address: str = "127.0.0.1"
    #: Address the host's components listen on and advertise (default: ``address``).
    bind_address: str | None = None
    connect_timeout_s: float = 5.0

    @property
    def kind(self) -> str:
        return "ssh"

    @property
    def component_address(self) -> str:
        return self.bind_address or self.address


Host = LocalHost | NetnsHost | SshHost


@dataclass(frozen=True, slots=True)
class LabConfig:
    """The bridge all virtual hosts share, plus the control center's own port on it."""

    #: Address of the control center on the lab bridge (CSP reports go there).
    gateway: ipaddress.IPv4Interface | None = None
    #: How a host is unplugged: ``link`` (switch port down) or ``bridge`` (port disabled).
    unplug_method: str = "link"


@dataclass(frozen=True, slots=True)
class DemoRhythm:
    """Scenario-wide pacing of the demo; ``None`` leaves the tools' own defaults.

    Applied to every fractal PU (image size, sessions, images, pause) and fractal PE
    (block delay) unless the component's own ``options`` say otherwise.
    """

    width: int | None = None
    height: int | None = None
    sessions: int | None = None
    #: Images per pool user run; 0: one after the other until stopped.
    images: int | None = None
    #: Seconds between a finished image and the next one.
    pause_s: float | None = None
    #: Milliseconds a PE pauses after each block of pixels (makes the work watchable).
    block_delay_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    kind: ComponentKind
    host: str
    identifier: int | None
    display_name: str
    group: ComponentGroup | None
    position: tuple[float, float] | None = None
    depends_on: tuple[str, ...] = ()
    #: Registrar component names this component uses (PE/PU); empty = all.
    registrars: tuple[str, ...] = ()
    #: The registrar a PE/PU tries first (its home while it answers); None: scenario order.
    home_registrar: str | None = None
    #: Where a pool user's picture is shown: in the control center's own pane, or in
    #: the pool user's viewer window (where a display exists; otherwise in the pane).
    display: PictureDisplay = PictureDisplay.PANE
    options: Mapping[str, OptionValue] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    pool_handle: str | None = None
    asap_port: int = DEFAULT_ASAP_PORT
    enrp_port: int = DEFAULT_ENRP_PORT
    stop_grace_s: float | None = None
    timeout_multiplier: float | None = None
    #: Where the component was defined (for messages that name it later).
    line: int | None = None

    @property
    def csp_id(self) -> int | None:
        """CSP sender id the component reports with, if it reports at all."""
        if self.group is None or self.identifier is None:
            return None
        return component_id(self.group, self.identifier)

    @property
    def stage(self) -> int:
        return GROUP_STAGE[self.group]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    hosts: Mapping[str, Host]
    components: tuple[Component, ...]
    pool_handle: str = DEFAULT_POOL_HANDLE
    csp_port: int = DEFAULT_CSP_PORT
    report_interval_ms: int = DEFAULT_REPORT_INTERVAL_MS
    timeout_multiplier: float = DEFAULT_TIMEOUT_MULTIPLIER
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    background: Path | None = None
    colors: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_COLORS))
    lab: LabConfig = field(default_factory=LabConfig)
    demo: DemoRhythm = field(default_factory=DemoRhythm)
    run_dir: Path | None = None
    #: Pool cookie key file (same path on every host); none: a fresh key per run.
    cookie_key_file: str | None = None
    source: Path | None = None

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def host_of(self, comp: Component | str) -> Host:
        if isinstance(comp, str):
            comp = self.component(comp)
        return self.hosts[comp.host]

    def by_csp_id(self) -> dict[int, Component]:
        return {c.csp_id: c for c in self.components if c.csp_id is not None}

    def registrars(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.kind.is_registrar)

    def registrars_of(self, comp: Component) -> tuple[Component, ...]:
        """The registrars ``comp`` uses, its home registrar first."""
        chosen = (
            tuple(self.component(n) for n in comp.registrars)
            if comp.registrars
            else self.registrars()
        )
        if comp.home_registrar is None:
            return chosen
        home = self.component(comp.home_registrar)
        return (home, *(r for r in chosen if r.name != home.name))

    def netns_hosts(self) -> tuple[NetnsHost, ...]:
        return tuple(h for h in self.hosts.values() if isinstance(h, NetnsHost))

    def lab_gateway(self) -> ipaddress.IPv4Interface | None:
        """The control center's address on the lab bridge (``None`` without virtual hosts)."""
        hosts = self.netns_hosts()
        if not hosts:
            return None
        if self.lab.gateway is not None:
            return self.lab.gateway
        return default_gateway(h.interface for h in hosts)

    def start_waves(self) -> list[tuple[Component, ...]]:
        """Components grouped into waves; each wave starts after the previous one.

        Registrars come first, then pool elements, then pool users; ``depends_on``
        adds further ordering. Components of one wave may start in parallel.
        """
        return start_waves(self.components)

    def stop_waves(self) -> list[tuple[Component, ...]]:
        return list(reversed(self.start_waves()))


def default_gateway(interfaces: Iterable[ipaddress.IPv4Interface]) -> ipaddress.IPv4Interface:
    """Highest free host address of the lab subnet (``.254`` in a /24)."""
    ifaces = list(interfaces)
    network = ifaces[0].network
    used = {i.ip for i in ifaces}
    for candidate in reversed(list(network.hosts())):
        if candidate not in used:
            return ipaddress.IPv4Interface(f"{candidate}/{network.prefixlen}")
    raise ValueError(f"no free address left for the control center in {network}")


def _dependency_edges(components: tuple[Component, ...]) -> dict[str, set[str]]:
    """name -> names that must be started before it (explicit and by stage)."""
    before: dict[str, set[str]] = {c.name: set(c.depends_on) for c in components}
    for comp in components:
        for other in components:
            if other.stage < comp.stage:
                before[comp.name].add(other.name)
    return before


def start_waves(components: tuple[Component, ...]) -> list[tuple[Component, ...]]:
    """Components in start waves; ValueError names the components of a dependency cycle."""
    before = _dependency_edges(components)
    by_name = {c.name: c for c in components}
    started: set[str] = set()
    waves: list[tuple[Component, ...]] = []
    while len(started) < len(components):
        wave = tuple(c for c in components if c.name not in started and before[c.name] <= started)
        if not wave:
            remaining = sorted(set(by_name) - started)
            raise ValueError(f"dependency cycle among: {', '.join(remaining)}")
        waves.append(wave)
        started.update(c.name for c in wave)
    return waves
