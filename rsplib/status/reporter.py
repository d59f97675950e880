"""Periodic CSP v0x0200 status reports from any component to a monitor.

The reporter only assembles reports from providers that the component hands
in (status text, location, associations, workload) and passes the encoded
datagram to a send function; the actual UDP send lives in rsplib.transport,
the only package that touches sockets.

Timing follows rsplib: the timestamp counts microseconds from the first
report, the report interval is stated in every report, and a component that
stops cleanly sends one FINAL report (flag set, empty texts, no
associations) so the monitor drops it at once instead of timing it out.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from rsplib.trace.tracer import TRACER
from rsplib.wire.csp import CspAssociation, CspReport, encode_csp

log = logging.getLogger("rsplib.status")

#: rsplib's default monitor address and port.
DEFAULT_CSP_SERVER: Final = ("127.0.0.1", 2960)
#: rsplib refuses intervals below this when set from the environment; we use
#: it as the floor everywhere so a typo cannot flood the monitor.
MIN_INTERVAL: Final = 0.01

StatusProvider = Callable[[], str]
LocationProvider = Callable[[], str]
AssociationsProvider = Callable[[], Iterable[CspAssociation]]
WorkloadProvider = Callable[[], float | None]
#: Sends one datagram to (host, port); may be sync or async.
DatagramSender = Callable[[bytes, tuple[str, int]], Awaitable[None] | None]
Clock = Callable[[], float]


def default_location() -> str:
    """Host name, as rsplib starts its location text (addresses are added by callers)."""
    return platform.node() or "(local only)"


def send_datagram(data: bytes, address: tuple[str, int]) -> None:
    """Send one report from a fresh UDP socket, as rsplib does (no state to go stale)."""
    # Imported here so that building reports (and this module's tests) does not
    # need the transport package.
    from rsplib.transport import UdpSender

    with UdpSender(address[0], address[1]) as sender:
        if not sender.send(data):
            raise OSError(f"CSP report to {address[0]}:{address[1]} dropped")


def parse_server(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (IPv6 as ``[ADDR]:PORT``) -> (host, port); ValueError if malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected ADDR:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


class StatusReporter:
    """Sends a CSP report every ``interval`` seconds while :meth:`run` runs.

    ``component_id`` is the 64-bit CSP id (see rsplib.wire.csp.component_id).
    Providers are called once per report, so they always reflect the current
    state; a provider that raises is logged and the report is skipped, never
    the component.
    """

    def __init__(
        self,
        component_id: int,
        *,
        server: tuple[str, int] = DEFAULT_CSP_SERVER,
        interval: float,
        status: StatusProvider,
        location: LocationProvider | str | None = None,
        associations: AssociationsProvider | None = None,
        workload: WorkloadProvider | None = None,
        send: DatagramSender | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if interval < MIN_INTERVAL:
            raise ValueError(f"CSP interval must be at least {MIN_INTERVAL} s, not {interval}")
        self.component_id = component_id
        # The trace records carry the same id, so a receiver joins the two.
        TRACER.identify(component_id)
        self.server = server
        self.interval = interval
        self._status = status
        if location is None:
            fixed = default_location()
            self._location: LocationProvider = lambda: fixed
        elif isinstance(location, str):
            fixed_text = location
            self._location = lambda: fixed_text
        else:
            self._location = location
        self._associations = associations
        self._workload = workload
        self._send = send
        self._clock = clock
        self._first_report_at: float | None = None
        self._final_sent = False
        self.reports_sent = 0

    def build_report(self, *, final: bool = False) -> CspReport:
        """The report as of now (FINAL: empty texts and no associations, as rsplib)."""
        now = self._clock()
        if self._first_report_at is None:
            self._first_report_at = now
        timestamp_us = max(0, round((now - self._first_report_at) * 1e6))
        interval_us = round(self.interval * 1e6)
        if final:
            return CspReport(
                sender_id=self.component_id,
                timestamp_us=timestamp_us,
                report_interval_us=interval_us,
                location="",
                status="",
                workload=None,
                associations=(),
                final=True,
            )
        workload = self._workload() if self._workload is not None else None
        if workload is not None:
            workload = min(1.0, max(0.0, workload))
        associations = tuple(self._associations()) if self._associations is not None else ()
        return CspReport(
            sender_id=self.component_id,
            timestamp_us=timestamp_us,
            report_interval_us=interval_us,
            location=self._location(),
            status=self._status(),
            workload=workload,
            associations=associations,
        )

    async def send_report(self, *, final: bool = False) -> bool:
        """Build and send one report now; False (logged) if that failed."""
        try:
            datagram = encode_csp(self.build_report(final=final))
        except Exception:
            # A broken provider must not take the component down with it.
            log.exception("cannot build CSP status report")
            return False
        send = self._send or send_datagram
        try:
            result = send(datagram, self.server)
            if result is not None:
                await result
        except OSError as exc:
            # No monitor listening is normal; say so once at debug level per failure.
            log.debug("CSP report to %s:%d not sent: %s", *self.server, exc)
            return False
        self.reports_sent += 1
        return True

    async def run(self) -> None:
        """Report every interval until cancelled (the FINAL report is :meth:`close`'s job)."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.send_report()
            next_at += self.interval
            # Keep the cadence; after a stall (suspended process) start afresh.
            delay = next_at - loop.time()
            if delay < 0:
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Send the FINAL report once (clean shutdown)."""
        if self._final_sent:
            return
        self._final_sent = True
        await self.send_report(final=True)
