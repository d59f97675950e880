"""The headless PU's JSON report: what every session did, per image and in total.

Shape (times in milliseconds; PE identifiers as "0x%08x" strings)::

    {"pool_handle": ..., "sessions": N, "width": W, "height": H, "complete": bool,
     "in_progress": bool (written after an image, more to come; an endless run keeps
                          only its newest images),
     "images": [{
        "index": 1, "config": "02-seahorse-valley.fsf", "output": "out.png",
        "complete": bool, "missing_pixels": 0, "total_time_ms": ...,
        "pixels": W*H, "pixels_computed_twice": ..., "pixels_per_pe": {"0x...": n},
        "failovers": n, "failover_time_ms": {"median": .., "max": ..},
        "cookies_rejected": n, "restarts": n,
        "cells": [{"cell": 0, "rect": {"x":..,"y":..,"w":..,"h":..},
                   "pes_used": ["0x..."], "pixels_per_pe": {...},
                   "pixels_computed_twice": n, "restarts": n, "cookies_rejected": n,
                   "failovers": [{"old_pe", "new_pe", "reason", "had_cookie",
                                  "cookie_rejected", "fault_at_ms", "detected_at_ms",
                                  "failover_ms", "recovery_ms"}],
                   "time_ms": ..., "complete": bool, "missing_pixels": n, "error": null}]
     }]}

Times count from the image's start. ``fault_at_ms`` is when the old PE's last
message arrived (the pool user's best knowledge of the fault), ``detected_at_ms``
when the session gave up on it; ``failover_ms`` runs from the fault to the first
pixel from the new PE, ``recovery_ms`` from the detection to it (null if none
came). For a crashed PE the two are close; for a hung one the difference is the
time it took to notice the silence.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fractal_pu.engine import CellStats, FailoverRecord, ImageResult

JsonObject = dict[str, Any]


def pe_name(pe_id: int | None) -> str | None:
    return None if pe_id is None else f"0x{pe_id:08x}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _failover_json(record: FailoverRecord, image_start: float) -> JsonObject:
    return {
        "old_pe": pe_name(record.old_pe),
        "new_pe": pe_name(record.new_pe),
        "reason": record.reason,
        "had_cookie": record.had_cookie,
        "cookie_rejected": record.cookie_rejected,
        "fault_at_ms": _ms(record.fault_time - image_start),
        "detected_at_ms": _ms(record.detected_time - image_start),
        "failover_ms": _ms(record.duration),
        "recovery_ms": _ms(record.recovery),
    }


def _per_pe(counts: dict[int, int]) -> dict[str, int]:
    return {f"0x{pe:08x}": n for pe, n in sorted(counts.items())}


def cell_json(cell: CellStats, image_start: float) -> JsonObject:
    elapsed = None if cell.finished is None else cell.finished - cell.started
    rect = cell.rect
    return {
        "cell": cell.index,
        "rect": {"x": rect.x, "y": rect.y, "w": rect.w, "h": rect.h},
        "pes_used": [pe_name(pe) for pe in cell.pes_used],
        "pixels_per_pe": _per_pe(cell.pixels_per_pe),
        "pixels_computed_twice": cell.pixels_computed_twice,
        "restarts": cell.restarts,
        "cookies_rejected": cell.cookies_rejected,
        "failovers": [_failover_json(f, image_start) for f in cell.failovers],
        "time_ms": _ms(elapsed),
        "complete": cell.complete,
        "missing_pixels": cell.missing_pixels,
        "error": cell.error,
    }


@dataclass(frozen=True)
class ImageInfo:
    """What the report says about an image beyond the engine's result."""

    config: str | None
    output: str | None


def image_json(result: ImageResult, info: ImageInfo) -> JsonObject:
    per_pe: dict[int, int] = {}
    for cell in result.cells:
        for pe, n in cell.pixels_per_pe.items():
            per_pe[pe] = per_pe.get(pe, 0) + n
    failovers = [f for cell in result.cells for f in cell.failovers]
    times = [f.duration * 1000.0 for f in failovers if f.duration is not None]
    return {
        "index": result.index,
        "config": info.config,
        "output": info.output,
        "algorithm": result.job.algorithm.name,
        "max_iterations": result.job.max_iterations,
        "complete": result.complete,
        "missing_pixels": result.missing_pixels,
        "total_time_ms": _ms(result.finished - result.started),
        "pixels": result.width * result.height,
        "pixels_computed_twice": sum(c.pixels_computed_twice for c in result.cells),
        "pixels_per_pe": _per_pe(per_pe),
        "failovers": len(failovers),
        "failover_time_ms": {
            "median": round(statistics.median(times), 3) if times else None,
            "max": round(max(times), 3) if times else None,
        },
        "cookies_rejected": sum(c.cookies_rejected for c in result.cells),
        "restarts": sum(c.restarts for c in result.cells),
        "cells": [cell_json(c, result.started) for c in result.cells],
    }


def build_report(
    *,
    pool_handle: str,
    sessions: int,
    width: int,
    height: int,
    images: Sequence[tuple[ImageResult, ImageInfo]],
    error: str | None = None,
    in_progress: bool = False,
) -> JsonObject:
    """The report; ``in_progress``: written between images (never "complete" then)."""
    done = error is None and bool(images) and all(result.complete for result, _ in images)
    return {
        "pool_handle": pool_handle,
        "sessions": sessions,
        "width": width,
        "height": height,
        "complete": done and not in_progress,
        "in_progress": in_progress,
        "error": error,
        "images": [image_json(result, info) for result, info in images],
    }


def write_report(path: str | Path, report: JsonObject) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
