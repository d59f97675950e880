"""The viewer's settings, validated from the ``fractal-pu`` command line (no Qt here).

The pool, session and colour settings are the headless mode's
(:class:`fractal_pu.options.PoolUserOptions`, validated by the same function),
so both modes accept the same options with the same meaning; the viewer
ignores the headless-only outputs (``--output``, ``--report``, ``--images``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from fractal_pu.options import PoolUserOptions, pool_user_options

DEFAULT_CAPTION = "Fractal Pool User"
#: rsplib's viewer offers exactly these session counts in its menu.
SESSION_CHOICES = (1, 2, 3, 4, 6, 8, 9, 16, 25, 36, 49, 64, 81, 100, 144, 225, 256, 400)
#: rsplib clamps the window to 64..8192 x 64..4096 pixels.
MIN_SIDE = 64
MAX_WIDTH, MAX_HEIGHT = 8192, 4096


@dataclass(frozen=True)
class ViewerOptions:
    pool: PoolUserOptions
    caption: str = DEFAULT_CAPTION
    image_storage_prefix: str | None = None
    overlay: bool = False
    fullscreen: bool = False
    exit_after: float | None = None
    screenshot: Path | None = None

    @property
    def sessions(self) -> int:
        return self.pool.sessions

    @property
    def inter_image_time(self) -> float:
        return self.pool.pause


def viewer_options(args: argparse.Namespace, pool: PoolUserOptions | None = None) -> ViewerOptions:
    """Validated viewer settings (``pool``: the already validated shared ones, if any);
    ValueError names the problem."""
    if pool is None:
        pool = pool_user_options(args)
    width = min(max(pool.width, MIN_SIDE), MAX_WIDTH)
    height = min(max(pool.height, MIN_SIDE), MAX_HEIGHT)
    if (width, height) != (pool.width, pool.height):
        pool = replace(pool, width=width, height=height)
    if args.exit_after is not None and not args.exit_after > 0:
        raise ValueError("--exit-after must be positive seconds")
    if args.screenshot is not None and args.screenshot.suffix.lower() != ".png":
        raise ValueError("--screenshot must name a .png file")
    return ViewerOptions(
        pool=pool,
        caption=args.caption or DEFAULT_CAPTION,
        image_storage_prefix=args.imagestorageprefix or None,
        overlay=bool(args.overlay),
        fullscreen=bool(args.fullscreen),
        exit_after=args.exit_after,
        screenshot=args.screenshot,
    )


def storage_path(prefix: str, number: int) -> Path:
    """rsplib's documented name for a stored image: ``P-NNNNNN.png``."""
    return Path(f"{prefix}-{number:06d}.png")
