"""Located problems in the control center's input files (scenarios, storyboards, XML).

Loaders collect every problem of a file as an :class:`Issue` before they raise, so a
user fixes a file in one go; each file kind has its own :class:`IssuesError` subclass.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from control_center.toml_lines import Path as KeyPath
from control_center.toml_lines import key_lines

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


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


class DocumentBuilder(Protocol[T_co]):
    """Builds one kind of document from parsed TOML, collecting its problems."""

    issues: list[Issue]

    def build(self, data: dict[str, Any], source: Path | None) -> T_co | None: ...


def load_document(
    text: str,
    source: str | Path | None,
    *,
    unnamed: str,
    error: type[IssuesError],
    builder: Callable[[str, dict[KeyPath, int], Path], DocumentBuilder[T]],
) -> T:
    """Parse and build a TOML document; every problem found raises ``error`` at once.

    ``source`` names the file in messages and anchors relative paths (else ``unnamed``
    and the working directory); ``builder(file, key_lines, base_dir)`` makes the builder.
    """
    file = str(source) if source is not None else unnamed
    data = parse_toml(text, file, error)
    base = Path(source).resolve().parent if source is not None else Path.cwd()
    made = builder(file, key_lines(text), base)
    document = made.build(data, Path(source) if source is not None else None)
    if made.issues or document is None:
        raise error(made.issues)
    return document
