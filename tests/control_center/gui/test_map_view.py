"""The map without processes: background aspect, dragging and saving, presenter keys."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from control_center.gui.engine import EngineBridge
from control_center.gui.main_window import MainWindow
from control_center.gui.map_view import MapView
from control_center.gui.screenshot import save_image
from control_center.gui.view_model import ViewModel
from control_center.scenario_file import load_scenario

from .conftest import REPO, scenario_copy

BACKGROUND = REPO / "assets" / "maps" / "demo-zones.svg"


def window_on(path: Path) -> MainWindow:
    window = MainWindow(EngineBridge(load_scenario(path)))  # engine not started
    window.quit_on_close = False
    return window


def test_background_keeps_its_aspect(qtbot, tmp_path: Path, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    path = scenario_copy(tmp_path)
    lines = [x for x in path.read_text().splitlines() if not x.startswith("background =")]
    text = "\n".join(lines).replace("[scenario]", f'[scenario]\nbackground = "{BACKGROUND}"', 1)
    path.write_text(text)
    view = MapView(ViewModel(load_scenario(path)), load_scenario(path).background)
    qtbot.addWidget(view)
    assert view.background.svg is not None
    rect = view.map_scene.sceneRect()
    assert abs(rect.height() / rect.width() - 1000 / 1600) < 1e-6
    view.show()
    qtbot.waitExposed(view)
    for size in ((900, 400), (600, 900)):
        view.resize(*size)
        QTest.qWait(20)  # the resize event re-fits the scene
        port = view.viewport().size()
        shown = view.map_rect()
        legend = view.legend_rect()
        assert abs(shown.height() / shown.width() - 1000 / 1600) < 0.02, (size, shown)
        assert shown.width() <= port.width() + 2 and shown.height() <= port.height() + 2
        # The legend has a band of its own below the map: it covers no part of it.
        assert not shown.intersects(legend), (size, shown, legend)
        # The map fills one dimension: as large as the window (less the legend) allows.
        free_height = port.height() - legend.height() - 20
        assert shown.width() >= port.width() - 4 or shown.height() >= free_height - 4
    save_image(view.render_image(1000), artifacts / "map-background.png")


def test_drag_and_save_layout_writes_the_scenario(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = scenario_copy(tmp_path)
    before = path.read_text()
    window = window_on(path)
    qtbot.addWidget(window)
    window.show()
    item = window.map.nodes["PE-2"]
    other_link_count = len(window.map.links)
    item.setPos(window.map.to_scene((40.0, 60.0)))
    assert item.on_released is not None
    item.on_released(item)  # what releasing the mouse after a drag does
    assert window.layout_dirty
    assert window.save_layout()
    assert not window.layout_dirty
    saved = load_scenario(path)
    assert saved.component("PE-2").position == (40.0, 60.0)
    assert saved.component("PE-1").position == load_scenario(path).component("PE-1").position
    changed = [ln for ln in path.read_text().splitlines() if ln not in before.splitlines()]
    assert changed == ["position = [40, 60]"]
    assert len(window.map.links) == other_link_count


def test_presenter_keys_select_pool_elements(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = window_on(scenario_copy(tmp_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.presenter.enter()
    QTest.qWait(50)
    assert window.presenter.active
    assert not window.toolbar.isVisible()
    assert window.map.nodes["PE-1"].show_hotkey and window.map.nodes["PE-1"].hotkey == "1"
    QTest.keyClick(window, Qt.Key.Key_2)
    assert window.current == "PE-2"
    assert window.map.selected() == "PE-2"
    QTest.keyClick(window, Qt.Key.Key_K)  # no engine: refused with a message, nothing breaks
    assert "cannot kill PE-2" in window.stage.flash_text
    QTest.keyClick(window, Qt.Key.Key_9)
    assert "no pool element 9" in window.stage.flash_text
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presenter.active and window.toolbar.isVisible()
    assert not window.map.nodes["PE-1"].show_hotkey
    # The hotkeys work outside presentation mode too (the menus list them); what they
    # did goes to the status bar there.
    QTest.keyClick(window, Qt.Key.Key_1)
    assert window.current == "PE-1"
    assert "PE-1 selected" in window.statusBar().currentMessage()
    kill = window.component_actions["kill"]
    assert kill.text().endswith("\tK") and kill.iconText() == "Kill (SIGKILL)"
    QTest.keyClick(window, Qt.Key.Key_X)  # nothing serves anybody: said so, nothing killed
    assert "no pool element serves" in window.statusBar().currentMessage()
