"""fractal-pu's shared options (both modes) and the live image the control center shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fractal_pu.engine import ImageStarted, PixelsArrived
from fractal_pu.live_image import LiveImage
from fractal_pu.options import build_parser, parse_pe_names, pool_user_options
from fractal_pu.palette import BACKGROUND_RGB, HATCH_DARKEN, hatch
from fractal_pu.png import decode_png_rgb
from fractal_pu.split import Rect

BASE = ["--registrar", "127.0.0.1:9"]


def options(*extra: str):  # type: ignore[no-untyped-def]
    return pool_user_options(build_parser().parse_args([*BASE, *extra]))


def test_pause_defaults_differ_by_mode_and_images_zero_means_endless(tmp_path: Path) -> None:
    out = str(tmp_path / "o.png")
    assert options("--headless", "--output", out).pause == 0.0
    assert options().pause == 5.0  # the viewer's rsplib default
    endless = options("--headless", "--output", out, "--images", "0", "--interimagetime", "1.5")
    assert (endless.images, endless.pause) == (0, 1.5)
    for bad in (["--images", "-1"], ["--interimagetime", "-1"], ["--interimagetime", "nan"]):
        with pytest.raises(ValueError):
            options("--headless", "--output", out, *bad)
    with pytest.raises(ValueError, match="--output"):
        options("--headless")


def test_pe_names_name_pool_elements_and_bad_ones_are_refused() -> None:
    named = options("--pe-name", "0x101=PE-1", "--pe-name", "258=PE-2")
    assert named.pe_names == {0x101: "PE-1", 0x102: "PE-2"}
    assert named.pe_label(0x101) == "PE-1"
    assert named.pe_label(0x103) == "$00000103"
    assert named.pe_label(None) == "?"
    for bad in ("PE-1", "0x101=", "zz=PE", "0=PE", "0x1=" + "x" * 65):
        with pytest.raises(ValueError, match="--pe-name"):
            parse_pe_names([bad])


def test_help_names_the_right_pool_handle_and_the_viewer_keys() -> None:
    text = build_parser().format_help()
    assert "default FractalGeneratorPool" in text
    assert "EchoPool" not in text
    assert "Ctrl+S" in text and "Ctrl+Q" in text


def _pixels(cell: int, x: int, y: int, values: list[int], failovers: int = 0) -> PixelsArrived:
    return PixelsArrived(cell, x, y, np.array(values, dtype=np.uint32), 0x101, failovers)


def test_live_image_follows_the_events_and_hatches_pixels_computed_twice(tmp_path: Path) -> None:
    path = tmp_path / "live.png"
    live = LiveImage(path, show_failovers=False, show_sessions=False)
    assert not live.write_if_changed()  # nothing started yet: no file
    live.on_event(ImageStarted(1, 6, 2, (Rect(0, 0, 3, 2), Rect(3, 0, 3, 2))))
    live.on_event(_pixels(1, 0, 0, [5, 6, 7, 8]))  # cell 1: row 0 and the first pixel of row 1
    assert live.write_if_changed()
    assert not live.write_if_changed()  # unchanged: not written again
    picture = decode_png_rgb(path.read_bytes())
    assert picture.shape == (2, 6, 3)
    assert (picture[:, :3] == BACKGROUND_RGB).all()  # cell 0: nothing arrived
    assert np.array_equal(picture, live.picture())
    assert not (picture[0, 3:] == BACKGROUND_RGB).all(axis=-1).any()
    # Cell 0 gets its first row; after a failover its first two pixels come again: they
    # were computed twice (the hatching's dark stripes start at the top left corner).
    live.on_event(_pixels(0, 0, 0, [1, 2, 3]))
    live.on_event(_pixels(0, 0, 0, [1, 2], failovers=1))
    assert live.twice.sum() == 2 and live.twice[0, 0] and live.twice[0, 1]
    hatched = live.picture()
    twice, live.twice = live.twice, np.zeros_like(live.twice)
    unhatched = live.picture()
    live.twice = twice
    darker = hatched.astype(int).sum(axis=-1) < unhatched.astype(int).sum(axis=-1)
    assert darker.any() and not darker[~twice].any()
    stripes = hatch(np.full((2, 6, 3), 200, dtype=np.uint8), live.twice)
    assert (stripes[~live.twice] == 200).all()
    assert (stripes[live.twice] == int(200 * HATCH_DARKEN)).any()
    # A pixel report beyond the cell is cut at the cell's end (never written elsewhere).
    live.on_event(_pixels(0, 2, 1, [9, 9, 9]))
    assert live.computed[1, 2] and not live.computed[1, 3:].all()
    assert not list(tmp_path.glob(".*.part"))  # written through a rename, nothing left over
