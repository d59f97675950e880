"""Splitting one image into per-session rectangles, and each rectangle's FGP job.

``split_image`` reproduces rsplib's fractal pool user exactly:

* rows = floor(sqrt(S)); row height = round(H / rows) (float division, halves up);
* every row but the last gets min(remaining, rows) sessions, the last row all
  that remain; each row's column width = W // cols (integer division).

So rsplib can leave pixels uncovered at the right and bottom edges (integer
widths, rounded-down heights), and a rounded-up row height can push the last
row past the bottom (those pixels are computed but never shown).
``split_image_covering`` keeps the same grid but gives the last column of each
row and the last row the leftover pixels, so every pixel is computed exactly
once. Our PU uses the covering split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fractal_pe.fgp import FgpParameter
from fractal_pu.fsf import FractalJob


@dataclass(frozen=True, slots=True)
class Rect:
    """A pixel rectangle of the image: columns x .. x+w-1, rows y .. y+h-1."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h


def _check(width: int, height: int, sessions: int) -> None:
    if width < 0 or height < 0:
        raise ValueError(f"negative image size {width}x{height}")
    if sessions < 1:
        raise ValueError(f"need at least one session, got {sessions}")


def _row_layout(sessions: int) -> list[int]:
    """Sessions per row, top to bottom, as rsplib distributes them."""
    rows = math.isqrt(sessions)
    remaining = sessions
    layout = []
    for row in range(rows):
        cols = remaining if row == rows - 1 else min(remaining, rows)
        layout.append(cols)
        remaining -= cols
    return layout


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def split_image(width: int, height: int, sessions: int) -> list[Rect]:
    """rsplib's split, rectangles in session order (row by row, left to right)."""
    _check(width, height, sessions)
    layout = _row_layout(sessions)
    row_height = _round_half_up(height / len(layout))
    rects: list[Rect] = []
    for row, cols in enumerate(layout):
        col_width = width // cols
        rects.extend(
            Rect(col * col_width, row * row_height, col_width, row_height) for col in range(cols)
        )
    return rects


def split_image_covering(width: int, height: int, sessions: int) -> list[Rect]:
    """rsplib's grid, with the leftover pixels given to the last column/row.

    Every pixel lies in exactly one rectangle. Raises ValueError when the image
    is too small for the grid (fewer pixels per row or column than sessions).
    """
    _check(width, height, sessions)
    layout = _row_layout(sessions)
    rows = len(layout)
    if height < rows or width < max(layout):
        raise ValueError(f"a {width}x{height} image is too small for {sessions} sessions")
    row_height = _round_half_up(height / rows)
    if row_height * (rows - 1) >= height:
        # Rounding up would leave nothing for the last row; fall back to rounding down.
        row_height = height // rows
    rects: list[Rect] = []
    for row, cols in enumerate(layout):
        y = row * row_height
        h = height - y if row == rows - 1 else row_height
        col_width = width // cols
        for col in range(cols):
            x = col * col_width
            w = width - x if col == cols - 1 else col_width
            rects.append(Rect(x, y, w, h))
    return rects


def _clipped_area(rect: Rect, width: int, height: int) -> int:
    w = max(0, min(rect.x + rect.w, width) - max(rect.x, 0))
    h = max(0, min(rect.y + rect.h, height) - max(rect.y, 0))
    return w * h


def uncovered_pixels(width: int, height: int, rects: list[Rect]) -> int:
    """Image pixels in no rectangle (rectangles of both splits never overlap)."""
    return width * height - sum(_clipped_area(r, width, height) for r in rects)


def pixels_outside(width: int, height: int, rects: list[Rect]) -> int:
    """Rectangle pixels that fall outside the image (computed, never shown)."""
    return sum(r.area - _clipped_area(r, width, height) for r in rects)


def sub_parameters(job: FractalJob, rect: Rect, width: int, height: int) -> FgpParameter:
    """The FGP Parameter message for one session's rectangle of a width x height image.

    C1' = C1 + (x*(C2R-C1R)/W, y*(C2I-C1I)/H), C2' = C1 + ((x+w)*.../W, (y+h)*.../H),
    as rsplib computes them; N, MaxIterations and the algorithm are the job's.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} must be positive")
    span_real = job.c2_real - job.c1_real
    span_imag = job.c2_imag - job.c1_imag
    return FgpParameter(
        width=rect.w,
        height=rect.h,
        max_iterations=job.max_iterations,
        algorithm=int(job.algorithm),
        c1_real=job.c1_real + rect.x * span_real / width,
        c1_imag=job.c1_imag + rect.y * span_imag / height,
        c2_real=job.c1_real + (rect.x + rect.w) * span_real / width,
        c2_imag=job.c1_imag + (rect.y + rect.h) * span_imag / height,
        n=job.n,
    )
