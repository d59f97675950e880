"""Saving node positions back into scenario files, leaving the rest untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_center.gui.layout_file import LayoutError, save_positions, update_positions
from control_center.scenario_file import load_scenario, loads_scenario

REPO = Path(__file__).resolve().parents[3]

TEXT = """# my lab
[scenario]
name = "t"

[[components]]
name = "PR-1"   # the first one
kind = "registrar"
position = [20, 25]    # keep this comment

[[components]]
  name = "PE-1"
  kind = "fractal-pe"
"""


def test_positions_replaced_or_added_in_place() -> None:
    out = update_positions(TEXT, {"PR-1": (33.333, 41.0), "PE-1": (70.0, 12.5)})
    assert "position = [33.3, 41]    # keep this comment" in out
    assert '  name = "PE-1"\n  position = [70, 12.5]\n  kind = "fractal-pe"' in out
    # Everything else is byte for byte the same.
    removed = set(TEXT.splitlines()) - set(out.splitlines())
    assert removed == {"position = [20, 25]    # keep this comment"}
    scenario = loads_scenario(out)
    assert scenario.component("PR-1").position == (33.3, 41.0)
    assert scenario.component("PE-1").position == (70.0, 12.5)


def test_unknown_component_is_refused() -> None:
    with pytest.raises(LayoutError, match="PE-9"):
        update_positions(TEXT, {"PE-9": (1.0, 2.0)})


def test_save_into_a_copy_of_the_shipped_scenario(tmp_path: Path) -> None:
    path = tmp_path / "local.toml"
    original = (REPO / "scenarios" / "local.toml").read_text()
    path.write_text(original)
    save_positions(path, {"PE-2": (61.5, 48.0)})
    text = path.read_text()
    assert load_scenario(path).component("PE-2").position == (61.5, 48.0)
    assert len(text.splitlines()) == len(original.splitlines())
    assert [ln for ln in text.splitlines() if ln not in original.splitlines()] == [
        "position = [61.5, 48]"
    ]


def test_only_toml_files(tmp_path: Path) -> None:
    path = tmp_path / "demo.xml"
    path.write_text("<RSerPoolDemoConfigurationRoot/>")
    with pytest.raises(LayoutError, match="TOML"):
        save_positions(path, {"PR-1": (1.0, 1.0)})
