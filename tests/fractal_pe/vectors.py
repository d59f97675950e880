"""Loads the hand-written hex vectors under tests/vectors/fgp/."""

from __future__ import annotations

from pathlib import Path

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "fgp"


def load_vector(name: str) -> bytes:
    """Hex bytes of a vector file; lines starting with '#' are comments."""
    lines = (VECTOR_DIR / name).read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))
