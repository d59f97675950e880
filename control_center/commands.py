"""Scenario component -> command line (argv, environment, files it writes).

The builder fills in what ties a component to the scenario -- its fixed
``--identifier`` (so status reports map to it), the status monitor address,
the registrars it uses (resolved by name to their ASAP address and port), and
the address it listens on -- and then appends the component's own
``options``. An option that the builder would also set wins over the
builder's value, so a scenario can always override a default.

Option keys become long options verbatim with ``_`` turned into ``-``
(``max_threads = 2`` -> ``--max-threads 2``); ``true`` is a bare flag,
``false`` leaves the option out, a list repeats the option per item.

rsplib's own programs (``rspregistrar``, ``rspserver -fractal``,
``fractalpooluser``) take rsplib's syntax instead: ``-key=value`` with the key
verbatim (``fgpcookiemaxpackets = 10`` -> ``-fgpcookiemaxpackets=10``).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from control_center.scenario import (
    Component,
    ComponentKind,
    DemoRhythm,
    Host,
    LocalHost,
    OptionValue,
    Scenario,
    SshHost,
)

COOKIE_KEY_ENV = "RSERPOOL_COOKIE_KEY"

#: Python module run for each component kind (``python -m MODULE``).
KIND_MODULE: dict[ComponentKind, tuple[str, ...]] = {
    ComponentKind.REGISTRAR: ("rsplib.registrar.cli",),
    ComponentKind.FRACTAL_PE: ("fractal_pe.cli",),
    ComponentKind.FRACTAL_PU: ("fractal_pu.cli", "--headless"),
    ComponentKind.ECHO_PE: ("rsplib.examples.echo_pe",),
}

#: Program (and fixed arguments) of each rsplib kind.
RSPLIB_PROGRAM: dict[ComponentKind, tuple[str, ...]] = {
    ComponentKind.RSP_REGISTRAR: ("rspregistrar",),
    ComponentKind.RSP_FRACTAL_PE: ("rspserver", "-fractal"),
    ComponentKind.RSP_FRACTAL_PU: ("fractalpooluser",),
}
#: Debian package that has each rsplib program.
RSPLIB_PACKAGE: dict[ComponentKind, str] = {
    ComponentKind.RSP_REGISTRAR: "rsplib-registrar",
    ComponentKind.RSP_FRACTAL_PE: "rsplib-tools",
    ComponentKind.RSP_FRACTAL_PU: "rsplib-services",
}
#: rsplib's log level for the components we start: warnings plus what they do.
RSPLIB_LOGLEVEL = "3"


@dataclass(frozen=True, slots=True)
class RunContext:
    """What is only known when the scenario runs."""

    #: Directory for logs and output files, as seen by the host (remote path for SSH).
    run_dirs: Mapping[str, str]
    #: Port the status monitor listens on (may be ephemeral).
    csp_port: int
    #: Address each host's components send status reports to.
    csp_addresses: Mapping[str, str]
    #: Registrar name -> (ASAP port, ENRP port) after port 0 has been resolved.
    registrar_ports: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: Python interpreter for hosts that do not name their own.
    python: str = sys.executable
    #: Port of the control center's trace receiver (same addresses as the status
    #: monitor); None: no trace.
    trace_port: int | None = None
    #: Pool cookie key (``hex:...``) for the fractal components when the scenario
    #: names no key file; every PE of the pool must share it for failover.
    cookie_key: str | None = None
    #: Windows of GUI components on this machine can be shown (a display is there);
    #: otherwise rsplib's Qt pool user runs offscreen.
    local_display: bool = False


@dataclass(frozen=True, slots=True)
class CommandLine:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    #: Working directory on the host (``None``: the launcher's default).
    cwd: str | None
    #: Combined stdout/stderr log on the host.
    log_file: str
    #: Named output files on the host, e.g. ``report`` and ``image`` for a PU.
    files: Mapping[str, str] = field(default_factory=dict)


def host_python(host: Host, ctx: RunContext) -> str:
    return host.python if isinstance(host, SshHost) else ctx.python


def safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def registrar_endpoints(
    scenario: Scenario, registrar: Component, ctx: RunContext
) -> tuple[str, int, int]:
    """(address, ASAP port, ENRP port) where ``registrar`` is reached."""
    address = scenario.host_of(registrar).component_address
    asap, enrp = ctx.registrar_ports.get(registrar.name, (registrar.asap_port, registrar.enrp_port))
    return address, asap, enrp


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _option_args(options: Mapping[str, OptionValue]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            continue
        elif isinstance(value, tuple):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def _option_keys(options: Mapping[str, OptionValue]) -> set[str]:
    return {key.replace("_", "-") for key in options}


def _rsplib_option_args(options: Mapping[str, OptionValue]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        if value is True:
            args.append(f"-{key}")
        elif value is False:
            continue
        elif isinstance(value, tuple):
            args += [f"-{key}={item}" for item in value]
        else:
            args.append(f"-{key}={value}")
    return args


def shares_pool_with_rsplib_pes(scenario: Scenario, comp: Component) -> bool:
    """Does an rsplib fractal PE serve the pool of ``comp``? (Its cookies are unsigned.)"""
    pool = comp.pool_handle or scenario.pool_handle
    return any(
        other.kind is ComponentKind.RSP_FRACTAL_PE
        and (other.pool_handle or scenario.pool_handle) == pool
        for other in scenario.components
    )


def _pu_rhythm(demo: DemoRhythm) -> list[tuple[str, str]]:
    """The scenario's ``[demo]`` settings as pool-user options."""
    values = (
        ("width", demo.width),
        ("height", demo.height),
        ("sessions", demo.sessions),
        ("images", demo.images),
        ("interimagetime", demo.pause_s),
    )
    return [(option, f"{value:g}") for option, value in values if value is not None]


