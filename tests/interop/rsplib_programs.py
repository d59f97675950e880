"""Helpers for tests against rsplib's own programs (Debian's rsplib 3.4.4).

rsplib's programs take ``-key=value`` options, speak kernel SCTP only (its monitor
``cspmonitor`` excepted), and are started and stopped by PID like every other test
process. ``cspmonitor`` redraws a full-screen table; :func:`cspmonitor_table` reads the
last state of every component from its output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
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


# ----------------------------------------------------------------------------- hsdump

#: A peer row of hsdump: ``- idx:#0001: $00000062 upd=... chsum=$00004091 flags=...``.
HSDUMP_PEER_RE = re.compile(r"idx:#\d+: \$(?P<id>[0-9a-f]{8}) upd=\d+ chsum=\$(?P<chsum>[0-9a-f]+)")
#: A PE of hsdump's index: ``- idx:#0001: $00000111 flags=...`` then
#: ``chsum=$00004091 home=$00000062 life=...`` on the next line.
HSDUMP_PE_RE = re.compile(
    r"idx:#\d+: \$(?P<id>[0-9a-f]{8}) flags=[^\n]*\n\s+chsum=\$(?P<chsum>[0-9a-f]+) "
    r"home=\$(?P<home>[0-9a-f]{8})"
)


@dataclass(frozen=True)
class HandlespaceDump:
    """What rsplib's ``hsdump`` shows of one registrar."""

    #: Peer registrar id -> the ownership checksum of that peer's PEs in this handlespace.
    peer_checksums: dict[int, int]
    #: PE id -> (its checksum contribution, its home registrar id).
    pes: dict[int, tuple[int, int]]

    def homes(self) -> dict[int, int]:
        return {pe: home for pe, (_, home) in self.pes.items()}


def hsdump(enrp: tuple[str, int], timeout: float = 30.0) -> HandlespaceDump:
    """Run rsplib's ``hsdump`` against a registrar's ENRP endpoint.

    hsdump poses as a peer registrar for a moment: its target lists it as a peer until
    the peer timers drop it (which matters to a takeover started meanwhile).
    """
    need_programs("hsdump")
    result = subprocess.run(
        ["hsdump", f"{enrp[0]}:{enrp[1]}", "-logcolor=off", "-loglevel=1"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    text = ANSI_RE.sub("", result.stdout)
    index = text.split("*-- Selection:")[0]  # PEs are listed again by selection order
    peers = {int(m["id"], 16): int(m["chsum"], 16) for m in HSDUMP_PEER_RE.finditer(index)}
    pes = {
        int(m["id"], 16): (int(m["chsum"], 16), int(m["home"], 16))
        for m in HSDUMP_PE_RE.finditer(index)
    }
    if not pes and not peers:
        raise AssertionError(
            f"hsdump {enrp} printed nothing usable:\n{result.stdout}{result.stderr}"
        )
    return HandlespaceDump(peers, pes)
