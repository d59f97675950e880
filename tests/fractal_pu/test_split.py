"""Image split exactly as rsplib's PU does it, the covering variant, and sub-parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fractal_pe.fgp import Algorithm
from fractal_pe.kernel import compute_rows
from fractal_pu.fsf import FractalJob
from fractal_pu.split import (
    Rect,
    pixels_outside,
    split_image,
    split_image_covering,
    sub_parameters,
    uncovered_pixels,
)

MENU = [1, 2, 3, 4, 6, 8, 9, 16, 25, 36, 49, 64, 81, 100, 144, 225, 256, 400]


def test_one_session_is_the_whole_image() -> None:
    assert split_image(400, 250, 1) == [Rect(0, 0, 400, 250)]


def test_five_sessions_two_rows_of_two_then_three() -> None:
    # rows = 2, rowHeight = round(250/2) = 125; row 0: 2 cols of 200; row 1 gets 3 of 133.
    assert split_image(400, 250, 5) == [
        Rect(0, 0, 200, 125),
        Rect(200, 0, 200, 125),
        Rect(0, 125, 133, 125),
        Rect(133, 125, 133, 125),
        Rect(266, 125, 133, 125),
    ]
    assert uncovered_pixels(400, 250, split_image(400, 250, 5)) == 125  # column 399 of row 1


def test_three_sessions_one_row() -> None:
    assert split_image(100, 64, 3) == [Rect(0, 0, 33, 64), Rect(33, 0, 33, 64), Rect(66, 0, 33, 64)]


def test_row_height_rounds_half_up_and_can_overshoot() -> None:
    # 251 / 2 = 125.5 -> 126: the second row reaches row 251, one past the image.
    rects = split_image(64, 251, 4)
    assert {r.h for r in rects} == {126}
    assert pixels_outside(64, 251, rects) == 64
    assert uncovered_pixels(64, 251, rects) == 0
    # 249 / 2 = 124.5 -> 125 (not banker's 124)
    assert split_image(64, 249, 4)[0].h == 125


def test_last_row_takes_all_remaining_sessions() -> None:
    # 8 sessions: rows = 2, row 0 gets 2, row 1 gets 6.
    rects = split_image(600, 400, 8)
    assert [r.y for r in rects] == [0, 0] + [200] * 6
    assert [r.w for r in rects] == [300, 300] + [100] * 6


@pytest.mark.parametrize("sessions", MENU)
def test_menu_counts_give_that_many_rectangles(sessions: int) -> None:
    assert len(split_image(400, 250, sessions)) == sessions
    assert len(split_image_covering(400, 250, sessions)) == sessions


def covered_counts(width: int, height: int, rects: list[Rect]) -> np.ndarray:
    counts = np.zeros((height, width), dtype=np.int32)
    for r in rects:
        counts[r.y : r.y + r.h, r.x : r.x + r.w] += 1
    return counts


@given(st.integers(64, 700), st.integers(64, 500), st.integers(1, 512))
def test_covering_split_covers_every_pixel_once(width: int, height: int, sessions: int) -> None:
    rects = split_image_covering(width, height, sessions)
    assert len(rects) == sessions
    assert all(r.w > 0 and r.h > 0 for r in rects)
    assert np.all(covered_counts(width, height, rects) == 1)
    assert uncovered_pixels(width, height, rects) == 0
    assert pixels_outside(width, height, rects) == 0


@given(st.integers(64, 700), st.integers(64, 500), st.integers(1, 512))
def test_rsplib_split_never_overlaps_and_reports_gaps(
    width: int, height: int, sessions: int
) -> None:
    rects = split_image(width, height, sessions)
    counts = covered_counts(width, height, rects)
    assert counts.max() <= 1
    assert uncovered_pixels(width, height, rects) == int(np.count_nonzero(counts == 0))
    inside = sum(int(c) for c in counts.ravel())
    assert pixels_outside(width, height, rects) == sum(r.area for r in rects) - inside


def test_covering_keeps_rsplibs_grid_except_at_the_edges() -> None:
    exact = split_image(400, 250, 5)
    covering = split_image_covering(400, 250, 5)
    assert covering[:4] == exact[:4]
    assert covering[4] == Rect(266, 125, 134, 125)


def test_covering_when_rounding_up_leaves_no_last_row() -> None:
    # 70 / 20 rows = 3.5 -> 4, and 19 * 4 = 76 > 70: rsplib's last row starts below the image.
    assert split_image(400, 70, 400)[-1].y == 76
    rects = split_image_covering(400, 70, 400)
    assert np.all(covered_counts(400, 70, rects) == 1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        split_image(100, 100, 0)
    with pytest.raises(ValueError):
        split_image(-1, 100, 1)
    with pytest.raises(ValueError):
        split_image_covering(10, 100, 400)  # 20 columns in 10 pixels


JOB = FractalJob(Algorithm.MANDELBROT, -1.5, 1.5, 1.5, -1.5, 2.0, 200)


def test_sub_parameters_follow_rsplib_formula() -> None:
    param = sub_parameters(JOB, Rect(100, 50, 200, 100), 400, 250)
    assert (param.width, param.height) == (200, 100)
    assert (param.max_iterations, param.algorithm, param.n) == (200, Algorithm.MANDELBROT, 2.0)
    assert param.c1_real == -1.5 + 100 * 3.0 / 400
    assert param.c1_imag == 1.5 + 50 * -3.0 / 250
    assert param.c2_real == -1.5 + 300 * 3.0 / 400
    assert param.c2_imag == 1.5 + 150 * -3.0 / 250
    with pytest.raises(ValueError):
        sub_parameters(JOB, Rect(0, 0, 1, 1), 0, 250)


def test_sessions_together_draw_the_whole_picture() -> None:
    """Pixels computed per session land where the whole-image computation puts them.

    Equal only up to rounding of the corner coordinates, so compare the share of
    identical pixels rather than demanding all.
    """
    width, height = 120, 75
    whole = compute_rows(sub_parameters(JOB, Rect(0, 0, width, height), width, height), 0, height)
    assembled = np.full((height, width), -1, dtype=np.int64)
    for rect in split_image_covering(width, height, 9):
        part = sub_parameters(JOB, rect, width, height)
        assembled[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = compute_rows(
            part, 0, part.height
        )
    assert assembled.min() >= 0
    assert np.mean(assembled == whole) > 0.97
