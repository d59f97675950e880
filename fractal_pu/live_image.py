"""The image in progress as a PNG file, for whoever shows the pool user's work elsewhere.

The control center runs pool users headless and shows their picture in its own
window: the pool user keeps ``--live-image FILE.png`` up to date, and the
control center reads it whenever the file changes. :class:`LiveImage` follows
the engine's events (so it sees exactly what the pool user received), and
:meth:`LiveImage.write_if_changed` writes a new PNG only when pixels arrived
since the last one. Each write goes to a temporary file first and is renamed
into place, so a reader never sees half a PNG.

What the picture shows: the fractal with the pool user's palette shifts, cells
not computed yet in grey, and pixels computed twice (work lost in a failover)
hatched.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fractal_pu.engine import EngineEvent, ImageStarted, PixelsArrived
from fractal_pu.palette import colorize, hatch, palette_offsets
from fractal_pu.png import encode_png
from fractal_pu.split import Rect

log = logging.getLogger("fractal_pu")

#: How often the live image is rewritten when pixels arrived (seconds).
LIVE_IMAGE_INTERVAL_S = 0.25


class LiveImage:
    """Pixels of the current image, from engine events; written to ``path`` on request."""

    def __init__(self, path: Path, *, show_failovers: bool = True, show_sessions: bool = True):
        self.path = path
        self.show_failovers = show_failovers
        self.show_sessions = show_sessions
        self.index = 0
        self.rects: tuple[Rect, ...] = ()
        self.values: npt.NDArray[np.uint32] = np.zeros((1, 1), dtype=np.uint32)
        self.computed: npt.NDArray[np.bool_] = np.zeros((1, 1), dtype=bool)
        self.twice: npt.NDArray[np.bool_] = np.zeros((1, 1), dtype=bool)
        self.failovers: npt.NDArray[np.uint16] = np.zeros((1, 1), dtype=np.uint16)
        self.cell_of: npt.NDArray[np.uint16] = np.zeros((1, 1), dtype=np.uint16)
        self.changed = False
        self.writes = 0

    def on_event(self, event: EngineEvent) -> None:
        if isinstance(event, ImageStarted):
            self._start(event)
        elif isinstance(event, PixelsArrived) and event.cell < len(self.rects):
            self._pixels(event)

    def _start(self, event: ImageStarted) -> None:
        shape = (event.height, event.width)
        self.index = event.index
        self.rects = event.rects
        self.values = np.zeros(shape, dtype=np.uint32)
        self.computed = np.zeros(shape, dtype=bool)
        self.twice = np.zeros(shape, dtype=bool)
        self.failovers = np.zeros(shape, dtype=np.uint16)
        self.cell_of = np.zeros(shape, dtype=np.uint16)
        for i, rect in enumerate(event.rects):
            self.cell_of[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = i
        self.changed = True

    def _pixels(self, event: PixelsArrived) -> None:
        rect = self.rects[event.cell]
        start = event.y * rect.w + event.x
        index = np.arange(start, start + len(event.values))
        index = index[index < rect.w * rect.h]  # the engine validated this; stay safe anyway
        ys = rect.y + index // rect.w
        xs = rect.x + index % rect.w
        self.twice[ys, xs] |= self.computed[ys, xs]
        self.values[ys, xs] = event.values[: len(index)]
        self.computed[ys, xs] = True
        self.failovers[ys, xs] = min(event.failovers, 0xFFFF)
        self.changed = True

    def picture(self) -> npt.NDArray[np.uint8]:
        """The RGB picture (H x W x 3) as it stands."""
        offsets = palette_offsets(
            self.failovers,
            run=self.index,
            session_index=self.cell_of,
            show_failovers=self.show_failovers,
            show_sessions=self.show_sessions,
        )
        return hatch(colorize(self.values, offsets, self.computed), self.twice)

    def write_if_changed(self) -> bool:
        """Write the PNG if pixels arrived since the last write; True when written."""
        if not self.changed or not self.rects:
            return False
        self.changed = False
        data = encode_png(self.picture(), level=1)
        partial = self.path.with_name(f".{self.path.name}.part")
        partial.write_bytes(data)
        os.replace(partial, self.path)
        self.writes += 1
        return True


async def keep_writing(live: LiveImage, interval: float = LIVE_IMAGE_INTERVAL_S) -> None:
    """Rewrite ``live`` every ``interval`` seconds while pixels arrive; runs until cancelled."""
    while True:
        try:
            live.write_if_changed()
        except OSError as exc:  # a full disk must not stop the computation
            log.warning("cannot write the live image %s: %s", live.path, exc)
        await asyncio.sleep(interval)
