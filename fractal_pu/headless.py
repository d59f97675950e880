"""Headless fractal pool user: computes images through the pool, writes PNG and a JSON report.

No Qt here: the engine (fractal_pu.engine) does the sessions, palette.py the
colours, png.py the file; :mod:`fractal_pu.wiring` puts the pool user together.
Images are chosen from ``.fsf`` parameter files (rsplib's format): at random
per image like rsplib's viewer, or in order with ``playlist`` (a deterministic
demo). With more than one image each output gets a ``-NNN`` suffix
(``out.png`` -> ``out-001.png``, ...); with ``images = 0`` the pool user computes
one image after the other until it is stopped, and ``out.png`` is the newest.

The result is honest: the exit status is 0 only when every pixel of every
image was received (missing pixels stay grey in the PNG and are counted in
the report).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import deque
from pathlib import Path

import numpy as np

from fractal_pu.engine import (
    CellDone,
    EngineEvent,
    FailoverCompleted,
    FractalEngine,
    ImageResult,
    Listener,
)
from fractal_pu.jobs import JobSource
from fractal_pu.options import PoolUserOptions
from fractal_pu.palette import colorize, palette_offsets
from fractal_pu.png import write_png
from fractal_pu.report import ImageInfo, build_report, write_report
from fractal_pu.wiring import (
    PuStatus,
    asap_service,
    attach_live_image,
    fractal_engine,
    start_status_reporter,
)
from rsplib.errors import RserPoolError
from rsplib.session.reporting import ComponentReporter

log = logging.getLogger("fractal_pu")

#: Images kept for the report of an endless run (each holds its pixel arrays).
ENDLESS_REPORT_IMAGES = 5


def output_path(output: Path, index: int, images: int) -> Path:
    """``out.png`` for one image (or an endless run); ``out-001.png``, ... for several."""
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


async def run_headless(options: PoolUserOptions, *, stop: asyncio.Event | None = None) -> int:
    """Compute the images; 0 when every pixel of every image arrived, else 1.

    Setting ``stop`` ends the run after the current image (cancelling it ends it at once).
    """
    assert options.output is not None  # checked with the options
    jobs = JobSource.from_paths(options.configs, playlist=options.playlist, seed=options.seed)
    loop = asyncio.get_running_loop()
    asap = asap_service(options)
    status = PuStatus(options.sessions, loop.time)
    engine = fractal_engine(options, asap, listener=status.on_event)
    engine.add_listener(event_logger(options))
    live_task = attach_live_image(options, engine)
    reporter: ComponentReporter | None = None
    endless = options.images == 0
    results: deque[tuple[ImageResult, ImageInfo]] = deque(
        maxlen=ENDLESS_REPORT_IMAGES if endless else None
    )
    error: str | None = None
    try:
        # The reporter first: it fixes the PU's component id, which the trace carries too.
        reporter = start_status_reporter(options, asap, status, random_bits=random.getrandbits)
        await asap.start()
        numbers = itertools.count(1) if endless else range(1, options.images + 1)
        for number in numbers:
            if number > 1 and options.pause > 0:
                await asyncio.sleep(options.pause)
            if stop is not None and stop.is_set():
                log.info("stopped by signal before the images were complete")
                break
            result, info = await _one_image(engine, options, jobs, number)
            results.append((result, info))
            if options.report is not None:
                # After every image, so a watcher sees the progress (final again at the end).
                _write_report(options, results, None, in_progress=True)
    except (RserPoolError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error("%s", error)
    finally:
        if live_task is not None:
            live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live_task
        if reporter is not None:
            await reporter.stop(final=True)
        with contextlib.suppress(Exception):
            await asap.close()
        if options.report is not None:
            _write_report(options, results, error)
    complete = (
        error is None and len(results) == options.images and all(r.complete for r, _ in results)
    )
    return 0 if complete else 1


async def _one_image(
    engine: FractalEngine, options: PoolUserOptions, jobs: JobSource, number: int
) -> tuple[ImageResult, ImageInfo]:
    assert options.output is not None
    config_name, job = jobs.next()
    target = output_path(options.output, number, options.images)
    log.info(
        "image %d%s: %s, %dx%d, %d sessions",
        number,
        f"/{options.images}" if options.images else "",
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
        render(result, show_failovers=options.show_failovers, show_sessions=options.show_sessions),
    )
    if options.values_output is not None:
        np.save(output_path(options.values_output, number, options.images), result.values)
    _log_image(result, target)
    return result, ImageInfo(config_name, str(target))


def _write_report(
    options: PoolUserOptions,
    results: deque[tuple[ImageResult, ImageInfo]],
    error: str | None,
    *,
    in_progress: bool = False,
) -> None:
    assert options.report is not None
    write_report(
        options.report,
        build_report(
            pool_handle=options.pool_handle,
            sessions=options.sessions,
            width=options.width,
            height=options.height,
            images=list(results),
            error=error,
            in_progress=in_progress,
        ),
    )


def event_logger(options: PoolUserOptions) -> Listener:
    """Logs failovers (PEs by their ``--pe-name``) and incomplete cells."""
    return lambda event: _log_event(event, options)


def _log_event(event: EngineEvent, options: PoolUserOptions) -> None:
    if isinstance(event, FailoverCompleted):
        log.info(
            "cell %d: failover %s -> %s (%s, cookie=%s): %.1f ms from the old PE's last "
            "message to the first new pixel (%.1f ms after detection)",
            event.cell,
            options.pe_label(event.old_pe),
            options.pe_label(event.new_pe),
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
