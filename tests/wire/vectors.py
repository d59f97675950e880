"""Loading the hand-written golden byte vectors under tests/vectors/.

A vector file holds hex digits; whitespace is ignored and ``#`` starts a
comment that runs to the end of the line.
"""

from __future__ import annotations

from pathlib import Path

VECTOR_ROOT = Path(__file__).resolve().parent.parent / "vectors"


def parse_hex(text: str) -> bytes:
    """Bytes from commented hex text."""
    digits = "".join(line.split("#", 1)[0] for line in text.splitlines())
    return bytes.fromhex("".join(digits.split()))


def load_vector(kind: str, name: str) -> bytes:
    """The bytes of tests/vectors/KIND/NAME.hex."""
    return parse_hex((VECTOR_ROOT / kind / f"{name}.hex").read_text())


def vector_names(kind: str) -> set[str]:
    """Names (without .hex) of all vectors of one kind."""
    return {p.stem for p in (VECTOR_ROOT / kind).glob("*.hex")}
