"""Saved traces: a file of trace records, one JSON object per line (``docs/trace.md``).

The control center saves the datagrams it receives this way (``trace.jsonl`` in its run
directory); ``rsp-decode --trace FILE`` reads them back. Every line is validated like a
received datagram; a bad line is reported with its number and the rest still read. Lines
longer than the format allows are skipped without reading them whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rsplib.trace.record import MAX_LINE, TraceFormatError, TraceRecord, decode_line


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    error: str


def read_trace_file(path: str | Path) -> Iterator[tuple[int, TraceRecord | BadLine]]:
    """(line number, record or :class:`BadLine`) for every non-empty line of ``path``."""
    with open(path, "rb") as stream:
        number = 0
        while True:
            line = stream.readline(MAX_LINE + 2)
            if not line:
                return
            number += 1
            if not line.endswith(b"\n") and len(line) > MAX_LINE:
                # Too long: skip to the end of this line without holding it.
                while line and not line.endswith(b"\n"):
                    line = stream.readline(65536)
                yield number, BadLine(number, f"line longer than {MAX_LINE} bytes")
                continue
            text = line.strip()
            if not text:
                continue
            try:
                yield number, decode_line(text)
            except TraceFormatError as exc:
                yield number, BadLine(number, str(exc))
