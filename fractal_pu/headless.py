"""Headless fractal pool user: computes images through the pool, writes PNG and a JSON report.

No Qt here: the engine (fractal_pu.engine) does the sessions, palette.py the
colours, png.py the file. Images are chosen from ``.fsf`` parameter files
(rsplib's format): at random per image like rsplib's viewer, or in order with
``playlist`` (a deterministic demo). With more than one image each output
gets a ``-NNN`` suffix (``out.png`` -> ``out-001.png``, ...).

The result is honest: the exit status is 0 only when every pixel of every
image was received (missing pixels stay grey in the PNG and are counted in
the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fractal_pe.cookie_state import decode_fgp_state
from fractal_pe.fgp import FGP_PPID
from fractal_pu.engine import (
    CellConnected,
    CellDone,
    CellSession,
    EngineConfig,
    EngineEvent,
    FailoverCompleted,
    FailoverStarted,
    FractalEngine,
    ImageResult,
    Listener,
    PixelsArrived,
)
from fractal_pu.fsf import DEFAULT_JOB, FractalJob, FsfError, find_fsf_files, read_fsf
from fractal_pu.palette import colorize, palette_offsets
from fractal_pu.png import write_png
from fractal_pu.report import ImageInfo, build_report, write_report
from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, AsapService, RegistrarAddress
from rsplib.errors import RserPoolError
from rsplib.session.cookies import CookieSealer, InvalidCookie
from rsplib.session.pu_machine import SessionEvent
from rsplib.session.pu_session import PoolUserSession
from rsplib.session.reporting import (
    ComponentReporter,
    CspOptions,
    registrar_association,
    session_association,
)
from rsplib.transport import AUTO, HeartbeatConfig
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id
from rsplib.wire.errors import ProtocolError

log = logging.getLogger("fractal_pu")

#: The parameter files shipped with the project (own regions, rsplib's format).
BUNDLED_FSF_DIR = Path(__file__).resolve().parents[1] / "assets" / "fsf"


@dataclass(frozen=True)
class HeadlessOptions:
    pool_handle: str
    sessions: int
    width: int
    height: int
    output: Path
    report: Path | None = None
    #: Raw iteration counts as a .npy file (checks against a reference computation).
    values_output: Path | None = None
    registrars: tuple[RegistrarAddress, ...] = ()
    announce: AnnounceOptions | None = None
    asap_config: AsapConfig = field(default_factory=AsapConfig)
    transport: str = AUTO
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    configs: tuple[Path, ...] = ()
    images: int = 1
    playlist: bool = False
    seed: int | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    connect_timeout: float = 5.0
    #: How long a session keeps looking for a reachable PE at its start.
    pool_timeout: float = 10.0
    csp: CspOptions | None = None
    identifier: int | None = None
    show_failovers: bool = True
    show_sessions: bool = True
    #: Only for logging where a cookie resumes (the PU needs no key to use cookies).
    cookie_sealer: CookieSealer | None = None


# --------------------------------------------------------------------------- choices


def collect_fsf(paths: Sequence[Path]) -> list[Path]:
    """Files given directly, plus the ``*.fsf`` of every directory given (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(find_fsf_files(path))
        else:
            found.append(path)
    return found


def choose_jobs(
    files: Sequence[Path], images: int, *, playlist: bool, rng: random.Random
) -> list[tuple[str | None, FractalJob]]:
    """(file name, job) per image: random like rsplib, or in order (cycling) as a playlist."""
    if not files:
        return [(None, DEFAULT_JOB)] * images
    chosen = (
        [files[i % len(files)] for i in range(images)]
        if playlist
        else [rng.choice(list(files)) for _ in range(images)]
    )
    return [(path.name, read_fsf(path)) for path in chosen]


def output_path(output: Path, index: int, images: int) -> Path:
    """``out.png`` for one image; ``out-001.png``, ``out-002.png``, ... for several."""
    if images <= 1:
        return output
    return output.with_name(f"{output.stem}-{index:03d}{output.suffix or '.png'}")


def render(
    result: ImageResult, *, show_failovers: bool = True, show_sessions: bool = True
) -> np.ndarray:
    """The RGB picture of a result with the viewer's palette shifts."""
    offsets = palette_offsets(
        result.failovers,
        run=result.index,
        session_index=result.cell_of,
        show_failovers=show_failovers,
        show_sessions=show_sessions,
    )
    return colorize(result.values, offsets, result.computed)


# --------------------------------------------------------------------------- status


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


# --------------------------------------------------------------------------- running


def cookie_describer(sealer: CookieSealer) -> Callable[[bytes], str]:
    """Where a cookie resumes, for the log (the PU needs the key only for this)."""

    def describe(cookie: bytes) -> str:
        try:
            param, x, y = decode_fgp_state(sealer.open(cookie).state)
        except (InvalidCookie, ProtocolError) as exc:
            return f"unreadable cookie ({exc})"
        return f"resumes at ({x}, {y}) of {param.width}x{param.height}"

    return describe


def asap_service(options: HeadlessOptions) -> AsapService:
    """The PU's ASAP service as the options describe it (not started yet)."""
    return AsapService(
        options.asap_config,
        registrars=options.registrars,
        announce=options.announce,
        transport=options.transport,
    )


def fractal_engine(
    options: HeadlessOptions, asap: AsapService, *, listener: Listener | None = None
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
    options: HeadlessOptions,
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


async def run_headless(options: HeadlessOptions) -> int:
    """Compute the images; 0 when every pixel of every image arrived, else 1."""
    rng = random.Random(options.seed)
    files = collect_fsf(options.configs) if options.configs else []
    if not options.configs and BUNDLED_FSF_DIR.is_dir():
        files = find_fsf_files(BUNDLED_FSF_DIR)
    try:
        jobs = choose_jobs(files, options.images, playlist=options.playlist, rng=rng)
    except FsfError as exc:
        log.error("%s", exc)
        return 2

    loop = asyncio.get_running_loop()
    asap = asap_service(options)
    status = PuStatus(options.sessions, loop.time)
    engine = fractal_engine(options, asap, listener=status.on_event)
    engine.add_listener(_log_event)
    reporter: ComponentReporter | None = None
    results: list[tuple[ImageResult, ImageInfo]] = []
    error: str | None = None
    try:
        await asap.start()
        reporter = start_status_reporter(options, asap, status, random_bits=rng.getrandbits)
        for number, (config_name, job) in enumerate(jobs, start=1):
            target = output_path(options.output, number, options.images)
            log.info(
                "image %d/%d: %s, %dx%d, %d sessions",
                number,
                options.images,
                config_name or "default parameters",
                options.width,
                options.height,
                options.sessions,
            )
            result = await engine.compute_image(
                job, options.width, options.height, options.sessions, index=number
            )
            write_png(
                target,
                render(
                    result,
                    show_failovers=options.show_failovers,
                    show_sessions=options.show_sessions,
                ),
            )
            if options.values_output is not None:
                np.save(output_path(options.values_output, number, options.images), result.values)
            results.append((result, ImageInfo(config_name, str(target))))
            _log_image(result, target)
    except (RserPoolError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error("%s", error)
    finally:
        if reporter is not None:
            await reporter.stop(final=True)
        with contextlib.suppress(Exception):
            await asap.close()
        if options.report is not None:
            write_report(
                options.report,
                build_report(
                    pool_handle=options.pool_handle,
                    sessions=options.sessions,
                    width=options.width,
                    height=options.height,
                    images=results,
                    error=error,
                ),
            )
    complete = error is None and len(results) == len(jobs) and all(r.complete for r, _ in results)
    return 0 if complete else 1


def _log_event(event: EngineEvent) -> None:
    if isinstance(event, FailoverCompleted):
        log.info(
            "cell %d: failover %s -> $%08x (%s, cookie=%s): %.1f ms from the old PE's last "
            "message to the first new pixel (%.1f ms after detection)",
            event.cell,
            "?" if event.old_pe is None else f"${event.old_pe:08x}",
            event.new_pe,
            event.reason,
            "yes" if event.had_cookie else "rejected" if event.cookie_rejected else "no",
            event.duration * 1000.0,
            (event.resumed_time - event.detected_time) * 1000.0,
        )
    elif isinstance(event, CellDone):
        stats = event.stats
        if not stats.complete:
            log.warning(
                "cell %d incomplete: %d pixels missing (%s)",
                event.cell,
                stats.missing_pixels,
                stats.error or "no error",
            )


def _log_image(result: ImageResult, target: Path) -> None:
    failovers = sum(len(c.failovers) for c in result.cells)
    twice = sum(c.pixels_computed_twice for c in result.cells)
    log.info(
        "image %d %s in %.2f s: %d failovers, %d pixels computed twice, %d missing -> %s",
        result.index,
        "completed" if result.complete else "INCOMPLETE",
        result.finished - result.started,
        failovers,
        twice,
        result.missing_pixels,
        target,
    )
