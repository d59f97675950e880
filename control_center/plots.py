"""Plots people would rather look at than read: pixels per second per PE, failover times.

Pure data and SVG text (no Qt): the window draws the same series live, and the storyboard
report embeds these SVG charts in its HTML page.

- Pixels per second per PE come from the trace: every FGP data message a pool element
  sent says how many points it carried (``points``).
- Failover times come from the pool users themselves: the ``failover`` events of the trace
  (time from noticing the loss to the first data from the new PE) or, in a storyboard
  report, the ``failover_ms`` of every cell in the pool user's JSON report.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from rsplib.trace.record import EventRecord, MessageRecord, TraceRecord

Point = tuple[float, float]
PALETTE: Final = ("#1f6fd1", "#e4572e", "#2ca02c", "#c039c0", "#f2b705", "#17becf", "#8c564b")


def pixel_rates(records: Iterable[TraceRecord], bucket: float = 1.0) -> dict[int, list[Point]]:
    """Per sending component: (seconds since the first data, pixels/s) per ``bucket``."""
    data: list[tuple[int, float, int]] = []
    for record in records:
        if (
            isinstance(record, MessageRecord)
            and record.type == "FGP_DATA"
            and record.direction == "tx"
        ):
            points = record.fields.get("points")
            if isinstance(points, int) and not isinstance(points, bool):
                data.append((record.component, record.time, points))
    if not data:
        return {}
    start = min(t for _, t, _ in data)
    sums: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for component, t, points in data:
        sums[component][int((t - start) // bucket)] += points
    last = max(max(buckets) for buckets in sums.values())
    return {
        component: [(i * bucket, buckets.get(i, 0) / bucket) for i in range(last + 1)]
        for component, buckets in sums.items()
    }


def failover_seconds(events: Iterable[TraceRecord]) -> list[float]:
    """Failover times the pool users reported (``resumed - detected``), in seconds."""
    times = []
    for event in events:
        if not isinstance(event, EventRecord) or event.type != "failover":
            continue
        detected, resumed = event.fields.get("detected"), event.fields.get("resumed")
        if (
            isinstance(detected, float | int)
            and isinstance(resumed, float | int)
            and not isinstance(detected, bool)
            and not isinstance(resumed, bool)
            and resumed >= detected
        ):
            times.append(float(resumed) - float(detected))
    return times


def histogram(values: Sequence[float], bins: int = 10) -> list[tuple[float, float, int]]:
    """(low, high, count) bins spanning ``values`` (empty if there are none)."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high <= low:
        high = low + 1.0
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [(low + i * width, low + (i + 1) * width, counts[i]) for i in range(bins)]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = float(10.0 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def svg_line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 280,
    min_span: float = 10.0,
) -> str:
    """A line chart as standalone SVG text (the x axis spans at least ``min_span``)."""
    left, right, top, bottom = 64, 16, 30, 40
    xs = [x for points in series.values() for x, _ in points] or [0.0, 1.0]
    ys = [y for points in series.values() for _, y in points] or [1.0]
    x_max = max(max(xs), min_span)
    y_max = _nice_max(max(ys))
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    parts = [_svg_head(width, height, title), _axes(left, top, plot_w, plot_h)]
    for i in range(5):
        value = y_max * i / 4
        parts.append(_text(left - 6, py(value) + 4, f"{value:,.0f}", anchor="end"))
    parts.append(_text(left + plot_w, top + plot_h + 16, f"{x_max:,.0f}", anchor="end"))
    parts.append(_text(left, top + plot_h + 16, "0", anchor="start"))
    parts.append(_text(left + plot_w / 2, height - 6, x_label))
    parts.append(_text(14, top + plot_h / 2, y_label, rotate=True))
    for index, (label, points) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        if points:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
            if len(points) <= 60:  # short series: the points themselves are visible too
                parts += [
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>'
                    for x, y in points
                ]
        parts.append(
            f'<rect x="{left + 10 + index * 110}" y="{top + 4}" width="10" height="10" '
            f'fill="{colour}"/>'
        )
        parts.append(_text(left + 24 + index * 110, top + 13, label, anchor="start"))
    parts.append("</svg>")
    return "\n".join(parts)


def svg_histogram(
    bins: Sequence[tuple[float, float, int]],
    *,
    title: str,
    x_label: str,
    width: int = 640,
    height: int = 260,
    empty: str = "no failover in this run",
) -> str:
    """A histogram as standalone SVG text (``empty`` instead when there are no values)."""
    left, right, top, bottom = 48, 16, 30, 40
    parts = [_svg_head(width, height, title)]
    if not bins:
        parts.append(_text(width / 2, height / 2, empty))
        parts.append("</svg>")
        return "\n".join(parts)
    plot_w, plot_h = width - left - right, height - top - bottom
    parts.append(_axes(left, top, plot_w, plot_h))
    top_count = max(count for _, _, count in bins) or 1
    bar_w = plot_w / len(bins)
    for index, (low, _high, count) in enumerate(bins):
        h = plot_h * count / top_count
        x = left + index * bar_w
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
            f'height="{h:.1f}" fill="#e4572e"/>'
        )
        if count:
            parts.append(_text(x + bar_w / 2, top + plot_h - h - 4, str(count)))
        if index % 2 == 0:
            parts.append(_text(x, top + plot_h + 16, f"{low:.3g}", anchor="start"))
    parts.append(_text(left + plot_w / 2, height - 6, x_label))
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_head(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">\n'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
        + _text(width / 2, 18, title, size=13)
    )


def _axes(left: float, top: float, width: float, height: float) -> str:
    return (
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" '
        f'stroke="#888"/><line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" '
        f'stroke="#888"/>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "middle",
    size: int = 11,
    rotate: bool = False,
) -> str:
    transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"'
        f"{transform}>{html.escape(text)}</text>"
    )
