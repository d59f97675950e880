"""Save node positions back into a scenario file, touching only the position lines.

Comments, ordering and every other value of the file stay exactly as they
were: an existing ``position = [x, y]`` line gets new numbers, and a
component without one gets a ``position`` line right after its ``name``.
The result is loaded again before it replaces the file, so a layout save can
never leave a scenario that does not load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from control_center.scenario_file import ScenarioError, load_scenario, loads_scenario
from control_center.toml_lines import key_lines

_POSITION_LINE = re.compile(r"^(?P<head>\s*position\s*=\s*)\[[^\]\n]*\](?P<tail>.*)$")
_NAME_LINE = re.compile(r"^(?P<indent>\s*)name\s*=")


class LayoutError(ValueError):
    """The positions could not be written (the message says which component and why)."""


def format_position(position: tuple[float, float]) -> str:
    def number(value: float) -> str:
        value = round(value, 1)
        return str(int(value)) if value == int(value) else f"{value:.1f}"

    return f"[{number(position[0])}, {number(position[1])}]"


def update_positions(text: str, positions: Mapping[str, tuple[float, float]]) -> str:
    """``text`` with the ``position`` of each named component replaced or added."""
    scenario = loads_scenario(text)
    index_of = {comp.name: i for i, comp in enumerate(scenario.components)}
    lines = text.split("\n")
    where = key_lines(text)
    inserts: list[tuple[int, str]] = []
    for name, position in positions.items():
        if name not in index_of:
            raise LayoutError(f"{name}: not a component of this scenario")
        index = index_of[name]
        value = format_position(position)
        line_no = where.get(("components", index, "position"))
        if line_no is not None:
            match = _POSITION_LINE.match(lines[line_no - 1])
            if match is None:
                raise LayoutError(f"{name}: line {line_no}: position is not a plain [x, y] line")
            lines[line_no - 1] = f"{match['head']}{value}{match['tail']}"
            continue
        name_line = where.get(("components", index, "name"))
        match = _NAME_LINE.match(lines[name_line - 1]) if name_line is not None else None
        if name_line is None or match is None:
            raise LayoutError(f"{name}: no 'name = ...' line to put the position after")
        inserts.append((name_line, f"{match['indent']}position = {value}"))
    for line_no, new_line in sorted(inserts, reverse=True):
        lines.insert(line_no, new_line)
    return "\n".join(lines)


def save_positions(path: str | Path, positions: Mapping[str, tuple[float, float]]) -> None:
    """Rewrite the scenario file at ``path`` with new positions (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise LayoutError(f"{path}: layouts are saved into TOML scenarios only")
    text = path.read_text(encoding="utf-8")
    try:
        updated = update_positions(text, positions)
        check = loads_scenario(updated, source=path)
    except ScenarioError as exc:
        raise LayoutError(f"{path}: {exc}") from exc
    for name, position in positions.items():
        saved = check.component(name).position
        if saved is None or any(abs(a - b) > 0.051 for a, b in zip(saved, position, strict=True)):
            raise LayoutError(f"{path}: {name}: position did not survive the rewrite")
    tmp = path.with_name(f".{path.name}.layout-tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, path)
    load_scenario(path)  # raises if anything went wrong on disk
