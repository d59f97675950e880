"""Import rsplib rserpooldemo scenario files (``*.xml``) as :class:`Scenario` objects.

What is taken over: the caption (scenario name), the CSP listen port, the
background image, protocol colours (by PPID: 11 ASAP, 12 ENRP, 32 the fractal
protocol, 0 data) and every node with a hexadecimal ``UID``: its group byte
says registrar, pool element or pool user, the low 56 bits are the
identifier, ``DisplayName``, ``PositionX/Y`` (percent) and ``RefreshTimeout``
carry over. Nodes without a numeric UID (the "Control" pseudo-node) are
skipped, and context-menu shell commands are not imported -- the launchers
start components themselves. Everything skipped is listed in
:attr:`ImportResult.notes`.

Errors are reported like the TOML loader's: ``file:line: field: message``.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from control_center.issues import Issue
from control_center.scenario import (
    DEFAULT_COLORS,
    LOCAL_HOST_NAME,
    Component,
    ComponentKind,
    LocalHost,
    Scenario,
)
from control_center.scenario_file import ScenarioError, load_scenario
from rsplib.wire.csp import ComponentGroup, split_component_id

PPID_COLOR_NAMES = {0: "data", 11: "asap", 12: "enrp", 32: "application"}
GROUP_KIND = {
    int(ComponentGroup.REGISTRAR): ComponentKind.REGISTRAR,
    int(ComponentGroup.POOL_ELEMENT): ComponentKind.FRACTAL_PE,
    int(ComponentGroup.POOL_USER): ComponentKind.FRACTAL_PU,
}
ROOT_TAGS = {
    "RefreshTime",
    "ListenPort",
    "DiagramResolutionX",
    "DiagramResolutionY",
    "Caption",
    "BackgroundImage",
    "ProtocolColor",
    "Node",
}
NODE_TAGS = {
    "UID",
    "DisplayName",
    "DisplayLocation",
    "RefreshTimeout",
    "ActiveImageURL",
    "InactiveImageURL",
    "PositionX",
    "PositionY",
    "ContextMenuEntry",
    "ContextMenuSeparator",
}
MENU_TAGS = {"Name", "Command"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class _Element:
    tag: str
    line: int
    attrs: dict[str, str]
    text: str = ""
    children: list[_Element] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    scenario: Scenario
    #: What was not taken over, one line each (with the XML line).
    notes: list[str]


class XmlImportError(ScenarioError):
    """The XML file could not be imported; ``issues`` lists every problem."""


def _parse(text: bytes, file: str) -> _Element:
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Element] = []
    root: list[_Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = _Element(tag, parser.CurrentLineNumber, attrs)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        message = xml.parsers.expat.ErrorString(exc.code)
        raise XmlImportError([Issue(file, exc.lineno, "(syntax)", message)]) from exc
    return root[0]


def import_xml(path: str | Path) -> ImportResult:
    """Read an rserpooldemo XML scenario."""
    path = Path(path)
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise XmlImportError([Issue(file, None, "(file)", exc.strerror or str(exc))]) from exc
    root = _parse(data, file)
    return _Importer(file, path.resolve().parent).run(root)


def load_any(path: str | Path) -> Scenario:
    """A scenario from TOML, or imported from rserpooldemo XML (by file suffix)."""
    if str(path).lower().endswith(".xml"):
        return import_xml(path).scenario
    return load_scenario(path)


class _Importer:
    def __init__(self, file: str, base_dir: Path) -> None:
        self.file = file
        self.base_dir = base_dir
        self.issues: list[Issue] = []
        self.notes: list[str] = []

    def error(self, element: _Element, field_path: str, message: str) -> None:
        self.issues.append(Issue(self.file, element.line, field_path, message))

    def note(self, element: _Element, message: str) -> None:
        self.notes.append(f"{self.file}:{element.line}: {message}")

    def integer(self, element: _Element, field_path: str, low: int, high: int) -> int | None:
        text = element.text.strip()
        try:
            value = int(text, 0) if text.lower().startswith("0x") else int(text)
        except ValueError:
            self.error(element, field_path, f"must be an integer, not {text!r}")
            return None
        if not low <= value <= high:
            self.error(element, field_path, f"must be between {low} and {high}, not {value}")
            return None
        return value

    def run(self, root: _Element) -> ImportResult:
        name = "Imported scenario"
        csp_port = 2960
        background: Path | None = None
        colors = dict(DEFAULT_COLORS)
        components: list[Component] = []
        names: set[str] = set()
        ids: dict[int, str] = {}
        node_index = 0
        for child in root.children:
            tag = child.tag
            if tag not in ROOT_TAGS:
                self.error(child, tag, "unknown tag")
            elif tag == "Caption":
                name = child.text.strip() or name
            elif tag == "ListenPort":
                csp_port = self.integer(child, tag, 0, 65535) or csp_port
            elif tag == "BackgroundImage":
                background = self.base_dir / child.text.strip()
            elif tag == "ProtocolColor":
                self.protocol_color(child, colors)
            elif tag == "Node":
                comp = self.node(child, node_index, names, ids)
                node_index += 1
                if comp is not None:
                    components.append(comp)
            else:
                self.note(child, f"{tag} is not needed (the view adapts itself)")
        if self.issues:
            raise XmlImportError(self.issues)
        scenario = Scenario(
            name=name,
            hosts={LOCAL_HOST_NAME: LocalHost(LOCAL_HOST_NAME)},
            components=tuple(components),
            csp_port=csp_port,
            background=background,
            colors=colors,
            source=Path(self.file),
        )
        return ImportResult(scenario, self.notes)

    def protocol_color(self, element: _Element, colors: dict[str, str]) -> None:
        ppid_text = element.attrs.get("ID")
        color = element.text.strip()
        if ppid_text is None or not ppid_text.strip().isdigit():
            self.error(element, "ProtocolColor.ID", "needs a numeric PPID attribute")
            return
        if not color:
            self.error(element, "ProtocolColor", "needs a colour name or #rrggbb")
            return
        ppid = int(ppid_text)
        colors[PPID_COLOR_NAMES.get(ppid, f"ppid-{ppid}")] = color

    def node(
        self, element: _Element, index: int, names: set[str], ids: dict[int, str]
    ) -> Component | None:
        where = f"Node[{index}]"
        fields: dict[str, _Element] = {}
        for child in element.children:
            if child.tag not in NODE_TAGS:
                self.error(child, f"{where}.{child.tag}", "unknown tag")
                continue
            if child.tag == "ContextMenuEntry":
                for item in child.children:
                    if item.tag not in MENU_TAGS:
                        self.error(item, f"{where}.ContextMenuEntry.{item.tag}", "unknown tag")
                continue
            fields.setdefault(child.tag, child)
        display = fields["DisplayName"].text.strip() if "DisplayName" in fields else ""
        uid_element = fields.get("UID")
        if uid_element is None:
            self.error(element, f"{where}.UID", "missing")
            return None
        uid_text = uid_element.text.strip()
        try:
            uid = int(uid_text, 16)
        except ValueError:
            self.note(element, f"node {display or uid_text!r} has no numeric UID; skipped")
            return None
        group, identifier = split_component_id(uid)
        kind = GROUP_KIND.get(group)
        if kind is None or identifier == 0:
            self.error(
                uid_element,
                f"{where}.UID",
                f"{uid_text} is not a registrar (1), pool element (2) or pool user (3) id",
            )
            return None
        if uid in ids:
            self.error(uid_element, f"{where}.UID", f"UID {uid_text} also used by {ids[uid]!r}")
            return None
        position = self.position(fields, where)
        multiplier = None
        if "RefreshTimeout" in fields:
            value = self.integer(fields["RefreshTimeout"], f"{where}.RefreshTimeout", 1, 1000)
            multiplier = float(value) if value is not None else None
        name = self.unique_name(display or f"{kind.value}-{identifier:x}", names)
        ids[uid] = name
        if any(c.tag == "ContextMenuEntry" for c in element.children):
            self.note(element, f"{name}: context-menu commands not imported (launchers start it)")
        return Component(
            name=name,
            kind=kind,
            host=LOCAL_HOST_NAME,
            identifier=identifier,
            display_name=display or name,
            group=ComponentGroup(group),
            position=position,
            # Imported registrars get free ports at start; nothing to clash with.
            asap_port=0,
            enrp_port=0,
            timeout_multiplier=multiplier,
            line=element.line,
        )

    def position(self, fields: dict[str, _Element], where: str) -> tuple[float, float] | None:
        values = []
        for tag in ("PositionX", "PositionY"):
            if tag not in fields:
                return None
            value = self.integer(fields[tag], f"{where}.{tag}", 0, 100)
            if value is None:
                return None
            values.append(float(value))
        return (values[0], values[1])

    @staticmethod
    def unique_name(display: str, names: set[str]) -> str:
        base = _NAME_CHARS.sub("-", display).strip("-.")[:60] or "node"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.add(name)
        return name
