"""Status-report (CSP v0x0200) providers for components built on the library.

The reporter itself lives in :mod:`rsplib.status`; this module supplies what
pool elements and pool users put into it (docs/protocol-notes.md#csp-content): the
registrar association (PPID 11, time since the connection came up), session
associations (PPID of the last message sent, session duration), workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rsplib.asap.service import AsapService
from rsplib.status import DEFAULT_CSP_SERVER, StatusReporter, default_location
from rsplib.wire.constants import PPID
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id

log = logging.getLogger("rsplib.session")

IPPROTO_TCP = 6
IPPROTO_SCTP = 132


@dataclass(frozen=True)
class CspOptions:
    """Where and how often to send status reports (rsplib ``-cspserver``/``-cspinterval``)."""

    server: tuple[str, int] = DEFAULT_CSP_SERVER
    interval: float = 1.0


def ip_protocol(transport_name: str) -> int:
    """IP protocol number of a transport name, for association entries."""
    return IPPROTO_SCTP if transport_name == "sctp" else IPPROTO_TCP


def registrar_association(asap: AsapService) -> list[CspAssociation]:
    """The home-registrar link of ``asap`` (none while hunting)."""
    link = asap.registrar_link()
    if link is None:
        return []
    server_id, seconds = link
    return [
        CspAssociation(
            receiver_id=component_id(ComponentGroup.REGISTRAR, server_id),
            duration_us=max(0, round(seconds * 1e6)),
            ppid=int(PPID.ASAP),
            protocol_id=ip_protocol(asap.transport),
        )
    ]


def session_association(
    pe_identifier: int, seconds: float, last_ppid: int, transport_name: str
) -> CspAssociation:
    """A pool user's session with a pool element."""
    return CspAssociation(
        receiver_id=component_id(ComponentGroup.POOL_ELEMENT, pe_identifier),
        duration_us=max(0, round(seconds * 1e6)),
        ppid=last_ppid,
        protocol_id=ip_protocol(transport_name),
    )


class ComponentReporter:
    """Runs a :class:`StatusReporter` as a task; :meth:`stop` sends the FINAL report."""

    def __init__(
        self,
        component: int,
        options: CspOptions,
        *,
        status: Callable[[], str],
        associations: Callable[[], Iterable[CspAssociation]],
        workload: Callable[[], float | None] | None = None,
        location: str | None = None,
    ) -> None:
        self.reporter = StatusReporter(
            component,
            server=options.server,
            interval=options.interval,
            status=status,
            location=location if location is not None else default_location(),
            associations=associations,
            workload=workload,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.reporter.run(), name="rsp-csp-reporter"
            )

    async def stop(self, *, final: bool = True) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if final:
            await self.reporter.close()
