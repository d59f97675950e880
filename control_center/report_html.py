"""The storyboard report as an HTML page with embedded charts, next to its JSON.

The page shows the verdict, every step with its outcome and timing, the pool users'
results, and two charts drawn from what the components reported: pixels per second per
pool element (from the run's trace, ``trace.jsonl``) and a histogram of the failover times
the pool users measured (their JSON reports). Everything a component wrote is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_center.plots import histogram, pixel_rates, svg_histogram, svg_line_chart
from rsplib.trace.record import TraceRecord
from rsplib.trace.replay import BadLine, read_trace_file

MAX_TRACE_RECORDS = 2_000_000

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #1a1a1a; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 90%; }
.ok { background: #dff3df; } .failed, .error { background: #f8d7d7; } .skipped { color: #888; }
.charts svg { margin: 0.5em 1em 0.5em 0; border: 1px solid #ddd; }
"""


def _trace_records(path: Path | None) -> list[TraceRecord]:
    if path is None or not path.exists():
        return []
    records: list[TraceRecord] = []
    for _line, item in read_trace_file(path):
        if not isinstance(item, BadLine):
            records.append(item)
            if len(records) >= MAX_TRACE_RECORDS:
                break
    return records


def _names(report: Mapping[str, Any]) -> dict[int, str]:
    names = {}
    for name, state in (report.get("components") or {}).items():
        try:
            names[int(str(state.get("csp_id")), 16)] = str(name)
        except (TypeError, ValueError):
            continue
    return names


def render_html(report: Mapping[str, Any], trace_path: Path | None = None) -> str:
    e = html.escape
    names = _names(report)
    rates = pixel_rates(_trace_records(trace_path))
    series = {names.get(c, f"0x{c:x}"): points for c, points in rates.items()}
    failovers: list[float] = []
    for pu in (report.get("pool_users") or {}).values():
        failovers += [float(v) for v in pu.get("failover_times_ms") or [] if v is not None]
    verdict = "PASSED" if report.get("passed") else "FAILED"
    rows = []
    for step in report.get("steps") or []:
        outcome = str(step.get("outcome", ""))
        rows.append(
            f'<tr class="{e(outcome)}"><td>{e(str(step.get("index")))}</td>'
            f"<td>{e(str(step.get('description', '')))}</td><td>{e(outcome)}</td>"
            f"<td>{e(str(step.get('started_s', '')))}</td>"
            f"<td>{e(str(step.get('measured_s') or ''))}</td>"
            f"<td>{e(str(step.get('detail') or ''))}</td></tr>"
        )
    users = []
    for name, pu in (report.get("pool_users") or {}).items():
        users.append(
            f"<tr><td>{e(str(name))}</td><td>{e(str(pu.get('complete')))}</td>"
            f"<td>{e(str(pu.get('images')))}</td><td>{e(str(pu.get('missing_pixels')))}</td>"
            f"<td>{e(str(pu.get('pixels_computed_twice')))}</td>"
            f"<td>{e(str(pu.get('failovers')))}</td></tr>"
        )
    charts = [
        svg_line_chart(
            series,
            title="Pixels per second per pool element (from the trace)",
            x_label="seconds since the first data",
            y_label="pixels/s",
        ),
        svg_histogram(
            histogram(failovers, bins=12),
            title="Failover times measured by the pool users",
            x_label="milliseconds from noticing the loss to the first data from the new PE",
        ),
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(str(report.get("name", "storyboard")))}: {verdict}</title>
<style>{_STYLE}</style></head><body>
<h1>{e(str(report.get("name", "storyboard")))}: {verdict}</h1>
<p>Scenario {e(str(report.get("scenario")))}, started {e(str(report.get("started_at")))},
{e(str(report.get("duration_s")))} s. {e(str(report.get("error") or ""))}</p>
<div class="charts">{"".join(charts)}</div>
<h2>Steps</h2>
<table><tr><th>#</th><th>step</th><th>outcome</th><th>started (s)</th><th>measured (s)</th>
<th>detail</th></tr>{"".join(rows)}</table>
<h2>Pool users</h2>
<table><tr><th>PU</th><th>complete</th><th>images</th><th>missing pixels</th>
<th>computed twice</th><th>failovers</th></tr>{"".join(users)}</table>
<p>The same data as JSON is next to this page.</p>
</body></html>
"""


def write_html_report(
    report: Mapping[str, Any], json_path: Path, trace_path: Path | None = None
) -> Path:
    """Write the page next to ``json_path`` (same name, ``.html``); returns its path."""
    path = json_path.with_suffix(".html")
    path.write_text(render_html(report, trace_path), encoding="utf-8")
    return path
