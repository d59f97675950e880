"""Single-key hotkeys, and full-screen presentation mode (the map and the pictures, big).

The hotkeys work in the normal window too (the menus list them next to their
entries); Esc only leaves presentation mode:

1-9  select a pool element        K  kill it (SIGKILL)      S  stop it (SIGINT)
H    hang / resume it             U  unplug / replug its host (lab scenarios)
R    restart it                   X  kill a PE that serves a pool user now
A    start all                    Esc  leave

Menus, toolbar, status bar and every dock but the pool users' pictures are
hidden. The scenario's name and the hotkeys are shown by :class:`Stage` in
bars of their own above and below the map, so they never cover it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

HINT = (
    "1-9 select a PE · K kill · X kill a serving PE · S stop · H hang/resume · U unplug · "
    "R restart · A start all · Esc leave"
)
FLASH_STYLE = (
    "background: #1d2430; color: white; font-size: 15px; padding: 6px; border-radius: 6px;"
)
FLASH_STYLE_EMPTY = "background: transparent; font-size: 15px; padding: 6px;"
#: Docks whose object name starts with this stay visible while presenting.
KEPT_DOCK_PREFIX = "picture-"


#: Hotkey of each action, as the menus show it.
ACTION_KEYS: dict[str, str] = {
    "kill": "K",
    "stop": "S",
    "hang": "H",
    "resume": "H",
    "unplug": "U",
    "replug": "U",
    "restart": "R",
    "kill-serving": "X",
    "start-all": "A",
}


class Presenter(QObject):
    """Owns the window's hotkeys and switches it into and out of presentation mode."""

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
            ("X", "kill-serving"),
            ("A", "start-all"),
        ):
            self._add(key, partial(self._act, action))
        self._add("Escape", self.leave)

    def _add(self, key: str, slot: Callable[[], None]) -> None:
        shortcut = QShortcut(QKeySequence(key), self.window)
        # The window's keys (not the viewer windows' of the pool users).
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.setEnabled(key != "Escape")
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
        self.shortcuts["Escape"].setEnabled(True)
        window.showFullScreen()
        self._on_change(True)

    def leave(self) -> None:
        if not self.active:
            return
        self.active = False
        self.shortcuts["Escape"].setEnabled(False)
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
            *(
                d
                for d in self.window.findChildren(QDockWidget)
                if not d.objectName().startswith(KEPT_DOCK_PREFIX)
            ),
        ]


class Stage(QWidget):
    """The window's centre: the map, with a caption above and the hotkeys below it.

    The bars are shown only while presenting; being widgets of their own, they
    take their room from the map instead of covering it.
    """

    def __init__(self, map_view: QWidget, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.map_view = map_view
        self.caption = QLabel(caption)
        self.caption.setObjectName("caption")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("font-size: 20px; font-weight: bold; padding: 6px;")
        self.flash_label = QLabel("")
        self.flash_label.setObjectName("flash")
        self.flash_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.flash_label.setWordWrap(True)
        self.flash_label.setStyleSheet(FLASH_STYLE_EMPTY)
        self.hint = QLabel(HINT)
        self.hint.setObjectName("hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #1d2430; font-size: 13px; padding: 4px;")
        # Fixed heights: a new message must not resize the map (a re-fit repaints it all).
        self.flash_label.setFixedHeight(self.flash_label.fontMetrics().lineSpacing() * 2 + 24)
        self.hint.setFixedHeight(self.hint.fontMetrics().lineSpacing() * 2 + 12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(map_view, 1)
        layout.addWidget(self.flash_label)
        layout.addWidget(self.hint)
        self.set_presenting(False)

    @property
    def flash_text(self) -> str:
        return self.flash_label.text()

    def set_presenting(self, presenting: bool) -> None:
        self.caption.setVisible(presenting)
        self.hint.setVisible(presenting)
        self.flash_label.setVisible(presenting)

    def flash(self, text: str) -> None:
        """A short message for the audience (presentation mode; its bar keeps its place)."""
        self.flash_label.setText(text)
        self.flash_label.setStyleSheet(FLASH_STYLE if text else FLASH_STYLE_EMPTY)