def _pool_elements_of(scenario: Scenario, user: Component) -> list[Component]:
    """The scenario's PEs of the pool ``user`` uses (those with a known identifier)."""
    handle = user.pool_handle or scenario.pool_handle
    return [
        c
        for c in scenario.components
        if c.kind in (ComponentKind.FRACTAL_PE, ComponentKind.ECHO_PE, ComponentKind.RSP_FRACTAL_PE)
        and (c.pool_handle or scenario.pool_handle) == handle
        and c.identifier is not None
    ]


def build_command(scenario: Scenario, comp: Component, ctx: RunContext) -> CommandLine:
    """The full command line of ``comp`` in ``scenario``."""
    if comp.kind.from_rsplib:
        return build_rsplib_command(scenario, comp, ctx)
    host = scenario.host_of(comp)
    run_dir = ctx.run_dirs[host.name]
    stem = safe_file_name(comp.name)
    log_file = posixpath.join(run_dir, f"{stem}.log")
    files: dict[str, str] = {}
    overridden = _option_keys(comp.options)
    derived: list[tuple[str, str | None]] = []  # (option, value or None for a flag)
    env_defaults: dict[str, str] = {}

    def add(option: str, value: str | None = None) -> None:
        if option not in overridden:
            derived.append((option, value))

    if comp.kind is ComponentKind.COMMAND:
        program = list(comp.command)
    else:
        program = [host_python(host, ctx), "-m", *KIND_MODULE[comp.kind]]
    address = host.component_address

    if comp.kind is not ComponentKind.COMMAND:
        if comp.identifier is not None:
            add("identifier", f"{comp.identifier:#x}")
        add("cspserver", f"{ctx.csp_addresses[host.name]}:{ctx.csp_port}")
        add("cspinterval", str(scenario.report_interval_ms))
        if ctx.trace_port is not None:
            # Component events (a pool user's failovers) and protocol messages.
            add("trace", f"{ctx.csp_addresses[host.name]}:{ctx.trace_port}")
        add("loglevel", "info")

    if comp.kind is ComponentKind.REGISTRAR:
        _, asap, enrp = registrar_endpoints(scenario, comp, ctx)
        add("asap", f"{address}:{asap}")
        add("enrp", f"{address}:{enrp}")
        # Static peers instead of multicast: no discovery needed, and no cross-talk
        # with other demos announcing on the same machine.
        for other in scenario.registrars():
            if other.name != comp.name:
                peer_addr, _, peer_enrp = registrar_endpoints(scenario, other, ctx)
                derived.append(("peer", f"{peer_addr}:{peer_enrp}"))
        add("asap-announce", "off")
        add("enrp-announce", "off")
        if _is_loopback(address):
            add("min-address-scope", "loopback")
    elif comp.kind in (ComponentKind.FRACTAL_PE, ComponentKind.ECHO_PE, ComponentKind.FRACTAL_PU):
        if "registrar" not in overridden:
            for reg in scenario.registrars_of(comp):
                reg_addr, asap, _ = registrar_endpoints(scenario, reg, ctx)
                derived.append(("registrar", f"{reg_addr}:{asap}"))
        add("poolhandle", comp.pool_handle or scenario.pool_handle)
        if comp.kind in (ComponentKind.FRACTAL_PE, ComponentKind.FRACTAL_PU):
            if scenario.cookie_key_file is not None:
                add("cookie-key-file", scenario.cookie_key_file)
            elif ctx.cookie_key is not None:
                env_defaults[COOKIE_KEY_ENV] = ctx.cookie_key
        if comp.kind is ComponentKind.FRACTAL_PE and shares_pool_with_rsplib_pes(scenario, comp):
            # A session failing over from an rsplib PE arrives with its unsigned cookie.
            add("accept-unsigned-cookies")
        if comp.kind is ComponentKind.FRACTAL_PU:
            files["image"] = posixpath.join(run_dir, f"{stem}.png")
            files["report"] = posixpath.join(run_dir, f"{stem}-report.json")
            files["live"] = posixpath.join(run_dir, f"{stem}-live.png")
            add("output", files["image"])
            add("report", files["report"])
            add("live-image", files["live"])
            for rhythm_option, rhythm_value in _pu_rhythm(scenario.demo):
                add(rhythm_option, rhythm_value)
            # The viewer and the log name PEs as the map does.
            for pe in _pool_elements_of(scenario, comp):
                derived.append(("pe-name", f"{pe.identifier:#x}={pe.name}"))
        else:
            add("local", f"{address}:0")
            if comp.kind is ComponentKind.FRACTAL_PE and scenario.demo.block_delay_ms is not None:
                add("block-delay", f"{scenario.demo.block_delay_ms:g}")
    if "live_image" in comp.options and comp.kind is ComponentKind.FRACTAL_PU:
        files["live"] = str(comp.options["live_image"])
    if "output" in comp.options and comp.kind is ComponentKind.FRACTAL_PU:
        files["image"] = str(comp.options["output"])
    if "report" in comp.options and comp.kind is ComponentKind.FRACTAL_PU:
        files["report"] = str(comp.options["report"])

    argv = list(program)
    for option, value in derived:
        argv.append("--" + option)
        if value is not None:
            argv.append(value)
    argv += _option_args(comp.options)
    env = {**env_defaults, **comp.env}
    # Unbuffered output, so the log shows what a component did right before it died.
    env.setdefault("PYTHONUNBUFFERED", "1")
    # On an SSH host the project lives in ``workdir``; ``python -m`` finds it from there.
    cwd = host.workdir if isinstance(host, SshHost) else None
    return CommandLine(argv=tuple(argv), env=env, cwd=cwd, log_file=log_file, files=files)


