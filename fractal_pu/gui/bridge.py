"""Hands the worker thread's messages to the GUI thread through one queued Qt signal.

The worker calls :meth:`EventBridge.post` (thread-safe); the bridge lives in
the GUI thread, so its ``ready`` signal, emitted from the worker thread, is
delivered there as a queued call. Messages are batched: the signal is emitted
only when the queue was empty, and the GUI takes everything at once, so a
burst of pixel blocks costs one wake-up and one repaint.
"""

from __future__ import annotations

import threading
from collections import deque

from PySide6.QtCore import QObject, Signal

from fractal_pu.gui.runner import RunnerMessage


class EventBridge(QObject):
    ready = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._queue: deque[RunnerMessage] = deque()

    def post(self, message: RunnerMessage) -> None:
        """Any thread: queue ``message`` and wake the GUI thread if it is not awake yet."""
        with self._lock:
            wake = not self._queue
            self._queue.append(message)
        if wake:
            self.ready.emit()

    def take_all(self) -> list[RunnerMessage]:
        """GUI thread: everything queued so far, in order."""
        with self._lock:
            messages = list(self._queue)
            self._queue.clear()
        return messages
