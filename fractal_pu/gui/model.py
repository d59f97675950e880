"""What the viewer shows, built from the worker's messages (no Qt here).

:class:`ViewerModel` applies :mod:`fractal_pu.gui.runner` messages in the GUI
thread and keeps, for the image being computed:

* per pixel: iteration count, "computed", failovers of its cell when it
  arrived (palette shift), cell, PE colour slot, "computed more than once";
* two RGB pictures updated block by block: the fractal in rsplib's palette
  (with the pastel pre-fill of unfinished cells) and the PE identity overlay;
* per cell: current PE, PEs used, failovers, last failover time, pixels per
  PE, pixels computed twice, resume points, time;
* the legend (PE -> colour, address) and the registrar state.

Times are the caller's ``now`` (monotonic seconds), except the image and cell
times measured by the engine itself, which are taken from its statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fractal_pu.engine import (
    CellConnected,
    CellDone,
    CellRestarted,
    EngineEvent,
    FailoverCompleted,
    FailoverStarted,
    ImageDone,
    ImageResult,
    ImageStarted,
    PixelsArrived,
    PoolElementUsed,
)
from fractal_pu.fsf import FractalJob
from fractal_pu.gui.overlay import Legend, pe_text, tint_block
from fractal_pu.gui.runner import ImageFailed, JobChosen, RegistrarState, RunnerMessage, Tagged
from fractal_pu.palette import (
    BACKGROUND_RGB,
    colorize,
    hatch_pixels,
    hsv_to_rgb,
    palette_offsets,
)
from fractal_pu.split import Rect

#: A cell without a PE for this long counts as "no PE reachable" in the status bar.
NO_PE_GRACE = 1.5


def prefill_colour(cell: int) -> tuple[int, int, int]:
    """rsplib's pastel pre-fill of cell ``cell``: HSV(((5i mod 72) * 5) mod 256, 100, 255)."""
    return hsv_to_rgb(((5 * cell % 72) * 5) % 256, 100, 255)


@dataclass
class CellView:
    index: int
    rect: Rect
    started: float
    current_pe: int | None = None
    pes_used: list[int] = field(default_factory=list)
    failovers: int = 0
    last_failover_ms: float | None = None
    in_failover: bool = False
    #: Since when the cell has had no PE (None while it has one).
    waiting_since: float | None = None
    restarts: int = 0
    pixels_per_pe: dict[int, int] = field(default_factory=dict)
    #: Distinct pixels received.
    received: int = 0
    twice: int = 0
    #: Where the cell resumed after each failover: image (x, y) and the new PE.
    resume_points: list[tuple[int, int, int]] = field(default_factory=list)
    awaiting_resume: bool = False
    done: bool = False
    complete: bool = False
    error: str | None = None
    #: Engine-measured seconds from the cell's start to its end.
    elapsed: float | None = None

    @property
    def progress(self) -> float:
        return self.received / self.rect.area if self.rect.area else 1.0

    def use_pe(self, pe_id: int) -> None:
        self.current_pe = pe_id
        self.waiting_since = None
        if not self.pes_used or self.pes_used[-1] != pe_id:
            self.pes_used.append(pe_id)


class ImageView:
    """Buffers and cells of one image."""

    def __init__(
        self,
        generation: int,
        run: int,
        width: int,
        height: int,
        rects: tuple[Rect, ...],
        now: float,
        *,
        config_name: str | None = None,
        job: FractalJob | None = None,
    ) -> None:
        self.generation = generation
        self.run = run
        self.width = width
        self.height = height
        self.rects = rects
        self.config_name = config_name
        self.job = job
        self.values = np.zeros((height, width), dtype=np.uint32)
        self.computed = np.zeros((height, width), dtype=bool)
        self.failovers = np.zeros((height, width), dtype=np.uint16)
        self.cell_of = np.zeros((height, width), dtype=np.uint16)
        self.pe_slot = np.full((height, width), -1, dtype=np.int16)
        self.twice = np.zeros((height, width), dtype=bool)
        self.base = np.empty((height, width, 3), dtype=np.uint8)
        self.overlay = np.empty((height, width, 3), dtype=np.uint8)
        for i, r in enumerate(rects):
            self.cell_of[r.y : r.y + r.h, r.x : r.x + r.w] = i
        self.cells = [CellView(i, r, now, waiting_since=now) for i, r in enumerate(rects)]
        self.started = now
        self.finished: float | None = None
        self.result: ImageResult | None = None
        self.error: str | None = None
        self.packets = 0
        self.last_pe: int | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def complete(self) -> bool:
        return self.done and self.error is None and bool(self.computed.all())

    @property
    def received(self) -> int:
        return sum(c.received for c in self.cells)

    @property
    def progress(self) -> float:
        total = self.width * self.height
        return self.received / total if total else 1.0

    def elapsed(self, now: float) -> float:
        """Image time: the engine's measurement when done, else since the start."""
        if self.result is not None:
            return self.result.finished - self.result.started
        return (self.finished if self.finished is not None else now) - self.started

    @property
    def failover_count(self) -> int:
        return sum(c.failovers for c in self.cells)

    @property
    def twice_count(self) -> int:
        return sum(c.twice for c in self.cells)

    def pixels_per_pe(self) -> dict[int, int]:
        total: dict[int, int] = {}
        for cell in self.cells:
            for pe, n in cell.pixels_per_pe.items():
                total[pe] = total.get(pe, 0) + n
        return total


