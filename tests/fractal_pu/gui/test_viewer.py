"""The viewer window against a real registrar and real fractal-pe processes (offscreen Qt).

Each test looks at what a person would see: the picture (compared pixel by
pixel with the reference iteration counts in the same palette), the
statistics panel and the status bar. Screenshots of the states go to
test-artifacts/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from fractal_pu.gui.image_widget import rgb_of
from fractal_pu.gui.options import viewer_options
from fractal_pu.gui.viewer import ViewerWindow
from fractal_pu.options import build_parser
from fractal_pu.palette import HUE_STEPS, PALETTE, colorize, hatch, palette_offsets
from fractal_pu.png import decode_png_rgb
from rsplib.wire.csp import ComponentGroup, component_id, decode_csp
from tests.fractal_pu.gui.conftest import FSF, POOL, REPO, PeFactory, reference_values
from tests.registrar.service_helpers import RegistrarProcess

IMAGE_TIMEOUT_MS = 60_000
OpenViewer = Callable[..., ViewerWindow]


@pytest.fixture
def open_viewer(qtbot: QtBot, registrar: RegistrarProcess) -> Iterator[OpenViewer]:
    windows: list[ViewerWindow] = []

    def open_window(*extra: str, registrar_text: str | None = None) -> ViewerWindow:
        address = registrar_text or f"{registrar.asap[0]}:{registrar.asap[1]}"
        args = [
            "--registrar", address,
            "--transport", "tcp",
            "--poolhandle", POOL,
            "--config", str(FSF),
            "--interimagetime", "600",
            "--recvtimeout", "3000",
            "--heartbeat-interval", "250",
            *extra,
        ]  # fmt: skip
        window = ViewerWindow(viewer_options(build_parser().parse_args(args)))
        windows.append(window)
        qtbot.addWidget(window)
        window.show()
        return window

    try:
        yield open_window
    finally:
        for window in windows:
            window.shutdown()


def wait_finished(qtbot: QtBot, window: ViewerWindow, after_generation: int = 0) -> None:
    def finished() -> bool:
        image = window.model.image
        return (
            image is not None
            and image.generation == window.generation > after_generation
            and image.done
        )

    qtbot.waitUntil(finished, timeout=IMAGE_TIMEOUT_MS)


def wait_pixels(qtbot: QtBot, window: ViewerWindow) -> None:
    def arriving() -> bool:
        image = window.model.image
        return image is not None and image.generation == window.generation and image.received > 0

    qtbot.waitUntil(arriving, timeout=IMAGE_TIMEOUT_MS)


def shown(window: ViewerWindow) -> np.ndarray:
    return rgb_of(window.image_widget.image())


def assert_matches_reference(window: ViewerWindow, sessions: int) -> np.ndarray:
    """The finished picture (overlay off) equals the palette applied to the reference counts,
    with the pixels computed twice hatched."""
    overlay = window.actions_.overlay.isChecked()
    window.actions_.overlay.setChecked(False)
    image = window.model.image
    assert image is not None and image.complete, image and image.error
    assert len(image.cells) == sessions
    reference = reference_values(image.width, image.height, sessions)
    assert np.array_equal(image.values, reference)
    offsets = palette_offsets(image.failovers, run=image.run, session_index=image.cell_of)
    assert np.array_equal(shown(window), hatch(colorize(reference, offsets), image.twice))
    # Without the palette shifts the picture is the plain palette of the counts.
    window.actions_.show_failovers.setChecked(False)
    window.actions_.show_sessions.setChecked(False)
    assert np.array_equal(shown(window), hatch(PALETTE[reference % HUE_STEPS], image.twice))
    window.actions_.show_failovers.setChecked(True)
    window.actions_.show_sessions.setChecked(True)
    window.actions_.overlay.setChecked(overlay)
    return reference


def screenshot(window: ViewerWindow, path: Path) -> None:
    window.refresh()
    window.image_widget.repaint()
    assert window.grab().save(str(path))


def test_image_completes_matches_reference_and_saves(
    qtbot: QtBot, start_pe: PeFactory, open_viewer: OpenViewer, tmp_path: Path, artifacts: Path
) -> None:
    start_pe(0xA1, "--block-delay", "5")
    start_pe(0xA2, "--block-delay", "5")
    prefix = tmp_path / "stored"
    window = open_viewer(
        "--sessions", "4", "--width", "320", "--height", "200",
        "--imagestorageprefix", str(prefix),
    )  # fmt: skip
    wait_finished(qtbot, window)
    image = window.model.image
    assert image is not None
    assert (image.width, image.height) == (320, 200)
    assert_matches_reference(window, 4)
    assert sum(image.pixels_per_pe().values()) == 320 * 200
    assert set(image.pixels_per_pe()) <= {0xA1, 0xA2}
    assert "image completed" in window.message_label.text()
    assert window.progress_label.text() == "100 %"
    assert "Registrar 127.0.0.1:" in window.registrar_label.text()
    screenshot(window, artifacts / "viewer-complete.png")

    # --imagestorageprefix: the finished image as P-000001.png.
    (stored,) = window.flush_writes()
    assert stored == Path(f"{prefix}-000001.png")
    assert np.array_equal(decode_png_rgb(stored.read_bytes()), image.base)

    # A bare S or Q does nothing (a key meant for another window must not save or quit);
    # Ctrl+S saves what is shown (here with the overlay, O) without the grid decorations.
    window.activateWindow()
    QTest.qWaitForWindowActive(window, 2000)
    QTest.keyClick(window, Qt.Key.Key_O)
    assert window.actions_.overlay.isChecked() and window.image_widget.overlay_on
    QTest.keyClick(window, Qt.Key.Key_S)
    QTest.keyClick(window, Qt.Key.Key_Q)
    assert window.flush_writes() == [] and window.isVisible()
    QTest.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    saved = window.flush_writes()
    (snapshot,) = saved
    assert snapshot.name == "stored-snapshot-000001.png"
    assert np.array_equal(decode_png_rgb(snapshot.read_bytes()), shown(window))
    assert not np.array_equal(shown(window), image.base)  # the overlay differs from the fractal
    screenshot(window, artifacts / "viewer-complete-overlay.png")


def test_sigkill_of_a_serving_pe_fails_over_and_the_image_still_matches(
    qtbot: QtBot, start_pe: PeFactory, open_viewer: OpenViewer, artifacts: Path
) -> None:
    # A cookie every 4 blocks: killed after 6 blocks, the cell resumes from a cookie.
    pes = {
        i: start_pe(i, "--block-delay", "50", "--cookie-max-packets", "4")
        for i in (0xB1, 0xB2, 0xB3)
    }
    window = open_viewer("--sessions", "4", "--width", "360", "--height", "300", "--overlay")
    wait_pixels(qtbot, window)
    image = window.model.image
    assert image is not None
    serving = next(c for c in image.cells if c.current_pe in pes and not c.done)
    victim = serving.current_pe
    assert victim is not None
    qtbot.waitUntil(lambda: serving.received >= 6 * 324, timeout=IMAGE_TIMEOUT_MS)
    assert serving.current_pe == victim and not serving.done
    pes[victim].kill()
    qtbot.waitUntil(lambda: serving.failovers >= 1, timeout=IMAGE_TIMEOUT_MS)
    qtbot.waitUntil(lambda: serving.resume_points != [], timeout=IMAGE_TIMEOUT_MS)
    screenshot(window, artifacts / "viewer-failover-in-progress.png")
    wait_finished(qtbot, window)

    assert_matches_reference(window, 4)
    assert image.failover_count >= 1
    assert serving.pes_used[0] == victim and len(serving.pes_used) >= 2
    successor = serving.pes_used[-1]
    assert successor != victim and successor in pes
    assert serving.last_failover_ms is not None and serving.last_failover_ms > 0
    window.refresh()
    row = window.stats.cell_row(serving.index)
    assert int(row["Failovers"]) >= 1
    assert f"${victim:08x}" in row["PEs used"] and f"${successor:08x}" in row["PEs used"]
    assert float(row["Last msg→resumed ms"]) > 0
    legend = window.stats.legend_names()
    assert f"${victim:08x}" in legend and f"${successor:08x}" in legend
    # The overlay tints the cell's pixels in both PEs' colours.
    cell = serving.rect
    slots = np.unique(image.pe_slot[cell.y : cell.y + cell.h, cell.x : cell.x + cell.w])
    entries = window.model.legend
    assert {entries.entry(victim).slot, entries.entry(successor).slot} <= set(slots.tolist())
    screenshot(window, artifacts / "viewer-failover-overlay.png")
    window.actions_.overlay.setChecked(False)
    screenshot(window, artifacts / "viewer-failover.png")


def test_session_change_restarts_and_resize_keeps_the_image(
    qtbot: QtBot,
    start_pe: PeFactory,
    open_viewer: OpenViewer,
    artifacts: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    for identifier in (0xD1, 0xD2, 0xD3):
        start_pe(identifier, "--block-delay", "30")
    window = open_viewer("--sessions", "4", "--width", "200", "--height", "120")
    wait_pixels(qtbot, window)
    first = window.generation

    window.actions_.sessions[9].trigger()
    assert window.sessions == 9 and window.generation > first
    wait_finished(qtbot, window, first)
    assert_matches_reference(window, 9)
    screenshot(window, artifacts / "viewer-sessions-9.png")

    # Resizing keeps the image being computed (drawn scaled); the next one has the new size.
    window.next_image()
    wait_pixels(qtbot, window)
    before = window.generation
    image = window.model.image
    assert image is not None
    old_size = (image.width, image.height)
    window.resize(window.width() + 80, window.height() + 40)
    QTest.qWait(700)
    assert window.generation == before and window.model.image is image
    wait_finished(qtbot, window, before - 1)
    assert_matches_reference(window, 9)
    assert (image.width, image.height) == old_size
    window.next_image()
    qtbot.waitUntil(lambda: window.generation > before, timeout=5000)
    wait_finished(qtbot, window, before)
    image = window.model.image
    assert image is not None
    size = window.image_size()
    assert (image.width, image.height) == (size.width(), size.height()) != old_size
    assert_matches_reference(window, 9)
    screenshot(window, artifacts / "viewer-resized.png")
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not problems, [r.getMessage() for r in problems]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_status_bar_says_when_no_registrar_is_reachable(
    qtbot: QtBot, open_viewer: OpenViewer, artifacts: Path
) -> None:
    window = open_viewer(
        "--sessions", "1", "--registrar-connect-timeout", "200", "--exit-after", "4",
        registrar_text=f"127.0.0.1:{closed_port()}",
    )  # fmt: skip
    qtbot.waitUntil(lambda: "No registrar reachable" in window.message_label.text(), timeout=10_000)
    assert "No registrar" in window.registrar_label.text()
    screenshot(window, artifacts / "viewer-no-registrar.png")
    # F toggles full screen (menu bar hidden); --exit-after closes the window.
    window.activateWindow()
    QTest.qWaitForWindowActive(window, 2000)
    QTest.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(window.isFullScreen, timeout=5000)
    assert window.menuBar().isHidden()
    QTest.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=5000)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)


def test_status_bar_says_when_no_pool_element_is_reachable(
    qtbot: QtBot, open_viewer: OpenViewer, artifacts: Path
) -> None:
    window = open_viewer("--sessions", "4", "--poolhandle", "EmptyViewerTestPool")
    qtbot.waitUntil(
        lambda: (
            "No pool element of pool 'EmptyViewerTestPool' reachable" in window.message_label.text()
        ),
        timeout=10_000,
    )
    assert "Registrar 127.0.0.1:" in window.registrar_label.text()
    screenshot(window, artifacts / "viewer-no-pe.png")


def test_fractal_pu_command_shows_the_viewer_and_saves_a_window_grab(
    start_pe: PeFactory, registrar: RegistrarProcess, tmp_path: Path, artifacts: Path
) -> None:
    start_pe(0xE1, "--max-threads", "9")
    shot = artifacts / "viewer-command-line.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run(
        [
            sys.executable, "-m", "fractal_pu.cli",
            "--registrar", f"{registrar.asap[0]}:{registrar.asap[1]}",
            "--transport", "tcp",
            "--poolhandle", POOL,
            "--config", str(FSF),
            "--sessions", "9",
            "--width", "360", "--height", "225",
            "--caption", "Viewer test",
            "--overlay",
            "--imagestorageprefix", str(tmp_path / "img"),
            "--screenshot", str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "image completed" in done.stderr
    assert shot.read_bytes().startswith(b"\x89PNG")
    stored = decode_png_rgb((tmp_path / "img-000001.png").read_bytes())
    assert stored.shape == (225, 360, 3)


def test_one_session_reports_packets_by_csp_and_the_playlist_moves_on_after_the_countdown(
    qtbot: QtBot, start_pe: PeFactory, open_viewer: OpenViewer
) -> None:
    start_pe(0xF1, "--block-delay", "20")
    monitor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    monitor.bind(("127.0.0.1", 0))
    monitor.settimeout(0.05)
    second = REPO / "assets" / "fsf" / "05-period-four-bulb.fsf"
    try:
        window = open_viewer(
            "--sessions", "1", "--width", "160", "--height", "100",
            "--config", str(second), "--playlist", "--interimagetime", "1",
            "--cspserver", f"127.0.0.1:{monitor.getsockname()[1]}", "--cspinterval", "100",
            "--identifier", "0x4711",
        )  # fmt: skip
        statuses: list[str] = []
        sessions_seen: list[int] = []

        def report_with_packets() -> bool:
            with contextlib.suppress(TimeoutError):
                report = decode_csp(monitor.recv(2048))
                assert report.sender_id == component_id(ComponentGroup.POOL_USER, 0x4711)
                statuses.append(report.status)
                sessions_seen.append(
                    sum(
                        a.receiver_id >> 56 == ComponentGroup.POOL_ELEMENT
                        for a in report.associations
                    )
                )
            return any(s.startswith("Processed packet #") for s in statuses)

        qtbot.waitUntil(report_with_packets, timeout=IMAGE_TIMEOUT_MS)
        assert any(s.endswith("of PE $000000f1") for s in statuses)
        assert max(sessions_seen) == 1  # the session to the PE, as an association
        wait_finished(qtbot, window)
        image = window.model.image
        assert image is not None and image.config_name == FSF.name
        assert "next image in" in window.message_label.text()
        first = window.generation
        qtbot.waitUntil(lambda: window.generation > first, timeout=5000)  # after the countdown
        wait_finished(qtbot, window, first)
        image = window.model.image
        assert image is not None and image.config_name == second.name and image.complete
        assert window.message_label.text().startswith("image completed")
    finally:
        monitor.close()
