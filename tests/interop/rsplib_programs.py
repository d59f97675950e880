"""Helpers for tests against rsplib's own programs (Debian's rsplib 3.4.4).

rsplib's programs take ``-key=value`` options, speak kernel SCTP only (its monitor
``cspmonitor`` excepted), and are started and stopped by PID like every other test
process. ``cspmonitor`` redraws a full-screen table; :func:`cspmonitor_table` reads the
last state of every component from its output.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import LoggedProcess

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: One component row of cspmonitor: ``PR $00001234 [location] U=... A=2 "status"``.
ROW_RE = re.compile(
    r"(?P<group>P[REU]) \$(?P<id>[0-9a-f]+) \[(?P<location>[^\]]*)\][^\n\"]*?"
    r"A=(?P<associations>\d+) \"(?P<status>[^\"]*)\""
)
GROUP_OF_ROW = {"PR": "registrar", "PE": "pool-element", "PU": "pool-user"}


def need_programs(*names: str) -> None:
    """Skip the calling test when one of rsplib's programs is not installed."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.skip(
            f"rsplib's {', '.join(missing)} not installed (Debian packages rsplib-registrar, "
            "rsplib-tools, rsplib-services; scripts/setup.sh installs them as root)"
        )


def start(argv: Sequence[str], log_path: Path) -> LoggedProcess:
    return LoggedProcess.program(argv, log_path)


@dataclass(frozen=True)
class MonitorRow:
    group: str
    identifier: int
    location: str
    associations: int
    status: str


def cspmonitor_table(text: str) -> dict[tuple[str, int], MonitorRow]:
    """The newest row of every component in cspmonitor's output (by group and id)."""
    rows: dict[tuple[str, int], MonitorRow] = {}
    for match in ROW_RE.finditer(ANSI_RE.sub("", text)):
        row = MonitorRow(
            GROUP_OF_ROW[match["group"]],
            int(match["id"], 16),
            match["location"],
            int(match["associations"]),
            match["status"],
        )
        rows[(row.group, row.identifier)] = row
    return rows


def wait_until(
    check: Callable[[], bool], timeout: float, describe: Callable[[], str], poll: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(poll)
