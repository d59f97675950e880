"""Full-screen presentation mode: only the map, big, driven by single-key hotkeys.

1-9  select a pool element        K  kill it (SIGKILL)      S  stop it (SIGINT)
H    hang / resume it             U  unplug / replug its host (lab scenarios)
R    restart it                   A  start all              Esc  leave
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QWidget

HINT = (
    "1-9 select a PE · K kill · S stop · H hang/resume · U unplug · R restart · A start all · Esc"
)


class Presenter(QObject):
    """Switches ``window`` into and out of presentation mode and owns its hotkeys."""

    def __init__(
        self,
        window: QMainWindow,
        *,
        select: Callable[[int], None],
        act: Callable[[str], None],
        on_change: Callable[[bool], None],
    ) -> None:
        super().__init__(window)
        self.window = window
        self.active = False
        self._select = select
        self._act = act
        self._on_change = on_change
        self._hidden: list[QWidget] = []
        self._was_maximized = False
        self.shortcuts: dict[str, QShortcut] = {}
        for digit in range(1, 10):
            self._add(str(digit), partial(self._select, digit))
        for key, action in (
            ("K", "kill"),
            ("S", "stop"),
            ("H", "hang-toggle"),
            ("U", "unplug-toggle"),
            ("R", "restart"),
            ("A", "start-all"),
        ):
            self._add(key, partial(self._act, action))
        self._add("Escape", self.leave)

    def _add(self, key: str, slot: Callable[[], None]) -> None:
        shortcut = QShortcut(QKeySequence(key), self.window)
        shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        shortcut.setEnabled(False)
        shortcut.activated.connect(slot)
        self.shortcuts[key] = shortcut

    def toggle(self) -> None:
        if self.active:
            self.leave()
        else:
            self.enter()

    def enter(self) -> None:
        if self.active:
            return
        self.active = True
        window = self.window
        self._was_maximized = window.isMaximized()
        self._hidden = [
            w
            for w in (window.menuBar(), window.statusBar(), *self._bars_and_docks())
            if w is not None and w.isVisible()
        ]
        for widget in self._hidden:
            widget.hide()
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(True)
        window.showFullScreen()
        self._on_change(True)

    def leave(self) -> None:
        if not self.active:
            return
        self.active = False
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
        for widget in self._hidden:
            widget.show()
        self._hidden = []
        if self._was_maximized:
            self.window.showMaximized()
        else:
            self.window.showNormal()
        self._on_change(False)

    def _bars_and_docks(self) -> list[QWidget]:
        from PySide6.QtWidgets import QDockWidget, QToolBar

        return [
            *self.window.findChildren(QToolBar),
            *self.window.findChildren(QDockWidget),
        ]