def build_rsplib_command(scenario: Scenario, comp: Component, ctx: RunContext) -> CommandLine:
    """Command line of one of rsplib's programs (rsplib's ``-key=value`` options)."""
    host = scenario.host_of(comp)
    run_dir = ctx.run_dirs[host.name]
    log_file = posixpath.join(run_dir, f"{safe_file_name(comp.name)}.log")
    overridden = set(comp.options)
    derived: list[str] = []
    env_defaults: dict[str, str] = {}

    def add(key: str, value: str) -> None:
        if key not in overridden:
            derived.append(f"-{key}={value}")

    address = host.component_address
    if comp.identifier is not None:
        add("identifier", f"{comp.identifier:#x}")
    add("cspserver", f"{ctx.csp_addresses[host.name]}:{ctx.csp_port}")
    add("cspinterval", str(scenario.report_interval_ms))
    add("loglevel", RSPLIB_LOGLEVEL)
    add("logcolor", "off")
    if comp.kind is ComponentKind.RSP_REGISTRAR:
        _, asap, enrp = registrar_endpoints(scenario, comp, ctx)
        add("asap", f"{address}:{asap}")
        add("enrp", f"{address}:{enrp}")
        if "peer" not in overridden:
            for other in scenario.registrars():
                if other.name != comp.name:
                    peer_addr, _, peer_enrp = registrar_endpoints(scenario, other, ctx)
                    derived.append(f"-peer={peer_addr}:{peer_enrp}")
        add("asapannounce", "off")
        add("enrpannounce", "off")
        if _is_loopback(address):
            add("minaddressscope", "loopback")
    else:
        if "registrar" not in overridden:
            for reg in scenario.registrars_of(comp):
                reg_addr, asap, _ = registrar_endpoints(scenario, reg, ctx)
                derived.append(f"-registrar={reg_addr}:{asap}")
        add("poolhandle", comp.pool_handle or scenario.pool_handle)
    if comp.kind is ComponentKind.RSP_FRACTAL_PU:
        add("caption", comp.display_name)
        demo = scenario.demo
        for key, value in (
            ("width", demo.width),
            ("height", demo.height),
            ("threads", demo.sessions),
            ("interimagetime", demo.pause_s),
        ):
            if value is not None:
                # rsplib takes whole numbers (seconds for the pause).
                add(key, str(round(value)))
        if not (isinstance(host, LocalHost) and ctx.local_display):
            env_defaults["QT_QPA_PLATFORM"] = "offscreen"
    argv = [*RSPLIB_PROGRAM[comp.kind], *derived, *_rsplib_option_args(comp.options)]
    env = {**env_defaults, **comp.env}
    return CommandLine(argv=tuple(argv), env=env, cwd=None, log_file=log_file)
