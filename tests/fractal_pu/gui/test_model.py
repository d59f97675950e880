"""The viewer's Qt-free parts: model, legend, job choice and options, with made-up events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fractal_pe.fgp import Algorithm
from fractal_pu.engine import (
    FailoverCompleted,
    FailoverStarted,
    ImageStarted,
    PixelsArrived,
    PoolElementUsed,
)
from fractal_pu.fsf import FractalJob, write_fsf
from fractal_pu.gui.model import ViewerModel, prefill_colour
from fractal_pu.gui.options import storage_path, viewer_options
from fractal_pu.gui.overlay import PE_COLOURS, tint_block
from fractal_pu.gui.runner import RegistrarState, Tagged
from fractal_pu.jobs import JobSource
from fractal_pu.options import build_parser
from fractal_pu.palette import BACKGROUND_RGB, colorize, palette_offsets
from fractal_pu.split import split_image_covering

WIDTH, HEIGHT = 8, 4


def started(model: ViewerModel, generation: int, sessions: int = 2, run: int = 1) -> None:
    model.expect(generation)
    rects = tuple(split_image_covering(WIDTH, HEIGHT, sessions))
    model.apply(Tagged(generation, ImageStarted(run, WIDTH, HEIGHT, rects)), now=0.0)


def pixels(cell: int, x: int, y: int, values: list[int], pe: int, failovers: int = 0) -> Tagged:
    return Tagged(1, PixelsArrived(cell, x, y, np.array(values, dtype=np.uint32), pe, failovers))


def test_blocks_paint_the_palette_and_the_prefill_elsewhere() -> None:
    model = ViewerModel()
    started(model, 1)
    image = model.image
    assert image is not None
    assert tuple(image.base[0, 0]) == prefill_colour(0)
    assert tuple(image.base[0, WIDTH - 1]) == prefill_colour(1)
    model.apply(Tagged(1, PoolElementUsed(1, 0xA1, ("127.0.0.1",), 4000)), now=0.1)
    model.apply(pixels(1, 0, 0, [5, 6, 7, 8, 9, 10], pe=0xA1), now=0.2)
    # Cell 1 is columns 4..7: six values fill row 0 and half of row 1.
    ys = np.array([0, 0, 0, 0, 1, 1])
    xs = np.array([4, 5, 6, 7, 4, 5])
    expected = colorize(
        np.array([5, 6, 7, 8, 9, 10]),
        palette_offsets(np.zeros(6, dtype=np.uint16), run=1, session_index=np.ones(6, dtype=int)),
    )
    assert np.array_equal(image.base[ys, xs], expected)
    assert tuple(image.base[1, 6]) == prefill_colour(1)
    assert image.cells[1].received == 6 and image.cells[1].pixels_per_pe == {0xA1: 6}
    assert image.progress == pytest.approx(6 / 32)
    entry = model.legend.entry(0xA1)
    assert entry.location == "127.0.0.1 port 4000" and entry.pixels == 6
    assert set(image.pe_slot[ys, xs].tolist()) == {entry.slot}
    # The overlay: each pixel tinted with its PE's colour; unfinished pixels as they are.
    colour = np.array([PE_COLOURS[entry.slot]], dtype=np.uint8)
    no_twice = np.zeros(6, dtype=bool)
    assert np.array_equal(image.overlay[ys, xs], tint_block(expected, colour, no_twice, xs, ys))
    assert np.array_equal(image.overlay[2:, :], image.base[2:, :])


def test_the_same_fractal_colour_from_two_pes_looks_different_in_the_overlay() -> None:
    model = ViewerModel(show_sessions=False)
    started(model, 1)
    model.apply(pixels(0, 0, 0, [7, 7], pe=0xA1), now=0.1)
    model.apply(pixels(1, 0, 0, [7, 7], pe=0xA2), now=0.1)
    image = model.image
    assert image is not None
    assert np.array_equal(image.base[0, 0], image.base[0, 4])
    assert not np.array_equal(image.overlay[0, 0], image.overlay[0, 4])


def test_one_session_without_colour_marks_prefills_grey() -> None:
    model = ViewerModel(show_failovers=False)
    started(model, 1)
    image = model.image
    assert image is not None
    assert tuple(image.base[0, 0]) == BACKGROUND_RGB


def test_failover_marks_the_resume_point_and_counts_recomputed_pixels() -> None:
    model = ViewerModel()
    started(model, 1)
    model.apply(pixels(0, 0, 0, [1] * 6, pe=0xA1), now=0.1)
    model.apply(Tagged(1, FailoverStarted(0, 0xA1, 10.0, "connection lost")), now=0.2)
    image = model.image
    assert image is not None
    cell = image.cells[0]
    assert cell.failovers == 1 and cell.in_failover and cell.current_pe is None
    model.apply(Tagged(1, FailoverCompleted(0, 0xA1, 0xA2, True, None, 10.0, 10.0425)), now=0.3)
    # The new PE resumes at the cookie's (0, 1): pixels 4 and 5 come a second time.
    model.apply(pixels(0, 0, 1, [1, 1, 1, 1], pe=0xA2, failovers=1), now=0.4)
    assert cell.last_failover_ms == pytest.approx(42.5)
    assert model.last_failover_ms == pytest.approx(42.5)
    assert cell.resume_points == [(0, 1, 0xA2)]
    assert cell.pes_used == [0xA1, 0xA2] and cell.current_pe == 0xA2
    assert cell.twice == 2 and image.twice_count == 2
    assert cell.received == 8  # distinct pixels of the 4x4 cell so far
    assert image.twice[1, 0:2].all() and not image.twice[1, 2:4].any()
    assert image.failovers[1, 0] == 1 and image.failovers[0, 0] == 0
    assert cell.pixels_per_pe == {0xA1: 6, 0xA2: 4}


def test_messages_of_an_abandoned_image_are_dropped() -> None:
    model = ViewerModel()
    started(model, 1)
    model.expect(2)
    model.apply(pixels(0, 0, 0, [3, 3], pe=0xA1), now=0.1)
    image = model.image
    assert image is not None and image.generation == 1
    assert image.received == 0


def test_pe_colours_stay_the_same_from_image_to_image() -> None:
    model = ViewerModel()
    started(model, 1)
    model.apply(pixels(0, 0, 0, [1], pe=0xB2), now=0.1)
    model.apply(pixels(1, 0, 0, [1], pe=0xB1), now=0.1)
    slots = {pe: model.legend.entry(pe).slot for pe in (0xB1, 0xB2)}
    started(model, 2, run=2)
    assert model.legend.current() == []
    model.apply(Tagged(2, PixelsArrived(0, 0, 0, np.array([1], np.uint32), 0xB1, 0)), now=0.2)
    assert [e.pe_id for e in model.legend.current()] == [0xB1]
    assert {pe: model.legend.entry(pe).slot for pe in (0xB1, 0xB2)} == slots


def test_status_texts_name_the_missing_registrar_or_pool_element() -> None:
    model = ViewerModel()
    model.apply(RegistrarState(None, 0, "no answer from 127.0.0.1:9"), now=0.0)
    problem = model.problem(0.0, "Pool")
    assert problem is not None and "No registrar reachable: no answer" in problem
    model.apply(RegistrarState("127.0.0.1:3863", 0xF1), now=0.0)
    assert model.registrar_text() == "Registrar 127.0.0.1:3863 ($000000f1)"
    started(model, 1)
    assert model.problem(0.5, "Pool") is None  # still within the grace time
    assert model.problem(2.0, "Pool") == (
        "No pool element of pool 'Pool' reachable -- 2 session(s) waiting for one ..."
    )
    model.apply(pixels(0, 0, 0, [1], pe=0xA1), now=2.1)
    assert model.problem(2.2, "Pool") is None


def test_jobs_in_playlist_order_skip_unreadable_files(tmp_path: Path) -> None:
    jobs = []
    for i in range(3):
        job = FractalJob(Algorithm.MANDELBROT, -2.0 + i, 1.0, 1.0, -1.0, 2.0, 100 + i)
        write_fsf(job, tmp_path / f"{i}.fsf")
        jobs.append(job)
    (tmp_path / "1.fsf").write_text("<FractalV1>", encoding="utf-8")  # broken
    source = JobSource.from_paths([tmp_path], playlist=True)
    names = [source.next()[0] for _ in range(4)]
    assert names == ["0.fsf", "2.fsf", "0.fsf", "2.fsf"]
    assert JobSource([], playlist=False).next()[0] is None


def test_viewer_options_validate_and_name_stored_images(tmp_path: Path) -> None:
    parser = build_parser()
    base = ["--registrar", "127.0.0.1:1"]
    options = viewer_options(parser.parse_args([*base, "--width", "10", "--caption", "Demo"]))
    assert options.pool.width == 64 and options.caption == "Demo"
    for bad in (["--interimagetime", "-1"], ["--screenshot", "x.jpg"], ["--exit-after", "0"]):
        with pytest.raises(ValueError):
            viewer_options(parser.parse_args(base + bad))
    assert storage_path(str(tmp_path / "img"), 7) == tmp_path / "img-000007.png"
