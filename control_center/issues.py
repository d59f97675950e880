"""Located problems in the control center's input files (scenarios, storyboards, XML).

Loaders collect every problem of a file as an :class:`Issue` before they raise, so a
user fixes a file in one go; each file kind has its own :class:`IssuesError` subclass.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_center.toml_lines import Path as KeyPath


@dataclass(frozen=True, slots=True)
class Issue:
    """One located problem: ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"


class IssuesError(ValueError):
    """A file could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def field_name(path: KeyPath) -> str:
    """``("components", 2, "identifier")`` -> ``components[2].identifier``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# tomllib puts the position into the message text; it becomes the issue's line.
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)")


def parse_toml(text: str, file: str, error: type[IssuesError]) -> dict[str, Any]:
    """``text`` as TOML; a syntax error raises ``error`` with one located ``(syntax)`` issue."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.search(str(exc))
        line = int(match.group(1)) if match else None
        message = _TOML_POSITION.sub("", str(exc)).strip()
        raise error([Issue(file, line, "(syntax)", message)]) from exc


def read_input(path: Path, error: type[IssuesError]) -> str:
    """The text of ``path``; an unreadable file raises ``error`` with one ``(file)`` issue."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error([Issue(str(path), None, "(file)", exc.strerror or str(exc))]) from exc
