"""The fractal PU's colouring (rsplib's "SimpleHSV" scheme), vectorised with numpy.

For a pixel with iteration count ``v`` the viewer adds optional offsets and
picks a fully saturated, fully bright hue in 5-degree steps:

* "show failovers" (colour marks): ``v += 2*run + 18*failovers`` where ``run``
  is the image number and ``failovers`` counts the PE changes of the pixel's
  session when the pixel arrived -- so every failover rotates the palette of
  the rest of that cell, which is what makes a failover visible. rsplib
  rotates by 5 steps (25 degrees), which on images with smooth colour bands
  is hard to see; 18 steps turn the hue by a quarter circle;
* "show sessions": ``v += 3*session_index``;
* hue = ((v mod 72) * 5) mod 360, colour = HSV(hue, 255, 255).

The HSV -> RGB step follows Qt's QColor (16-bit intermediate channels, then
a rounding division by 257 to 8 bits), so our pixels equal the ones the Qt
viewer paints. Only
72 hues exist, hence a lookup table.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

BACKGROUND_RGB = (200, 200, 200)
HUE_STEPS = 72
#: Palette steps a failover rotates the rest of its cell by (rsplib: 5).
FAILOVER_SHIFT = 18

RgbImage = npt.NDArray[np.uint8]


def _to_8bit(channel: float) -> int:
    # Qt stores round(x * 65535) and reads 8 bits back as a rounded division by 257.
    wide = math.floor(channel * 65535 + 0.5)
    return (wide - (wide >> 8) + 0x80) >> 8


def hsv_to_rgb(hue: int, saturation: int, value: int) -> tuple[int, int, int]:
    """One colour as QColor.fromHsv(h, s, v).getRgb() computes it (h in degrees, s/v 0..255)."""
    if not (0 <= saturation <= 255 and 0 <= value <= 255):
        raise ValueError(f"saturation/value out of range: {saturation}, {value}")
    hue %= 360
    # QColor keeps 16-bit channels: hue in hundredths of a degree, s and v * 0x101.
    h = hue * 100 / 6000.0
    s = saturation * 0x101 / 65535.0
    v = value * 0x101 / 65535.0
    sector = int(h)
    f = h - sector
    p = v * (1.0 - s)
    if sector & 1:
        q = v * (1.0 - s * f)
        table = {1: (q, v, p), 3: (p, q, v), 5: (v, p, q)}
    else:
        t = v * (1.0 - s * (1.0 - f))
        table = {0: (v, t, p), 2: (p, v, t), 4: (t, p, v)}
    r, g, b = table[sector]
    return _to_8bit(r), _to_8bit(g), _to_8bit(b)


def _build_table() -> RgbImage:
    table = np.empty((HUE_STEPS, 3), dtype=np.uint8)
    for step in range(HUE_STEPS):
        table[step] = hsv_to_rgb((step * 5) % 360, 255, 255)
    return table


#: Colour for each value of (v mod 72).
PALETTE: RgbImage = _build_table()


def palette_offsets(
    failovers: npt.NDArray[np.integer] | int,
    *,
    run: int = 0,
    session_index: npt.NDArray[np.integer] | int = 0,
    show_failovers: bool = True,
    show_sessions: bool = True,
) -> npt.NDArray[np.int64]:
    """The value offset per pixel (or a scalar array) from the viewer's two options."""
    offset = np.zeros(np.shape(failovers), dtype=np.int64)
    if show_failovers:
        offset = offset + 2 * run + FAILOVER_SHIFT * np.asarray(failovers, dtype=np.int64)
    if show_sessions:
        offset = offset + 3 * np.asarray(session_index, dtype=np.int64)
    return offset


def colorize(
    values: npt.NDArray[np.integer],
    offsets: npt.NDArray[np.integer] | int = 0,
    computed: npt.NDArray[np.bool_] | None = None,
) -> RgbImage:
    """RGB image (shape values.shape + (3,)) of iteration counts plus offsets.

    Pixels where ``computed`` is False get the viewer's grey background.
    """
    index = (np.asarray(values, dtype=np.int64) + np.asarray(offsets, dtype=np.int64)) % HUE_STEPS
    rgb: RgbImage = PALETTE[index]
    if computed is not None:
        rgb[~computed] = BACKGROUND_RGB
    return rgb


#: Pixels per stripe pair of the "computed twice" hatching, and how dark its stripes are.
HATCH_PERIOD = 6
HATCH_DARKEN = 0.3


def hatch_stripes(
    xs: npt.NDArray[np.integer], ys: npt.NDArray[np.integer]
) -> npt.NDArray[np.bool_]:
    """Which of the pixels at (xs, ys) lie on a dark diagonal stripe of the hatching."""
    stripes: npt.NDArray[np.bool_] = ((xs + ys) % HATCH_PERIOD) < (HATCH_PERIOD // 2)
    return stripes


def hatch_pixels(
    rgb: RgbImage,
    twice: npt.NDArray[np.bool_],
    xs: npt.NDArray[np.integer],
    ys: npt.NDArray[np.integer],
) -> RgbImage:
    """Colours of the pixels at (xs, ys), those computed twice hatched by dark diagonals."""
    dark = twice & hatch_stripes(xs, ys)
    out = rgb.copy()
    out[dark] = (out[dark].astype(np.float32) * HATCH_DARKEN).astype(np.uint8)
    return out


def hatch(rgb: RgbImage, twice: npt.NDArray[np.bool_]) -> RgbImage:
    """A whole picture (H x W x 3) with the pixels computed twice hatched."""
    grid = np.indices(twice.shape)
    return hatch_pixels(rgb, twice, grid[1], grid[0])
