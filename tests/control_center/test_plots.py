"""Plots from the trace and the pool users' reports, and the storyboard report page."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from control_center.plots import (
    failover_seconds,
    histogram,
    pixel_rates,
    svg_histogram,
    svg_line_chart,
)
from control_center.report_html import render_html, write_html_report
from rsplib.trace.record import EventRecord, MessageRecord, encode_record


def _data(component: int, t: float, points: int, direction: str = "tx") -> MessageRecord:
    return MessageRecord(
        time=t, component=component, seq=0, direction=direction, peer="b:1", local="a:1",
        proto="fgp", type="FGP_DATA", fields={"points": points},
    )  # fmt: skip


def test_pixel_rates_per_pe_and_second() -> None:
    records = [
        _data(1, 100.2, 300), _data(1, 100.7, 100), _data(2, 101.5, 50),
        _data(2, 101.6, 999, direction="rx"),  # the receiver's copy is not counted again
    ]  # fmt: skip
    assert pixel_rates(records) == {1: [(0.0, 400.0), (1.0, 0.0)], 2: [(0.0, 0.0), (1.0, 50.0)]}
    assert pixel_rates([]) == {}


def test_failover_times_come_from_the_events() -> None:
    events = [
        EventRecord(time=1, component=1, seq=0, type="failover",
                    fields={"detected": 10.0, "resumed": 10.25}),
        EventRecord(time=1, component=1, seq=1, type="failover",
                    fields={"detected": 10.0, "resumed": None}),
        EventRecord(time=1, component=1, seq=2, type="other", fields={}),
    ]  # fmt: skip
    assert failover_seconds(events) == [0.25]


def test_histogram_and_svg_are_well_formed() -> None:
    bins = histogram([1.0, 1.5, 2.0, 9.0], bins=4)
    assert [count for _, _, count in bins] == [3, 0, 0, 1]
    assert histogram([]) == []
    assert histogram([5.0, 5.0])[0][2] == 2
    for svg in (
        svg_histogram(bins, title="t <&>", x_label="x"),
        svg_histogram([], title="t", x_label="x"),
        svg_line_chart({"PE-<1>": [(0, 1), (1, 3)]}, title="t", x_label="x", y_label="y"),
        svg_line_chart({}, title="t", x_label="x", y_label="y"),
    ):
        ET.fromstring(svg)  # valid XML: names are escaped


def test_report_page(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(
        b"\n".join(encode_record(r) for r in (_data(0x0200000000000101, 5.0, 100),))
        + b"\nnot a record\n"
    )
    report = {
        "name": "story <script>alert(1)</script>",
        "passed": True,
        "steps": [{"index": 0, "description": "kill <b>", "outcome": "ok", "started_s": 1}],
        "pool_users": {"PU-1": {"complete": True, "failover_times_ms": [12.5, 14.0]}},
        "components": {"PE-1": {"csp_id": "200000000000101"}},
    }
    page = render_html(report, trace)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "PE-1" in page and page.count("<svg") == 2 and "<polyline" in page
    json_path = tmp_path / "story-report.json"
    written = write_html_report(report, json_path, trace)
    assert written == tmp_path / "story-report.html" and written.read_text() == page
