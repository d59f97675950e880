"""The viewer's main window: image, statistics dock, status bar, menus and the image cycle.

Image cycle (rsplib's, plus its missing pieces): 100 ms after the window is
shown the first image starts at the image area's size. When every cell has
ended the status bar says "image completed" (or "image calculation failed")
and counts ``inter_image_time`` seconds down, then the next parameter file is
drawn. Next image (N) skips the countdown; choosing a session count abandons
the image and starts it again. Resizing the window keeps the image being
computed (it is drawn scaled to the window); the next image has the new size.
(rsplib throws the image away on every resize.) With ``image_storage_prefix`` every finished
image is saved as ``P-NNNNNN.png``.

The GUI thread only renders: sessions run in the engine's worker thread
(fractal_pu.gui.runner), whose messages arrive through the queued signal of
fractal_pu.gui.bridge. PNG files are written by a background writer thread.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSizePolicy,
)

from fractal_pu.engine import ImageDone
from fractal_pu.gui.actions import ViewerActions, build_actions, fill_menu
from fractal_pu.gui.bridge import EventBridge
from fractal_pu.gui.image_widget import ImageWidget
from fractal_pu.gui.model import ViewerModel
from fractal_pu.gui.options import ViewerOptions, storage_path
from fractal_pu.gui.runner import EngineRunner, ImageFailed, Tagged
from fractal_pu.gui.stats_panel import StatsPanel
from fractal_pu.png import write_png

log = logging.getLogger("fractal_pu.gui")

FIRST_IMAGE_DELAY_MS = 100
STATS_REFRESH_MS = 200
SCREENSHOT_SETTLE_MS = 150
STATS_WIDTH = 440


class ViewerWindow(QMainWindow):
    def __init__(self, options: ViewerOptions, *, runner: EngineRunner | None = None) -> None:
        super().__init__()
        self.options = options
        pool = options.pool
        self.setWindowTitle(options.caption)
        self.sessions = pool.sessions
        self.model = ViewerModel(
            show_failovers=pool.show_failovers,
            show_sessions=pool.show_sessions,
            pe_names=pool.pe_names,
        )
        self.bridge = EventBridge(self)
        self.bridge.ready.connect(self._drain)
        self.runner = runner or EngineRunner(pool, self.bridge.post)
        self.generation = 0
        #: Size the current image was requested at.
        self.requested_size: QSize | None = None
        self.images_finished = 0
        self.images_stored = 0
        self.saved: list[Path] = []
        self._countdown = 0
        self._phase = "Welcome to the fractal pool user!"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fractal-pu-png")
        self._pending_writes: list[Future[Path]] = []
        self._closing = False
        self._sized = False

        self.image_widget = ImageWidget(self.model, pool.width, pool.height)
        self.image_widget.overlay_on = options.overlay
        self.image_widget.resized.connect(self._on_resized)
        self.image_widget.customContextMenuRequested.connect(self._context_menu)
        self.setCentralWidget(self.image_widget)

        self.stats = StatsPanel(self.model)
        # In a scroll area, the panel's growing texts never resize the window (which
        # would resize the image area and restart the image).
        scroller = QScrollArea()
        scroller.setWidgetResizable(True)
        scroller.setWidget(self.stats)
        dock = QDockWidget("Statistics", self)
        dock.setObjectName("statistics")
        dock.setWidget(scroller)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.resizeDocks([dock], [STATS_WIDTH], Qt.Orientation.Horizontal)
        self.stats_dock = dock

        self.message_label = QLabel(self._phase)
        self.message_label.setMinimumWidth(40)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.pe_label = QLabel("")
        self.progress_label = QLabel("")
        self.registrar_label = QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.message_label, 1)
        for label in (self.pe_label, self.progress_label, self.registrar_label):
            bar.addPermanentWidget(label)

        self.actions_: ViewerActions = build_actions(
            self,
            on_next=self.next_image,
            on_save=self.save_image,
            on_full_screen=self.set_full_screen,
            on_overlay=self.set_overlay,
            on_grid=self.set_grid,
            on_colouring=lambda _checked: self._colouring_changed(),
            on_sessions=self.set_sessions,
            on_quit=self.close,
            sessions=self.sessions,
            overlay=options.overlay,
            show_failovers=pool.show_failovers,
            show_sessions=pool.show_sessions,
            full_screen=options.fullscreen,
        )
        menu = self.menuBar().addMenu("&Image")
        fill_menu(menu, self.actions_)
        self.context_menu = QMenu(self)
        fill_menu(self.context_menu, self.actions_)

        self._restart_timer = QTimer(self)
        self._restart_timer.setSingleShot(True)
        self._restart_timer.timeout.connect(self.start_image)
        self._countdown_timer = QTimer(self)
        self._countdown_timer.setInterval(1000)
        self._countdown_timer.timeout.connect(self._tick_countdown)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(STATS_REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._refresh_timer.start()
        if options.exit_after is not None:
            QTimer.singleShot(round(options.exit_after * 1000), self._exit_after)

        self.runner.start()
        self._schedule_restart(FIRST_IMAGE_DELAY_MS)
        self.refresh()

    # ------------------------------------------------------------------ image cycle

    def image_size(self) -> QSize:
        return self.image_widget.size()

    def start_image(self) -> None:
        """Abandon the current image (if any) and compute the next one at the current size."""
        if self._closing:
            return
        self._restart_timer.stop()
        self._countdown_timer.stop()
        self.generation += 1
        size = self.image_size()
        self.requested_size = QSize(size)
        self.model.expect(self.generation)
        self._phase = (
            "starting job distribution ..." if self.sessions > 1 else ("requesting calculation ...")
        )
        self.runner.request_image(self.generation, size.width(), size.height(), self.sessions)
        self.refresh()

    def next_image(self) -> None:
        self.start_image()

    def set_sessions(self, sessions: int) -> None:
        """rsplib: choosing a session count aborts the image and restarts with it."""
        self.sessions = sessions
        action = self.actions_.sessions.get(sessions)
        if action is not None and not action.isChecked():
            action.setChecked(True)
        self.start_image()

    def _schedule_restart(self, delay_ms: int) -> None:
        self._restart_timer.start(delay_ms)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized and not self.isFullScreen():
            # The first image has the requested size: grow the window around it.
            self._sized = True
            extra = self.size() - self.image_widget.size()
            self.resize(self.image_widget.sizeHint() + extra)

    def _on_resized(self, size: QSize) -> None:
        if self.requested_size is None and self._restart_timer.isActive():
            # Before the first image: it starts once the window has its size.
            self._schedule_restart(FIRST_IMAGE_DELAY_MS)

    # ------------------------------------------------------------------ messages

    def _drain(self) -> None:
        now = time.monotonic()
        finished = False
        for message in self.bridge.take_all():
            self.model.apply(message, now)
            if message_generation(message) != self.generation:
                continue
            if isinstance(message, ImageFailed) or (
                isinstance(message, Tagged) and isinstance(message.event, ImageDone)
            ):
                finished = True
        self.image_widget.update()
        if finished:
            self._image_finished()

    def _image_finished(self) -> None:
        image = self.model.image
        if image is None:
            return
        self.images_finished += 1
        if image.complete and self.options.image_storage_prefix:
            self.images_stored += 1
            target = storage_path(self.options.image_storage_prefix, self.images_stored)
            self.write_png(target, image.base.copy())
        outcome = (
            f"image completed in {image.elapsed(time.monotonic()):.2f} s"
            if image.complete
            else "image calculation failed" + (f" ({image.error})" if image.error else "")
        )
        log.info(
            "image %d: %s, %d failovers, %d pixels computed twice",
            image.run,
            outcome,
            image.failover_count,
            image.twice_count,
        )
        self._phase = outcome
        if self.options.screenshot is not None and self.options.exit_after is None:
            QTimer.singleShot(SCREENSHOT_SETTLE_MS, self._screenshot_and_quit)
        self._countdown = max(0, round(self.options.inter_image_time))
        if self._countdown == 0:
            self._schedule_restart(0)
        else:
            self._countdown_timer.start()
        self.refresh()

    def _tick_countdown(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown_timer.stop()
            self.start_image()
        self.refresh()

    # ------------------------------------------------------------------ status

    def status_message(self) -> str:
        now = time.monotonic()
        problem = self.model.problem(now, self.options.pool.pool_handle)
        if problem is not None:
            return problem
        image = self.model.image
        if image is not None and image.generation == self.generation and image.done:
            if self._countdown_timer.isActive():
                return f"{self._phase} -- next image in {self._countdown} s"
            return self._phase
        if image is not None and image.generation == self.generation:
            return self.model.session_text()
        return self._phase

    def refresh(self) -> None:
        now = time.monotonic()
        self.message_label.setText(self.status_message())
        pes = self.model.current_pes()
        self.pe_label.setText(
            "PE " + ", ".join(self.model.pe_name(pe) for pe in pes) if pes else "no PE"
        )
        image = self.model.image
        current = image is not None and image.generation == self.generation
        progress = image.progress * 100 if current and image is not None else 0.0
        self.progress_label.setText(f"{progress:.0f} %")
        self.registrar_label.setText(self.model.registrar_text())
        self.stats.refresh(now)

    # ------------------------------------------------------------------ actions

    def set_overlay(self, on: bool) -> None:
        self.image_widget.overlay_on = on
        self.image_widget.update()

    def set_grid(self, on: bool) -> None:
        self.image_widget.grid_on = on
        self.image_widget.update()

    def _colouring_changed(self) -> None:
        self.model.set_colouring(
            show_failovers=self.actions_.show_failovers.isChecked(),
            show_sessions=self.actions_.show_sessions.isChecked(),
        )
        self.image_widget.update()

    def set_full_screen(self, on: bool) -> None:
        if on:
            self.menuBar().hide()
            self.showFullScreen()
        else:
            self.menuBar().show()
            self.showNormal()

    def save_image(self, path: Path | None = None) -> Future[Path] | None:
        """Save the picture as shown (overlay or not, without the grid) as PNG.

        Without ``path``: ``P-snapshot-NNNNNN.png`` next to the storage prefix, or
        ``fractal-pu-snapshot-NNNNNN.png`` in the current directory (first free number).
        """
        rgb = self.image_widget.picture()
        if rgb is None:
            self.statusBar().showMessage("No image to save yet", 3000)
            return None
        if path is None:
            path = self._snapshot_path()
        return self.write_png(path, rgb.copy())

    def _snapshot_path(self) -> Path:
        prefix = self.options.image_storage_prefix or "fractal-pu"
        number = 1
        while True:
            candidate = Path(f"{prefix}-snapshot-{number:06d}.png")
            if not candidate.exists() and candidate not in self.saved:
                return candidate
            number += 1

    def write_png(self, path: Path, rgb: np.ndarray) -> Future[Path]:
        """Write in the background (PNG compression is not the GUI thread's job)."""

        def write() -> Path:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(path, rgb)
            return path

        future = self._writer.submit(write)
        self.saved.append(path)
        self._pending_writes.append(future)
        future.add_done_callback(_report_write)
        return future

    def flush_writes(self, timeout: float = 10.0) -> list[Path]:
        """Wait for the PNG files queued so far; their paths (errors raise)."""
        pending, self._pending_writes = self._pending_writes, []
        return [future.result(timeout) for future in pending]

    def _context_menu(self, position: QPoint) -> None:
        self.context_menu.popup(self.image_widget.mapToGlobal(position))

    # ------------------------------------------------------------------ leaving

    def _exit_after(self) -> None:
        if self.options.screenshot is not None:
            self._screenshot_and_quit()
        else:
            self.close()

    def _screenshot_and_quit(self) -> None:
        if self._closing:
            return
        target = self.options.screenshot
        if target is not None:
            self.refresh()
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.grab().save(str(target)):
                log.info("window grab saved as %s", target)
            else:
                log.error("could not save the window grab as %s", target)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the sessions (FINAL status report), finish writing files. Idempotent."""
        if self._closing:
            return
        self._closing = True
        for timer in (self._restart_timer, self._countdown_timer, self._refresh_timer):
            timer.stop()
        self.runner.stop()
        self._writer.shutdown(wait=True)


def message_generation(message: object) -> int | None:
    return getattr(message, "generation", None)


def _report_write(future: Future[Path]) -> None:
    error = future.exception()
    if error is not None:
        log.error("could not save an image: %s", error)
    else:
        log.info("image saved as %s", future.result())
