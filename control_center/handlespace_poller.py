"""Fetches every running registrar's handlespace for the control center's Handlespace pane.

Uses the ``rsp-hsdump`` client (ENRP Handle Table Requests). One fixed ENRP id per control
center, so a registrar sees the same short-lived inspector each time rather than a new
peer per refresh; the inspector owns no PEs and a registrar forgets it when it leaves.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from rsplib.handlespace.checksum import EMPTY_CHECKSUM
from rsplib.inspect.handlespace_dump import HandlespaceDump
from rsplib.inspect.hsdump import DumpError, fetch_handlespace
from rsplib.transport import AUTO

INSPECTOR_ID = random.SystemRandom().randrange(0x1000_0000, 0xFFFF_FFFF)


@dataclass(frozen=True, slots=True)
class RegistrarTarget:
    name: str
    host: str
    enrp_port: int


@dataclass(frozen=True, slots=True)
class RegistrarTable:
    """One registrar's answer: its dump, or why there is none."""

    name: str
    dump: HandlespaceDump | None
    error: str | None = None


async def fetch_tables(
    targets: list[RegistrarTarget], *, timeout: float = 2.0, transport: str = AUTO
) -> list[RegistrarTable]:
    """Every target's table, fetched at the same time."""

    async def one(target: RegistrarTarget) -> RegistrarTable:
        try:
            dump = await fetch_handlespace(
                target.host,
                target.enrp_port,
                transport=transport,
                timeout=timeout,
                identifier=INSPECTOR_ID,
            )
        except DumpError as exc:
            return RegistrarTable(target.name, None, str(exc))
        return RegistrarTable(target.name, dump)

    return list(await asyncio.gather(*(one(t) for t in targets)))


def checksum_rows(tables: list[RegistrarTable]) -> list[tuple[int, list[tuple[int, int] | None]]]:
    """Per home registrar id: its (checksum, PE count) in each table, None where absent.

    Equal values across a row mean the registrars agree on what that home owns; None marks
    a registrar that did not answer.
    """
    dumps = [t.dump for t in tables]
    homes: set[int] = set()
    for dump in dumps:
        if dump is not None:
            homes.update(dump.checksums())
            homes.add(dump.server_id)
    rows = []
    for home in sorted(homes):
        cells: list[tuple[int, int] | None] = []
        for dump in dumps:
            # A home a table has no PEs of: the checksum of nothing, as its Presence says.
            cells.append(None if dump is None else dump.checksums().get(home, (EMPTY_CHECKSUM, 0)))
        rows.append((home, cells))
    return rows
