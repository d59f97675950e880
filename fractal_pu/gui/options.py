"""The viewer's settings, validated from the ``fractal-pu`` command line (no Qt here).

The pool, session and colour settings are the headless mode's
(:class:`fractal_pu.headless.HeadlessOptions`, validated by the same function),
so both modes accept the same options with the same meaning; the viewer
ignores the headless-only outputs (``--output``, ``--report``, ``--images``).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from pathlib import Path

from fractal_pu.cli import headless_options
from fractal_pu.headless import HeadlessOptions

DEFAULT_CAPTION = "Fractal Pool User"
#: rsplib's viewer offers exactly these session counts in its menu.
SESSION_CHOICES = (1, 2, 3, 4, 6, 8, 9, 16, 25, 36, 49, 64, 81, 100, 144, 225, 256, 400)
#: rsplib clamps the window to 64..8192 x 64..4096 pixels.
MIN_SIDE = 64
MAX_WIDTH, MAX_HEIGHT = 8192, 4096
# Placeholder for the headless-only output option, which the viewer never writes.
_UNUSED_OUTPUT = Path("unused-by-the-viewer.png")


@dataclass(frozen=True)
class ViewerOptions:
    pool: HeadlessOptions
    caption: str = DEFAULT_CAPTION
    image_storage_prefix: str | None = None
    inter_image_time: float = 5.0
    overlay: bool = False
    fullscreen: bool = False
    exit_after: float | None = None
    screenshot: Path | None = None

    @property
    def sessions(self) -> int:
        return self.pool.sessions


def viewer_options(args: argparse.Namespace) -> ViewerOptions:
    """Validated viewer settings; ValueError names the problem."""
    values = vars(args).copy()
    if values.get("output") is None:
        values["output"] = _UNUSED_OUTPUT
    pool = headless_options(argparse.Namespace(**values))
    width = min(max(pool.width, MIN_SIDE), MAX_WIDTH)
    height = min(max(pool.height, MIN_SIDE), MAX_HEIGHT)
    if (width, height) != (pool.width, pool.height):
        pool = replace(pool, width=width, height=height)
    if not (math.isfinite(args.interimagetime) and args.interimagetime >= 0):
        raise ValueError("--interimagetime must be 0 or more seconds")
    if args.exit_after is not None and not args.exit_after > 0:
        raise ValueError("--exit-after must be positive seconds")
    if args.screenshot is not None and args.screenshot.suffix.lower() != ".png":
        raise ValueError("--screenshot must name a .png file")
    return ViewerOptions(
        pool=pool,
        caption=args.caption or DEFAULT_CAPTION,
        image_storage_prefix=args.imagestorageprefix or None,
        inter_image_time=float(args.interimagetime),
        overlay=bool(args.overlay),
        fullscreen=bool(args.fullscreen),
        exit_after=args.exit_after,
        screenshot=args.screenshot,
    )


def storage_path(prefix: str, number: int) -> Path:
    """rsplib's documented name for a stored image: ``P-NNNNNN.png``."""
    return Path(f"{prefix}-{number:06d}.png")