class ViewerModel:
    def __init__(
        self,
        *,
        show_failovers: bool = True,
        show_sessions: bool = True,
        pe_names: Mapping[int, str] | None = None,
    ) -> None:
        self.show_failovers = show_failovers
        self.show_sessions = show_sessions
        self.legend = Legend(pe_names)
        self.image: ImageView | None = None
        self.registrar: RegistrarState | None = None
        #: The image request whose messages count; everything else is stale.
        self.generation = -1
        self._job: JobChosen | None = None
        #: Failover times of the current image in the order they completed (ms).
        self.failover_times: list[float] = []

    def pe_name(self, pe_id: int | None) -> str:
        """A PE's ``--pe-name``, else its identifier as rsplib prints it."""
        return pe_text(pe_id, self.legend.names)

    # ------------------------------------------------------------------ requests

    @property
    def last_failover_ms(self) -> float | None:
        """The failover of the current image that completed last (fault -> first pixel)."""
        return self.failover_times[-1] if self.failover_times else None

    def expect(self, generation: int) -> None:
        """A new image was requested; messages of older requests are dropped from now on."""
        self.generation = generation
        self._job = None

    # ------------------------------------------------------------------ messages

    def apply(self, message: RunnerMessage, now: float) -> None:
        if isinstance(message, RegistrarState):
            self.registrar = message
        elif isinstance(message, JobChosen):
            if message.generation == self.generation:
                self._job = message
        elif isinstance(message, ImageFailed):
            if message.generation == self.generation and self.image is not None:
                self.image.error = message.error
                self.image.finished = now
        elif isinstance(message, Tagged) and message.generation == self.generation:
            self._apply_event(message.generation, message.event, now)

    def _apply_event(self, generation: int, event: EngineEvent, now: float) -> None:
        if isinstance(event, ImageStarted):
            job = self._job
            self.image = ImageView(
                generation,
                event.index,
                event.width,
                event.height,
                event.rects,
                now,
                config_name=job.config_name if job is not None else None,
                job=job.job if job is not None else None,
            )
            self.legend.new_image()
            self.failover_times = []
            self._paint_all()
            return
        image = self.image
        if image is None or image.generation != generation:
            return
        if isinstance(event, PixelsArrived):
            self._pixels(image, event)
            return
        if isinstance(event, ImageDone):
            image.result = event.result
            image.finished = now
            return
        cell = image.cells[event.cell]
        if isinstance(event, PoolElementUsed):
            self.legend.note_address(event.pe_id, event.addresses, event.port)
            self.legend.entry(event.pe_id).cells.add(event.cell)
            cell.use_pe(event.pe_id)
        elif isinstance(event, CellConnected):
            self.legend.entry(event.pe_id).cells.add(event.cell)
            cell.use_pe(event.pe_id)
        elif isinstance(event, FailoverStarted):
            cell.failovers += 1
            cell.in_failover = True
            cell.current_pe = None
            cell.waiting_since = now
        elif isinstance(event, FailoverCompleted):
            cell.in_failover = False
            ms = event.duration * 1000.0
            cell.last_failover_ms = ms
            self.failover_times.append(ms)
            cell.awaiting_resume = True
            self.legend.entry(event.new_pe).cells.add(event.cell)
            cell.use_pe(event.new_pe)
        elif isinstance(event, CellRestarted):
            cell.restarts += 1
        elif isinstance(event, CellDone):
            cell.done = True
            cell.complete = event.stats.complete
            cell.error = event.stats.error
            if event.stats.finished is not None:
                cell.elapsed = event.stats.finished - event.stats.started

    def _pixels(self, image: ImageView, event: PixelsArrived) -> None:
        cell = image.cells[event.cell]
        rect = cell.rect
        count = len(event.values)
        start = event.y * rect.w + event.x
        index = np.arange(start, start + count)
        ys = rect.y + index // rect.w
        xs = rect.x + index % rect.w
        already = image.computed[ys, xs]
        repeated = int(np.count_nonzero(already))
        image.twice[ys, xs] |= already
        image.values[ys, xs] = event.values
        image.computed[ys, xs] = True
        image.failovers[ys, xs] = min(event.failovers, 0xFFFF)
        entry = self.legend.entry(event.pe_id)
        entry.cells.add(event.cell)
        entry.pixels += count
        image.pe_slot[ys, xs] = entry.slot
        cell.received += count - repeated
        cell.twice += repeated
        cell.pixels_per_pe[event.pe_id] = cell.pixels_per_pe.get(event.pe_id, 0) + count
        if cell.current_pe is None:
            cell.use_pe(event.pe_id)
        if cell.awaiting_resume:
            cell.awaiting_resume = False
            cell.resume_points.append((int(xs[0]), int(ys[0]), event.pe_id))
        image.packets += 1
        image.last_pe = event.pe_id
        self._paint(image, ys, xs)

    # ------------------------------------------------------------------ pictures

    def offsets(
        self, image: ImageView, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.int64]:
        return palette_offsets(
            image.failovers[ys, xs],
            run=image.run,
            session_index=image.cell_of[ys, xs],
            show_failovers=self.show_failovers,
            show_sessions=self.show_sessions,
        )

    def _paint(self, image: ImageView, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> None:
        computed = image.computed[ys, xs]
        base = colorize(image.values[ys, xs], self.offsets(image, ys, xs), computed)
        if not computed.all():
            base[~computed] = self._prefill(image)[image.cell_of[ys, xs][~computed]]
        # Recomputed pixels are hatched in the plain picture too, not only in the overlay.
        image.base[ys, xs] = hatch_pixels(base, image.twice[ys, xs], xs, ys)
        slots = image.pe_slot[ys, xs]
        tinted = tint_block(
            base, self.legend.colour_table()[np.maximum(slots, 0)], image.twice[ys, xs], xs, ys
        )
        tinted[~computed] = base[~computed]
        image.overlay[ys, xs] = tinted

    def _prefill(self, image: ImageView) -> npt.NDArray[np.uint8]:
        """Pre-fill colour per cell: rsplib's pastel tints with several cells and colour marks."""
        if len(image.rects) > 1 and self.show_failovers:
            colours = [prefill_colour(i) for i in range(len(image.rects))]
        else:
            colours = [BACKGROUND_RGB] * len(image.rects)
        return np.array(colours, dtype=np.uint8)

    def _paint_all(self) -> None:
        image = self.image
        if image is None:
            return
        ys, xs = np.indices((image.height, image.width))
        self._paint(image, ys.ravel(), xs.ravel())

    def set_colouring(self, *, show_failovers: bool, show_sessions: bool) -> None:
        """rsplib's two palette options; repaints the whole image."""
        self.show_failovers = show_failovers
        self.show_sessions = show_sessions
        self._paint_all()

    # ------------------------------------------------------------------ status texts

    def current_pes(self) -> list[int]:
        """PEs of the cells still computing (all PEs used once the image is done)."""
        image = self.image
        if image is None:
            return []
        cells = [c for c in image.cells if not c.done] or image.cells
        seen: list[int] = []
        for cell in cells:
            pes = [cell.current_pe] if not image.done else cell.pes_used
            for pe in pes:
                if pe is not None and pe not in seen:
                    seen.append(pe)
        return seen

    def registrar_text(self) -> str:
        state = self.registrar
        if state is None or state.address is None:
            return "No registrar: looking for one ..."
        server = f" (${state.server_id:08x})" if state.server_id else ""
        return f"Registrar {state.address}{server}"

    def problem(self, now: float, pool_handle: str) -> str | None:
        """A clear sentence when nothing can progress, else None."""
        state = self.registrar
        if state is not None and state.address is None:
            detail = f": {state.problem}" if state.problem else ""
            return f"No registrar reachable{detail} -- looking for a registrar ..."
        image = self.image
        if image is None or image.done:
            return None
        waiting = [
            c
            for c in image.cells
            if not c.done and c.waiting_since is not None and now - c.waiting_since >= NO_PE_GRACE
        ]
        if waiting and len(waiting) == sum(1 for c in image.cells if not c.done):
            return (
                f"No pool element of pool '{pool_handle}' reachable -- "
                f"{len(waiting)} session(s) waiting for one ..."
            )
        return None

    def session_text(self) -> str:
        """rsplib's per-packet status (one session), else its generic session count."""
        image = self.image
        if image is None:
            return "requesting calculation ..."
        if len(image.cells) == 1:
            if image.last_pe is None:
                return "requesting calculation ..."
            return f"Processed packet #{image.packets} of PE {self.pe_name(image.last_pe)}"
        if image.done:
            return f"{len(image.cells)} sessions"
        return (
            "waiting for job completion ..." if image.packets else "starting job distribution ..."
        )
