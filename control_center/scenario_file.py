"""Reading a scenario file: TOML -> :class:`control_center.scenario.Scenario`.

Every validation problem is reported as ``file:line: field: message``; all
problems of a file are collected before :class:`ScenarioError` is raised, so
a user fixes them in one go. The format is documented in ``scenarios/README.md``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from control_center.issues import Issue, IssuesError, field_name, load_document, read_input
from control_center.scenario import (
    AUTO_IDENTIFIER_BASE,
    DEFAULT_ASAP_PORT,
    DEFAULT_COLORS,
    DEFAULT_CSP_PORT,
    DEFAULT_ENRP_PORT,
    DEFAULT_POOL_HANDLE,
    DEFAULT_REPORT_INTERVAL_MS,
    DEFAULT_STOP_GRACE_S,
    DEFAULT_TIMEOUT_MULTIPLIER,
    GROUP_NAMES,
    IDENTIFIER_MAX,
    KIND_GROUP,
    LOCAL_HOST_NAME,
    Component,
    ComponentKind,
    DemoRhythm,
    Host,
    LabConfig,
    LocalHost,
    NetnsHost,
    OptionValue,
    PictureDisplay,
    Scenario,
    SshHost,
    start_waves,
)
from control_center.toml_lines import Path as KeyPath
from control_center.toml_lines import line_of
from rsplib.wire.csp import ComponentGroup


# --------------------------------------------------------------------------- errors
class ScenarioError(IssuesError):
    """A scenario file could not be loaded; ``issues`` lists every problem found."""


# --------------------------------------------------------------------------- loading
def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    path = Path(path)
    return loads_scenario(read_input(path, ScenarioError), source=path)


def loads_scenario(text: str, *, source: str | Path | None = None) -> Scenario:
    """Validate scenario TOML ``text``; ``source`` names the file in messages."""
    return load_document(text, source, unnamed="<scenario>", error=ScenarioError, builder=_Builder)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,11}$")
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-zA-Z]{3,30})$")
_SCENARIO_KEYS = {
    "name",
    "pool_handle",
    "csp_port",
    "report_interval_ms",
    "timeout_multiplier",
    "stop_grace_s",
    "background",
    "run_dir",
    "cookie_key_file",
}
_COMPONENT_KEYS = {
    "name",
    "kind",
    "host",
    "identifier",
    "display_name",
    "position",
    "depends_on",
    "registrars",
    "registrar",
    "display",
    "options",
    "env",
    "command",
    "group",
    "pool_handle",
    "asap_port",
    "enrp_port",
    "stop_grace_s",
    "timeout_multiplier",
}
_SSH_KEYS = {
    "kind",
    "address",
    "port",
    "user",
    "key_file",
    "known_hosts",
    "accept_unknown_host_keys",
    "workdir",
    "python",
    "csp_address",
    "bind_address",
    "connect_timeout_s",
}


class _Missing:
    pass


_MISSING = _Missing()


class _Builder:
    def __init__(self, file: str, lines: dict[KeyPath, int], base_dir: Path) -> None:
        self.file = file
        self.lines = lines
        self.base_dir = base_dir
        self.issues: list[Issue] = []

    # -- helpers -------------------------------------------------------------
    def error(self, path: KeyPath, message: str) -> None:
        self.issues.append(Issue(self.file, line_of(self.lines, path), field_name(path), message))

    def unknown_keys(self, table: Mapping[str, Any], allowed: set[str], path: KeyPath) -> None:
        for key in table:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error((*path, key), f"unknown key (allowed: {hint})")

    def table(self, data: Mapping[str, Any], key: str, path: KeyPath) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.error((*path, key), "must be a table")
            return {}
        return value

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        path: KeyPath,
        types: type | tuple[type, ...],
        default: Any = _MISSING,
    ) -> Any:
        """Typed value or ``default``; a missing required value or a wrong type is an issue."""
        if key not in data:
            if default is _MISSING:
                self.error((*path, key), "required")
                return None
            return default
        value = data[key]
        wanted = types if isinstance(types, tuple) else (types,)
        # bool is an int in Python, but ``port = true`` is certainly a mistake.
        if isinstance(value, bool) and bool not in wanted:
            value_ok = False
        else:
            value_ok = isinstance(value, wanted)
        if not value_ok:
            names = " or ".join(_type_name(t) for t in wanted)
            self.error((*path, key), f"must be {names}, not {_type_name(type(value))}")
            return None if default is _MISSING else default
        return value

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        path: KeyPath,
        default: Any,
        low: float,
        high: float,
        integer: bool = False,
    ) -> Any:
        value = self.get(data, key, path, int if integer else (int, float), default)
        if value is None or value is default:
            return value
        if not low <= value <= high:
            self.error((*path, key), f"must be between {low:g} and {high:g}, not {value}")
            return default
        return value

    def name_value(
        self, data: Mapping[str, Any], key: str, path: KeyPath, pattern: re.Pattern[str]
    ) -> str | None:
        value = self.get(data, key, path, str)
        if value is not None and not pattern.match(value):
            self.error((*path, key), f"invalid name {value!r} (pattern {pattern.pattern})")
            return None
        return value  # type: ignore[no-any-return]

    def str_list(self, data: Mapping[str, Any], key: str, path: KeyPath) -> tuple[str, ...]:
        value = self.get(data, key, path, list, [])
        if value is None:
            return ()
        if not all(isinstance(v, str) for v in value):
            self.error((*path, key), "must be a list of strings")
            return ()
        return tuple(value)

    # -- sections ------------------------------------------------------------
    def build(self, data: dict[str, Any], source: Path | None) -> Scenario | None:
        self.unknown_keys(data, {"scenario", "colors", "lab", "demo", "hosts", "components"}, ())
        head = self.table(data, "scenario", ())
        self.unknown_keys(head, _SCENARIO_KEYS, ("scenario",))
        sp: KeyPath = ("scenario",)
        name = self.get(head, "name", sp, str, "unnamed scenario")
        pool_handle = self.get(head, "pool_handle", sp, str, DEFAULT_POOL_HANDLE)
        if pool_handle is not None and not 0 < len(pool_handle.encode()) <= 64:
            self.error((*sp, "pool_handle"), "must be 1 to 64 bytes long")
        csp_port = self.number(head, "csp_port", sp, DEFAULT_CSP_PORT, 0, 65535, integer=True)
        interval = self.number(
            head, "report_interval_ms", sp, DEFAULT_REPORT_INTERVAL_MS, 10, 3_600_000, True
        )
        multiplier = self.number(
            head, "timeout_multiplier", sp, DEFAULT_TIMEOUT_MULTIPLIER, 1, 1000
        )
        grace = self.number(head, "stop_grace_s", sp, DEFAULT_STOP_GRACE_S, 0, 600)
        background = self.path_value(head, "background", sp)
        run_dir = self.path_value(head, "run_dir", sp)
        cookie_key_file = self.get(head, "cookie_key_file", sp, str, None)

        colors = dict(DEFAULT_COLORS)
        for key, value in self.table(data, "colors", ()).items():
            if not isinstance(value, str) or not _COLOR.match(value):
                self.error(("colors", key), "must be a colour: #rgb, #rrggbb or a colour name")
            else:
                colors[key] = value

        hosts = self.hosts(self.table(data, "hosts", ()))
        lab = self.lab(self.table(data, "lab", ()), hosts)
        demo = self.demo(self.table(data, "demo", ()))
        components = self.components(data.get("components", []), hosts)
        if self.issues:
            return None
        return Scenario(
            name=name,
            hosts=hosts,
            components=components,
            pool_handle=pool_handle,
            csp_port=csp_port,
            report_interval_ms=interval,
            timeout_multiplier=float(multiplier),
            stop_grace_s=float(grace),
            background=background,
            colors=colors,
            lab=lab,
            demo=demo,
            run_dir=run_dir,
            cookie_key_file=cookie_key_file,
            source=source,
        )

    def path_value(self, data: Mapping[str, Any], key: str, path: KeyPath) -> Path | None:
        value = self.get(data, key, path, str, None)
        if value is None:
            return None
        result = Path(value).expanduser()
        return result if result.is_absolute() else self.base_dir / result

    def hosts(self, table: dict[str, Any]) -> dict[str, Host]:
        hosts: dict[str, Host] = {}
        for name, spec in table.items():
            path: KeyPath = ("hosts", name)
            if not _HOST_NAME.match(name):
                self.error(path, "host names are 1-12 lower-case letters, digits or '-'")
                continue
            if not isinstance(spec, dict):
                self.error(path, "must be a table")
                continue
            kind = self.get(spec, "kind", path, str)
            if kind == "local":
                self.unknown_keys(spec, {"kind", "address"}, path)
                address = self.get(spec, "address", path, str, "127.0.0.1")
                if address is not None and not _is_ip(address):
                    self.error((*path, "address"), f"must be an IP address, not {address!r}")
                    address = None
                hosts[name] = LocalHost(name, address or "127.0.0.1")
            elif kind == "netns":
                self.unknown_keys(spec, {"kind", "address"}, path)
                iface = self.interface(spec, "address", path)
                if iface is not None:
                    hosts[name] = NetnsHost(name, iface)
            elif kind == "ssh":
                host = self.ssh_host(name, spec, path)
                if host is not None:
                    hosts[name] = host
            elif kind is not None:
                self.error((*path, "kind"), f"unknown host kind {kind!r} (local, netns or ssh)")
        if LOCAL_HOST_NAME not in hosts and LOCAL_HOST_NAME not in table:
            # Every scenario has this machine; naming it is optional.
            hosts[LOCAL_HOST_NAME] = LocalHost(LOCAL_HOST_NAME)
        self.check_lab_subnet(hosts)
        return hosts

    def interface(
        self, spec: Mapping[str, Any], key: str, path: KeyPath
    ) -> ipaddress.IPv4Interface | None:
        text = self.get(spec, key, path, str)
        if text is None:
            return None
        if "/" not in text:
            self.error((*path, key), f"needs a prefix length, e.g. {text}/24")
            return None
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError as exc:
            self.error((*path, key), f"not an IPv4 address with prefix: {exc}")
            return None
        if iface.ip.is_loopback or iface.ip.is_multicast or iface.ip == iface.network[0]:
            self.error((*path, key), f"{iface.ip} cannot be a virtual host's address")
            return None
        return iface

    def check_lab_subnet(self, hosts: Mapping[str, Host]) -> None:
        netns = [h for h in hosts.values() if isinstance(h, NetnsHost)]
        if not netns:
            return
        network = netns[0].interface.network
        seen: dict[ipaddress.IPv4Address, str] = {}
        for host in netns:
            path: KeyPath = ("hosts", host.name, "address")
            if host.interface.network != network:
                self.error(path, f"all virtual hosts share one bridge; use a {network} address")
            if host.interface.ip in seen:
                self.error(path, f"address already used by host {seen[host.interface.ip]!r}")
            seen[host.interface.ip] = host.name

    def ssh_host(self, name: str, spec: dict[str, Any], path: KeyPath) -> SshHost | None:
        self.unknown_keys(spec, _SSH_KEYS, path)
        address = self.get(spec, "address", path, str)
        user = self.get(spec, "user", path, str)
        key_file = self.get(spec, "key_file", path, str)
        workdir = self.get(spec, "workdir", path, str)
        port = self.number(spec, "port", path, 22, 1, 65535, integer=True)
        known_hosts = self.get(spec, "known_hosts", path, str, "~/.ssh/known_hosts")
        accept = self.get(spec, "accept_unknown_host_keys", path, bool, False)
        python = self.get(spec, "python", path, str, "python3")
        csp_address = self.get(spec, "csp_address", path, str, "127.0.0.1")
        bind_address = self.get(spec, "bind_address", path, str, None)
        timeout = self.number(spec, "connect_timeout_s", path, 5.0, 0.1, 120)
        if workdir is not None and not workdir.startswith(("/", "~")):
            self.error((*path, "workdir"), "must be an absolute path on the remote host")
        for key, value in (("csp_address", csp_address), ("bind_address", bind_address)):
            if value is not None and not _is_ip(value):
                self.error((*path, key), f"must be an IP address, not {value!r}")
        if None in (address, user, key_file, workdir):
            return None
        return SshHost(
            name=name,
            address=address,
            user=user,
            key_file=key_file,
            workdir=workdir,
            port=port,
            known_hosts=known_hosts,
            accept_unknown_host_keys=accept,
            python=python,
            csp_address=csp_address,
            bind_address=bind_address,
            connect_timeout_s=float(timeout),
        )

    def lab(self, table: dict[str, Any], hosts: Mapping[str, Host]) -> LabConfig:
        path: KeyPath = ("lab",)
        self.unknown_keys(table, {"gateway", "unplug_method"}, path)
        method = self.get(table, "unplug_method", path, str, "link")
        if method not in ("link", "bridge"):
            self.error((*path, "unplug_method"), "must be 'link' or 'bridge'")
            method = "link"
        gateway = self.interface(table, "gateway", path) if "gateway" in table else None
        netns = [h for h in hosts.values() if isinstance(h, NetnsHost)]
        if gateway is not None and netns:
            network = netns[0].interface.network
            if gateway.network != network:
                self.error((*path, "gateway"), f"must be in the virtual hosts' subnet {network}")
            elif any(h.interface.ip == gateway.ip for h in netns):
                self.error((*path, "gateway"), "address already used by a virtual host")
        return LabConfig(gateway=gateway, unplug_method=method)

    def demo(self, table: dict[str, Any]) -> DemoRhythm:
        path: KeyPath = ("demo",)
        keys = {"width", "height", "sessions", "images", "pause_s", "block_delay_ms"}
        self.unknown_keys(table, keys, path)
        pause = self.number(table, "pause_s", path, None, 0, 3600)
        delay = self.number(table, "block_delay_ms", path, None, 0, 10_000)
        return DemoRhythm(
            width=self.number(table, "width", path, None, 1, 8192, integer=True),
            height=self.number(table, "height", path, None, 1, 4096, integer=True),
            sessions=self.number(table, "sessions", path, None, 1, 512, integer=True),
            images=self.number(table, "images", path, None, 0, 1_000_000, integer=True),
            pause_s=float(pause) if pause is not None else None,
            block_delay_ms=float(delay) if delay is not None else None,
        )

    def components(self, items: Any, hosts: Mapping[str, Host]) -> tuple[Component, ...]:
        if not isinstance(items, list):
            self.error(("components",), "must be an array of tables ([[components]])")
            return ()
        parsed: list[tuple[KeyPath, Component]] = []
        for index, spec in enumerate(items):
            path: KeyPath = ("components", index)
            if not isinstance(spec, dict):
                self.error(path, "must be a table")
                continue
            comp = self.component(spec, path, hosts)
            if comp is not None:
                parsed.append((path, comp))
        self.cross_check(parsed)
        assigned = _assign_identifiers([c for _, c in parsed])
        components = tuple(assigned)
        if not self.issues:
            try:
                start_waves(components)
            except ValueError as exc:
                self.error(("components",), str(exc))
        return components

    def component(
        self, spec: dict[str, Any], path: KeyPath, hosts: Mapping[str, Host]
    ) -> Component | None:
        self.unknown_keys(spec, _COMPONENT_KEYS, path)
        name = self.name_value(spec, "name", path, _NAME)
        kind_text = self.get(spec, "kind", path, str)
        kind: ComponentKind | None = None
        if kind_text is not None:
            try:
                kind = ComponentKind(kind_text)
            except ValueError:
                kinds = ", ".join(k.value for k in ComponentKind)
                self.error((*path, "kind"), f"unknown kind {kind_text!r} (one of {kinds})")
        host = self.get(spec, "host", path, str, LOCAL_HOST_NAME)
        if host is not None and host not in hosts:
            known = ", ".join(sorted(hosts)) or "none"
            self.error((*path, "host"), f"no host {host!r} in [hosts] (known: {known})")
        identifier = self.number(spec, "identifier", path, None, 1, IDENTIFIER_MAX, integer=True)
        display_name = self.get(spec, "display_name", path, str, name)
        position = self.position(spec, path)
        group: ComponentGroup | None = KIND_GROUP[kind] if kind is not None else None
        group_text = self.get(spec, "group", path, str, None)
        command = self.str_list(spec, "command", path)
        if kind is ComponentKind.COMMAND:
            if not command:
                self.error((*path, "command"), "a 'command' component needs command = [...]")
            if group_text is not None:
                if group_text not in GROUP_NAMES:
                    names = ", ".join(GROUP_NAMES)
                    self.error((*path, "group"), f"must be one of {names}")
                else:
                    group = GROUP_NAMES[group_text]
        else:
            for key in ("command", "group"):
                if key in spec:
                    self.error((*path, key), "only for kind = 'command'")
        options = self.options(spec, path)
        env = self.table(spec, "env", path)
        for key, value in env.items():
            if not isinstance(value, str):
                self.error((*path, "env", key), "environment values must be strings")
        registrar_only = ("asap_port", "enrp_port")
        if kind is not None and not kind.is_registrar:
            for key in registrar_only:
                if key in spec:
                    self.error((*path, key), "only for registrar kinds")
        asap_port = self.number(spec, "asap_port", path, DEFAULT_ASAP_PORT, 0, 65535, True)
        enrp_port = self.number(spec, "enrp_port", path, DEFAULT_ENRP_PORT, 0, 65535, True)
        if asap_port and asap_port == enrp_port:
            self.error((*path, "enrp_port"), "must differ from asap_port")
        pool_handle = self.get(spec, "pool_handle", path, str, None)
        home = self.get(spec, "registrar", path, str, None)
        display_text = self.get(spec, "display", path, str, PictureDisplay.PANE.value)
        display = PictureDisplay.PANE
        if display_text is not None:
            try:
                display = PictureDisplay(display_text)
            except ValueError:
                self.error((*path, "display"), "must be 'pane' or 'window'")
        if "display" in spec and kind is not ComponentKind.FRACTAL_PU:
            self.error((*path, "display"), "only for kind = 'fractal-pu'")
        grace = self.number(spec, "stop_grace_s", path, None, 0, 600)
        multiplier = self.number(spec, "timeout_multiplier", path, None, 1, 1000)
        if name is None or kind is None or host is None:
            return None
        return Component(
            name=name,
            kind=kind,
            host=host,
            identifier=identifier,
            display_name=display_name if display_name is not None else name,
            group=group,
            position=position,
            depends_on=self.str_list(spec, "depends_on", path),
            registrars=self.str_list(spec, "registrars", path),
            home_registrar=home,
            display=display,
            options=options,
            env={k: v for k, v in env.items() if isinstance(v, str)},
            command=command,
            pool_handle=pool_handle,
            asap_port=asap_port if asap_port is not None else DEFAULT_ASAP_PORT,
            enrp_port=enrp_port if enrp_port is not None else DEFAULT_ENRP_PORT,
            stop_grace_s=float(grace) if grace is not None else None,
            timeout_multiplier=float(multiplier) if multiplier is not None else None,
            line=line_of(self.lines, path),
        )

    def position(self, spec: Mapping[str, Any], path: KeyPath) -> tuple[float, float] | None:
        value = self.get(spec, "position", path, list, None)
        if value is None:
            return None
        ok = len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100 for v in value
        )
        if not ok:
            self.error((*path, "position"), "must be [x, y] in percent of the map (0..100)")
            return None
        return (float(value[0]), float(value[1]))

    def options(self, spec: Mapping[str, Any], path: KeyPath) -> dict[str, OptionValue]:
        options: dict[str, OptionValue] = {}
        for key, value in self.table(spec, "options", path).items():
            opath: KeyPath = (*path, "options", key)
            if not re.match(r"^[a-z][a-z0-9_-]*$", key):
                self.error(opath, "option names are lower-case words (e.g. max_threads)")
            elif isinstance(value, str | int | float | bool):
                options[key] = value
            elif isinstance(value, list) and all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
            ):
                options[key] = tuple(value)
            else:
                self.error(opath, "must be a string, number, boolean or a list of those")
        return options

    def cross_check(self, parsed: list[tuple[KeyPath, Component]]) -> None:
        """Checks across components: unique names and ids, references, ports."""
        names: dict[str, KeyPath] = {}
        for path, comp in parsed:
            if comp.name in names:
                self.error((*path, "name"), f"duplicate name (also {field_name(names[comp.name])})")
            names.setdefault(comp.name, path)
        kinds = {c.name: c.kind for _, c in parsed}
        ids: dict[int, str] = {}
        endpoints: dict[tuple[str, int], str] = {}
        for path, comp in parsed:
            for dep in comp.depends_on:
                if dep not in kinds:
                    self.error((*path, "depends_on"), f"no component named {dep!r}")
                elif dep == comp.name:
                    self.error((*path, "depends_on"), "a component cannot depend on itself")
            for reg in comp.registrars:
                if not _is_registrar(kinds.get(reg)):
                    self.error((*path, "registrars"), f"{reg!r} is not a registrar component")
            if comp.registrars and comp.kind.is_registrar:
                self.error((*path, "registrars"), "registrars find their peers themselves")
            home = comp.home_registrar
            if home is not None:
                if comp.kind.is_registrar:
                    self.error((*path, "registrar"), "registrars have no home registrar")
                elif not _is_registrar(kinds.get(home)):
                    self.error((*path, "registrar"), f"{home!r} is not a registrar component")
                elif comp.registrars and home not in comp.registrars:
                    self.error((*path, "registrar"), f"{home!r} is not in this registrars list")
            if comp.csp_id is not None:
                if comp.csp_id in ids:
                    self.error(
                        (*path, "identifier"),
                        f"identifier {comp.identifier:#x} already used by {ids[comp.csp_id]!r}",
                    )
                ids[comp.csp_id] = comp.name
            if comp.kind.is_registrar:
                for key, port in (("asap_port", comp.asap_port), ("enrp_port", comp.enrp_port)):
                    if port == 0:
                        continue  # picked at start time, cannot clash
                    where = (comp.host, port)
                    if where in endpoints:
                        self.error((*path, key), f"port {port} also used by {endpoints[where]!r}")
                    endpoints[where] = comp.name


def _is_registrar(kind: ComponentKind | None) -> bool:
    return kind is not None and kind.is_registrar


def _assign_identifiers(components: list[Component]) -> list[Component]:
    """Give every reporting component without ``identifier`` a free one of its group."""
    used = {(c.group, c.identifier) for c in components if c.identifier is not None}
    out: list[Component] = []
    for comp in components:
        if comp.identifier is None and comp.group is not None:
            candidate = AUTO_IDENTIFIER_BASE[comp.group]
            while (comp.group, candidate) in used:
                candidate += 1
            used.add((comp.group, candidate))
            comp = replace(comp, identifier=candidate)
        out.append(comp)
    return out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _type_name(t: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean (true/false)",
        list: "an array",
        dict: "a table",
    }.get(t, t.__name__)
