"""How a fractal pool user is put together: ASAP service, session engine, status reporting.

The headless run (:mod:`fractal_pu.headless`) and the viewer's engine thread
(:mod:`fractal_pu.gui.runner`) build their pool user from these pieces, with
settings from :mod:`fractal_pu.options`. No Qt here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fractal_pe.cookie_state import decode_fgp_state
from fractal_pe.fgp import FGP_PPID
from fractal_pu.engine import (
    CellConnected,
    CellDone,
    CellSession,
    EngineEvent,
    FailoverCompleted,
    FailoverStarted,
    FractalEngine,
    Listener,
    PixelsArrived,
)
from fractal_pu.live_image import LiveImage, keep_writing
from fractal_pu.options import PoolUserOptions
from rsplib.asap.service import AsapService
from rsplib.session.cookies import CookieSealer, InvalidCookie
from rsplib.session.pu_machine import SessionEvent
from rsplib.session.pu_session import PoolUserSession
from rsplib.session.reporting import (
    ComponentReporter,
    registrar_association,
    session_association,
)
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id
from rsplib.wire.errors import ProtocolError


class PuStatus:
    """CSP status of the PU: rsplib's texts, and one association per connected session."""

    def __init__(self, sessions: int, clock: Callable[[], float]) -> None:
        self.sessions = sessions
        self._clock = clock
        self.packets = 0
        self.last_pe: int | None = None
        self.connected: dict[int, tuple[int, float]] = {}

    def on_event(self, event: EngineEvent) -> None:
        if isinstance(event, PixelsArrived):
            self.packets += 1
            self.last_pe = event.pe_id
            if event.cell not in self.connected:
                self.connected[event.cell] = (event.pe_id, self._clock())
        elif isinstance(event, CellConnected):
            self.connected[event.cell] = (event.pe_id, self._clock())
        elif isinstance(event, FailoverStarted | CellDone):
            self.connected.pop(event.cell, None)
        elif isinstance(event, FailoverCompleted):
            self.connected[event.cell] = (event.new_pe, self._clock())

    def status_text(self) -> str:
        if self.sessions == 1 and self.last_pe is not None:
            return f"Processed packet #{self.packets} of PE ${self.last_pe:08x}"
        return f"{len(self.connected)} Sessions"

    def associations(self, transport: str) -> list[CspAssociation]:
        now = self._clock()
        return [
            session_association(pe, now - since, int(FGP_PPID), transport)
            for pe, since in self.connected.values()
        ]


def cookie_describer(sealer: CookieSealer) -> Callable[[bytes], str]:
    """Where a cookie resumes, for the log (the PU needs the key only for this)."""

    def describe(cookie: bytes) -> str:
        try:
            param, x, y = decode_fgp_state(sealer.open(cookie).state)
        except (InvalidCookie, ProtocolError) as exc:
            return f"unreadable cookie ({exc})"
        return f"resumes at ({x}, {y}) of {param.width}x{param.height}"

    return describe


def asap_service(options: PoolUserOptions) -> AsapService:
    """The PU's ASAP service as the options describe it (not started yet)."""
    return AsapService(
        options.asap_config,
        registrars=options.registrars,
        announce=options.announce,
        transport=options.transport,
        tls=options.tls,
    )


def fractal_engine(
    options: PoolUserOptions, asap: AsapService, *, listener: Listener | None = None
) -> FractalEngine:
    """The session engine; every cell opens its pool-user session through ``asap``."""

    async def open_session(on_event: Callable[[SessionEvent], None]) -> CellSession:
        return await PoolUserSession.connect(
            options.pool_handle,
            asap=asap,
            heartbeat=options.heartbeat,
            connect_timeout=options.connect_timeout,
            timeout=options.pool_timeout,
            ppid=int(FGP_PPID),
            on_event=on_event,
        )

    return FractalEngine(
        open_session,
        config=options.engine,
        listener=listener,
        describe_cookie=None
        if options.cookie_sealer is None
        else cookie_describer(options.cookie_sealer),
    )


def start_status_reporter(
    options: PoolUserOptions,
    asap: AsapService,
    status: PuStatus,
    *,
    random_bits: Callable[[int], int],
    status_text: Callable[[], str] | None = None,
) -> ComponentReporter | None:
    """The running CSP reporter of the PU, or None without ``options.csp``.

    Without ``options.identifier`` the PU picks a random 56-bit one with ``random_bits``.
    """
    if options.csp is None:
        return None
    identifier = options.identifier or random_bits(56) or 1
    reporter = ComponentReporter(
        component_id(ComponentGroup.POOL_USER, identifier),
        options.csp,
        status=status_text or status.status_text,
        associations=lambda: registrar_association(asap) + status.associations(asap.transport),
    )
    reporter.start()
    return reporter


def attach_live_image(options: PoolUserOptions, engine: FractalEngine) -> asyncio.Task[None] | None:
    """With ``--live-image``: follow ``engine``'s pixels and keep the file current.

    Returns the writer task (cancel it when the pool user stops), or None.
    """
    if options.live_image is None:
        return None
    live = LiveImage(
        options.live_image,
        show_failovers=options.show_failovers,
        show_sessions=options.show_sessions,
    )
    engine.add_listener(live.on_event)
    return asyncio.get_running_loop().create_task(keep_writing(live))
