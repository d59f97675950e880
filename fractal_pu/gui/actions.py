"""The viewer's actions: menu entries, keys and the image's right-click menu.

Keys (listed in ``fractal-pu --help`` too): N next image, F full screen,
O overlay, G grid decorations; saving and quitting need Ctrl (Ctrl+S,
Ctrl+Q), so a key meant for another window cannot throw work away. They are
window-wide shortcuts, so they keep working in full screen with the menu bar
hidden.
The Sessions submenu offers rsplib's counts; picking one restarts the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from fractal_pu.gui.options import SESSION_CHOICES

# Where rsplib's menu puts separators between the session counts.
_SESSION_BREAKS = {1, 8, 100}


@dataclass
class ViewerActions:
    next_image: QAction
    save_image: QAction
    full_screen: QAction
    overlay: QAction
    grid: QAction
    show_failovers: QAction
    show_sessions: QAction
    quit: QAction
    sessions: dict[int, QAction]
    sessions_menu: QMenu


def _action(
    window: QMainWindow, text: str, key: str | None, slot: Callable[..., object]
) -> QAction:
    action = QAction(text, window)
    if key is not None:
        action.setShortcut(QKeySequence(key))
    action.triggered.connect(slot)
    window.addAction(action)  # window-wide shortcut, also without a visible menu bar
    return action


def _toggle(
    window: QMainWindow, text: str, key: str | None, checked: bool, slot: Callable[[bool], object]
) -> QAction:
    action = QAction(text, window)
    action.setCheckable(True)
    action.setChecked(checked)
    if key is not None:
        action.setShortcut(QKeySequence(key))
    action.toggled.connect(slot)
    window.addAction(action)
    return action


def build_actions(
    window: QMainWindow,
    *,
    on_next: Callable[[], object],
    on_save: Callable[[], object],
    on_full_screen: Callable[[bool], object],
    on_overlay: Callable[[bool], object],
    on_grid: Callable[[bool], object],
    on_colouring: Callable[[bool], object],
    on_sessions: Callable[[int], object],
    on_quit: Callable[[], object],
    sessions: int,
    overlay: bool,
    show_failovers: bool,
    show_sessions: bool,
    full_screen: bool,
) -> ViewerActions:
    sessions_menu = QMenu("&Sessions", window)
    group = QActionGroup(window)
    group.setExclusive(True)
    session_actions: dict[int, QAction] = {}
    for count in SESSION_CHOICES:
        action = QAction(str(count), window)
        action.setCheckable(True)
        action.setChecked(count == sessions)
        action.triggered.connect(lambda _checked=False, n=count: on_sessions(n))
        group.addAction(action)
        sessions_menu.addAction(action)
        if count in _SESSION_BREAKS:
            sessions_menu.addSeparator()
        session_actions[count] = action
    return ViewerActions(
        next_image=_action(window, "&Next image", "N", lambda: on_next()),
        save_image=_action(window, "&Save image", "Ctrl+S", lambda: on_save()),
        full_screen=_toggle(window, "&Full screen", "F", full_screen, on_full_screen),
        overlay=_toggle(window, "PE identity &overlay", "O", overlay, on_overlay),
        grid=_toggle(window, "Session &grid and labels", "G", True, on_grid),
        show_failovers=_toggle(window, "Show &failovers", None, show_failovers, on_colouring),
        show_sessions=_toggle(window, "Show s&essions", None, show_sessions, on_colouring),
        quit=_action(window, "&Quit", "Ctrl+Q", lambda: on_quit()),
        sessions=session_actions,
        sessions_menu=sessions_menu,
    )


def fill_menu(menu: QMenu, actions: ViewerActions) -> None:
    """The entries in rsplib's order, with the additions after them."""
    menu.addAction(actions.show_failovers)
    menu.addAction(actions.show_sessions)
    menu.addMenu(actions.sessions_menu)
    menu.addSeparator()
    for action in (
        actions.next_image,
        actions.save_image,
        actions.overlay,
        actions.grid,
        actions.full_screen,
    ):
        menu.addAction(action)
    menu.addSeparator()
    menu.addAction(actions.quit)
