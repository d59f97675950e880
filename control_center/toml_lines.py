"""Line numbers of keys in a TOML document.

``tomllib`` returns plain dicts without positions, so validation errors could
not say where a bad value sits. This module scans the text once more (after
``tomllib`` accepted it) and records the line of every key, table header and
array-of-tables entry, as a path such as ``("components", 2, "identifier")``.
The scanner is tolerant: on anything it does not understand it skips to the
next line instead of raising, because a missing position only makes an error
message slightly less precise.
"""

from __future__ import annotations

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.array_counts: dict[Path, int] = {}

    # -- low-level helpers -------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_blanks(self, newlines: bool) -> None:
        """Skip spaces, tabs, comments and (if asked) newlines."""
        while not self.at_end():
            ch = self.peek()
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.advance()
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.advance((len(self.text) if end < 0 else end + 1) - self.pos)

    def record(self, path: Path) -> None:
        self.lines.setdefault(path, self.line)

    # -- grammar -------------------------------------------------------------
    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blanks(newlines=False)
            ch = self.peek()
            if ch in "\"'":
                parts.append(self.quoted())
            else:
                start = self.pos
                while not self.at_end() and self.peek() in _BARE_KEY_CHARS:
                    self.advance()
                if self.pos == start:
                    return parts
                parts.append(self.text[start : self.pos])
            self.skip_blanks(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def quoted(self) -> str:
        quote = self.peek()
        triple = self.peek(3) == quote * 3
        if triple:
            self.advance(3)
            end = self.text.find(quote * 3, self.pos)
            end = len(self.text) if end < 0 else end
            value = self.text[self.pos : end]
            self.advance(end + 3 - self.pos)
            # A closing run may be up to five quotes long ("""a"""" ends after two).
            while self.peek() == quote:
                self.advance()
            return value
        self.advance()
        chars: list[str] = []
        while not self.at_end() and self.peek() not in (quote, "\n"):
            if quote == '"' and self.peek() == "\\":
                chars.append(self.peek(2))
                self.advance(2)
                continue
            chars.append(self.peek())
            self.advance()
        self.advance()
        return "".join(chars)

    def value(self, path: Path) -> None:
        self.skip_blanks(newlines=False)
        ch = self.peek()
        if ch in "\"'":
            self.quoted()
        elif ch == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blanks(newlines=True)
                if self.at_end():
                    return
                if self.peek() == "]":
                    self.advance()
                    return
                self.record((*path, index))
                self.value((*path, index))
                index += 1
                self.skip_blanks(newlines=True)
                if self.peek() == ",":
                    self.advance()
        elif ch == "{":
            self.advance()
            while True:
                self.skip_blanks(newlines=False)
                if self.at_end() or self.peek() in "}\n":
                    self.advance()
                    return
                parts = self.key()
                if not parts:
                    return
                self.record((*path, *parts))
                self.skip_blanks(newlines=False)
                if self.peek() == "=":
                    self.advance()
                self.value((*path, *parts))
                self.skip_blanks(newlines=False)
                if self.peek() == ",":
                    self.advance()
        else:
            while not self.at_end() and self.peek() not in ",]}\n#":
                self.advance()

    def header(self) -> Path:
        """Parse ``[a.b]`` or ``[[a]]``; array entries get their index in the path.

        A prefix naming an array of tables refers to its latest entry, so
        ``[components.options]`` after the third ``[[components]]`` is
        ``("components", 2, "options")``.
        """
        array = self.peek(2) == "[["
        self.advance(2 if array else 1)
        parts = self.key()
        line = self.line
        self.skip_line()
        resolved: list[str | int] = []
        for i, part in enumerate(parts):
            resolved.append(part)
            key = tuple(resolved)
            if array and i == len(parts) - 1:
                count = self.array_counts.get(key, 0)
                self.array_counts[key] = count + 1
                resolved.append(count)
            elif key in self.array_counts:
                resolved.append(self.array_counts[key] - 1)
        path = tuple(resolved)
        self.lines.setdefault(path, line)
        return path

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_blanks(newlines=True)
            if self.at_end():
                return self.lines
            if self.peek() == "[":
                table = self.header()
                continue
            parts = self.key()
            if not parts:
                self.skip_line()
                continue
            self.record((*table, *parts))
            self.skip_blanks(newlines=False)
            if self.peek() == "=":
                self.advance()
                self.value((*table, *parts))
            self.skip_blanks(newlines=False)
            if not self.at_end() and self.peek() == "\n":
                self.advance()


def key_lines(text: str) -> dict[Path, int]:
    """Line (1-based) of every key path in ``text``; header lines for tables."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """Line of ``path``, or of its nearest recorded ancestor; ``None`` if none."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None
