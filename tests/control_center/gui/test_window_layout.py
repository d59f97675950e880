"""The window's layout at the sizes a presenter meets: nothing cut off, nothing covered.

Screenshots go to test-artifacts/control_center/; the asserts check the
geometry a person would look at: the toolbar shows every action, the panels
need no horizontal scrolling, the legend has a band of its own below the map,
the pictures sit beside or below the map (never on it), and in presentation
mode the caption and the hotkey bar are outside the map.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton, QWidget

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.gui.screenshot import save_widget
from control_center.scenario_file import load_scenario

from .conftest import REPO, scenario_copy

SIZES = ((1280, 720), (1920, 1080))


def global_rect(widget: QWidget) -> QRect:
    return QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())


def map_rect(window: MainWindow) -> QRect:
    """The map itself (without the legend's band) on the screen."""
    viewport = window.map.viewport()
    inner = window.map.map_rect().toRect()
    return QRect(viewport.mapToGlobal(inner.topLeft()), inner.size())


def legend_rect(window: MainWindow) -> QRect:
    viewport = window.map.viewport()
    inner = window.map.legend_rect().toRect()
    return QRect(viewport.mapToGlobal(inner.topLeft()), inner.size())


def settle(window: MainWindow) -> None:
    for _ in range(5):
        QTest.qWait(40)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_window_reads_at_presenter_sizes(qtbot, tmp_path: Path, artifacts: Path, size) -> None:  # type: ignore[no-untyped-def]
    path = scenario_copy(tmp_path)
    text = path.read_text().replace('"../assets/maps/', f'"{REPO}/assets/maps/')
    path.write_text(text)
    window = MainWindow(EngineBridge(load_scenario(path)))  # no engine: layout only
    window.quit_on_close = False
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    settle(window)
    name = f"{size[0]}x{size[1]}"
    save_widget(window, artifacts / f"layout-{name}.png")

    # Every toolbar action has its own visible button (nothing in an overflow menu).
    for action in window.toolbar.actions():
        if action.isSeparator() or action.text() == "":
            continue
        button = window.toolbar.widgetForAction(action)
        assert isinstance(button, QToolButton) and button.isVisible(), action.text()
        assert window.toolbar.rect().contains(button.geometry()), action.text()
    # The component list's columns fit the panel: no horizontal scrolling.
    window.components_dock.raise_()
    settle(window)
    assert window.components.horizontalScrollBar().maximum() == 0
    # The legend has its band below the map; both lie inside the map view.
    view = global_rect(window.map.viewport())
    the_map, legend = map_rect(window), legend_rect(window)
    assert view.contains(legend) and view.adjusted(-2, -2, 2, 2).contains(the_map)
    assert not the_map.intersects(legend), (the_map, legend)
    # The picture is a dock beside the map (wide window), not on top of it.
    picture = window.picture_docks["PU-1"]
    assert picture.isVisible()
    assert not global_rect(picture).intersects(view)
    assert window.map.width() >= 0.4 * size[0]

    # Presentation mode: map and picture side by side; caption and hotkeys in bars.
    window.presenter.enter()
    # Full screen is the offscreen platform's small screen: show it at the tested size.
    window.showNormal()
    window.resize(*size)
    settle(window)
    save_widget(window, artifacts / f"layout-{name}-presenting.png")
    assert not window.toolbar.isVisible() and not window.timeline_dock.isVisible()
    assert picture.isVisible()
    view = global_rect(window.map.viewport())
    caption = global_rect(window.stage.caption)
    hint = global_rect(window.stage.hint)
    assert window.stage.caption.isVisible() and window.stage.hint.isVisible()
    for bar in (caption, hint):
        assert not bar.intersects(view), (bar, view)
        assert not bar.intersects(global_rect(picture))
    window.stage.flash("kill PE-1")
    settle(window)
    assert not global_rect(window.stage.flash_label).intersects(global_rect(window.map.viewport()))
    assert not map_rect(window).intersects(legend_rect(window))
    assert not global_rect(picture).intersects(global_rect(window.map.viewport()))
    # A wide window puts the picture beside the map, not below it.
    assert global_rect(picture).left() >= global_rect(window.map.viewport()).right()
    window.presenter.leave()


def test_a_tall_window_puts_the_picture_below_the_map(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(EngineBridge(load_scenario(scenario_copy(tmp_path))))
    window.quit_on_close = False
    qtbot.addWidget(window)
    window.resize(1100, 1300)
    window.show()
    qtbot.waitExposed(window)
    settle(window)
    picture = global_rect(window.picture_docks["PU-1"])
    view = global_rect(window.map.viewport())
    assert picture.top() >= view.bottom() and not picture.intersects(view)
    # Back to a wide window: beside the map again.
    window.resize(1800, 1000)
    settle(window)
    picture = global_rect(window.picture_docks["PU-1"])
    view = global_rect(window.map.viewport())
    assert picture.left() >= view.right() and not picture.intersects(view)
