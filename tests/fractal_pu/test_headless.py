"""Headless pieces: palette, PNG writer, report, image choice, command line."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from fractal_pe.fgp import Algorithm
from fractal_pu import cli
from fractal_pu.engine import CellStats, FailoverRecord, ImageResult
from fractal_pu.fsf import FractalJob, write_fsf
from fractal_pu.headless import output_path, render
from fractal_pu.jobs import JobSource
from fractal_pu.palette import (
    BACKGROUND_RGB,
    FAILOVER_SHIFT,
    PALETTE,
    colorize,
    hsv_to_rgb,
    palette_offsets,
)
from fractal_pu.png import PNG_SIGNATURE, decode_png_rgb, encode_png
from fractal_pu.report import ImageInfo, build_report
from fractal_pu.split import Rect, sub_parameters

REPO = Path(__file__).resolve().parents[2]
JOB = FractalJob(Algorithm.MANDELBROT, -2.0, -1.2, 1.0, 1.2, 2.0, 64)


# --------------------------------------------------------------------------- palette


def test_hsv_matches_the_textbook_sextants() -> None:
    assert hsv_to_rgb(0, 255, 255) == (255, 0, 0)
    assert hsv_to_rgb(60, 255, 255) == (255, 255, 0)
    assert hsv_to_rgb(120, 255, 255) == (0, 255, 0)
    assert hsv_to_rgb(180, 255, 255) == (0, 255, 255)
    assert hsv_to_rgb(240, 255, 255) == (0, 0, 255)
    assert hsv_to_rgb(300, 255, 255) == (255, 0, 255)
    assert hsv_to_rgb(30, 255, 255) == (255, 128, 0)  # half way: Qt rounds 32767.5 up
    assert hsv_to_rgb(0, 0, 200) == (200, 200, 200)


def test_palette_repeats_every_72_values_and_offsets_rotate_it() -> None:
    values = np.array([[0, 1, 72, 73]], dtype=np.uint32)
    rgb = colorize(values)
    assert (rgb[0, 0] == rgb[0, 2]).all() and (rgb[0, 1] == rgb[0, 3]).all()
    assert (rgb[0, 0] == PALETTE[0]).all()
    shifted = colorize(values, 5)
    assert (shifted[0, 0] == PALETTE[5]).all()
    # rsplib: v += 2*run + 5*failovers (show failovers), v += 3*session (show sessions).
    offsets = palette_offsets(np.array([2]), run=1, session_index=np.array([3]))
    assert offsets.tolist() == [2 * 1 + FAILOVER_SHIFT * 2 + 3 * 3]
    assert palette_offsets(np.array([2]), run=1, show_failovers=False).tolist() == [0]


def test_uncomputed_pixels_are_grey() -> None:
    computed = np.array([[True, False]])
    rgb = colorize(np.zeros((1, 2), dtype=np.uint32), 0, computed)
    assert tuple(rgb[0, 1]) == BACKGROUND_RGB and tuple(rgb[0, 0]) != BACKGROUND_RGB


# --------------------------------------------------------------------------- PNG


def test_png_round_trip_and_structure() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(7, 13, 3), dtype=np.uint8)
    data = encode_png(rgb)
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (13, 7)
    assert np.array_equal(decode_png_rgb(data), rgb)
    broken = bytearray(data)
    broken[30] ^= 0xFF  # inside the IHDR data: the CRC no longer matches
    with pytest.raises(ValueError, match="CRC"):
        decode_png_rgb(bytes(broken))


def test_png_scanlines_use_filter_none() -> None:
    rgb = np.full((2, 2, 3), 9, dtype=np.uint8)
    data = encode_png(rgb)
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    raw = zlib.decompress(data[start : start + length])
    assert raw == b"\x00" + b"\x09" * 6 + b"\x00" + b"\x09" * 6


def test_png_refuses_wrong_arrays() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2, 3), dtype=np.uint16))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- report


def _result() -> ImageResult:
    rect = Rect(0, 0, 4, 2)
    cell = CellStats(0, rect, sub_parameters(JOB, rect, 4, 2))
    cell.pes_used = [0x10, 0x20]
    cell.pixels_per_pe = {0x10: 5, 0x20: 5}
    cell.pixels_computed_twice = 2
    cell.failovers = [
        FailoverRecord(
            0x10,
            "eof",
            detected_time=10.5,
            last_rx_time=10.49,
            new_pe=0x20,
            had_cookie=True,
            connected_time=10.51,
            resumed_time=10.525,
        ),
        FailoverRecord(0x20, "eof", detected_time=11.0),
    ]
    cell.started, cell.finished, cell.complete = 10.0, 12.0, True
    computed = np.ones((2, 4), dtype=bool)
    return ImageResult(
        index=1,
        job=JOB,
        width=4,
        height=2,
        values=np.arange(8, dtype=np.uint32).reshape(2, 4),
        computed=computed,
        failovers=np.zeros((2, 4), dtype=np.uint16),
        cell_of=np.zeros((2, 4), dtype=np.uint16),
        cells=[cell],
        started=10.0,
        finished=12.0,
    )


def test_report_contents() -> None:
    result = _result()
    report = build_report(
        pool_handle="P",
        sessions=1,
        width=4,
        height=2,
        images=[(result, ImageInfo("x.fsf", "out.png"))],
    )
    json.dumps(report)  # plain JSON
    assert report["complete"] is True
    image = report["images"][0]
    assert image["pixels_per_pe"] == {"0x00000010": 5, "0x00000020": 5}
    assert image["pixels_computed_twice"] == 2
    assert image["total_time_ms"] == 2000.0
    assert image["failovers"] == 2
    first, second = image["cells"][0]["failovers"]
    assert first["old_pe"] == "0x00000010" and first["new_pe"] == "0x00000020"
    # The fault is the old PE's last message; the failover time runs from it to the
    # first resumed pixel, the recovery time from the detection.
    assert first["fault_at_ms"] == pytest.approx(490.0)
    assert first["detected_at_ms"] == pytest.approx(500.0)
    assert first["failover_ms"] == pytest.approx(35.0)
    assert first["recovery_ms"] == pytest.approx(25.0)
    assert second["failover_ms"] is None  # no new pixel ever came
    assert image["failover_time_ms"]["median"] == pytest.approx(35.0)
    assert image["cells"][0]["pes_used"] == ["0x00000010", "0x00000020"]


def test_report_of_a_failed_run_is_not_complete() -> None:
    result = _result()
    result.computed[0, 0] = False
    report = build_report(
        pool_handle="P", sessions=1, width=4, height=2, images=[(result, ImageInfo(None, None))]
    )
    assert report["complete"] is False and report["images"][0]["missing_pixels"] == 1
    assert (
        build_report(pool_handle="P", sessions=1, width=4, height=2, images=[], error="x")[
            "complete"
        ]
        is False
    )
    # Written between images: never complete, even when every image so far is.
    whole = _result()
    done = [(whole, ImageInfo(None, None))]
    assert build_report(pool_handle="P", sessions=1, width=4, height=2, images=done)["complete"]
    between = build_report(
        pool_handle="P", sessions=1, width=4, height=2, images=done, in_progress=True
    )
    assert between["complete"] is False and between["in_progress"] is True


def test_render_uses_the_palette_shifts() -> None:
    result = _result()
    result.failovers[0, 1] = 1
    rgb = render(result)
    # Pixel (0,1): value 1, run 1 -> 2, one failover -> FAILOVER_SHIFT.
    assert (rgb[0, 1] == PALETTE[1 + 2 + FAILOVER_SHIFT]).all()
    plain = render(result, show_failovers=False, show_sessions=False)
    assert (plain[0, 1] == PALETTE[1]).all()


# --------------------------------------------------------------------------- choices


def test_output_names_get_a_suffix_for_several_images() -> None:
    assert output_path(Path("a/out.png"), 1, 1) == Path("a/out.png")
    assert output_path(Path("a/out.png"), 2, 3) == Path("a/out-002.png")


def test_playlist_cycles_in_order_and_random_choice_is_seeded(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"{i}.fsf"
        write_fsf(FractalJob(Algorithm.MANDELBROT, -2.0 + i, -1.0, 1.0, 1.0, 2.0, 10 + i), path)
        files.append(path)
    source = JobSource(files, playlist=True, rng=random.Random(0))
    playlist = [source.next() for _ in range(4)]
    assert [name for name, _ in playlist] == ["0.fsf", "1.fsf", "2.fsf", "0.fsf"]
    assert playlist[1][1].max_iterations == 11
    a = JobSource(files, playlist=False, rng=random.Random(7))
    b = JobSource(files, playlist=False, rng=random.Random(7))
    assert [a.next() for _ in range(5)] == [b.next() for _ in range(5)]


# --------------------------------------------------------------------------- command line


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fractal_pu.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_without_headless_the_viewer_checks_its_options() -> None:
    # The viewer itself is tested in tests/fractal_pu/gui/.
    done = _run_cli("--registrar", "127.0.0.1:9", "--screenshot", "shot.jpg")
    assert done.returncode == 2
    assert "--screenshot" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--headless", "--registrar", "127.0.0.1:9"], "--output"),
        (["--headless", "--output", "x.png"], "--registrar"),
        (
            ["--headless", "--registrar", "127.0.0.1:9", "--output", "x.png", "--sessions", "0"],
            "--sessions",
        ),
        (["--headless", "--registrar", "nonsense", "--output", "x.png"], "ADDR:PORT"),
        (
            [
                "--headless",
                "--registrar",
                "127.0.0.1:9",
                "--output",
                "x.png",
                "--config",
                "/nonexistent.fsf",
            ],
            "no such",
        ),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_no_registrar_reachable_fails_with_status_1(tmp_path: Path) -> None:
    done = _run_cli(
        "--headless",
        "--registrar",
        "127.0.0.1:9",
        "--transport",
        "tcp",
        "--registrar-connect-timeout",
        "300",
        "--pool-timeout",
        "500",
        "--width",
        "16",
        "--height",
        "16",
        "--output",
        str(tmp_path / "x.png"),
        "--report",
        str(tmp_path / "x.json"),
    )
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "x.json").read_text())
    assert report["complete"] is False


def test_sigint_ends_the_headless_pu_cleanly_with_a_final_report(tmp_path: Path) -> None:
    """SIGINT mid-work: exit status 130 (not a signal death), FINAL CSP report, JSON report."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    from rsplib.wire.csp import decode_csp

    monitor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    monitor.bind(("127.0.0.1", 0))
    monitor.settimeout(0.2)
    port = monitor.getsockname()[1]
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "fractal_pu.cli", "--headless", "--registrar", "127.0.0.1:9",
         "--sessions", "2", "--width", "64", "--height", "64", "--output",
         str(tmp_path / "image.png"), "--report", str(report), "--cspserver",
         f"127.0.0.1:{port}", "--cspinterval", "100", "--identifier", "0x5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        first = None
        while first is None and time.monotonic() < deadline:
            try:
                first = decode_csp(monitor.recv(65535))
            except TimeoutError:
                continue
        assert first is not None and not first.final, "the PU never reported"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
        finals = []
        while True:
            try:
                finals.append(decode_csp(monitor.recv(65535)).final)
            except TimeoutError:
                break
        assert finals and finals[-1], "no FINAL report after SIGINT"
        assert json.loads(report.read_text())["complete"] is False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        monitor.close()
