"""rserpooldemo XML import: what is taken over, what is skipped, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_center.scenario import ComponentKind
from control_center.xml_import import XmlImportError, import_xml, load_any
from rsplib.wire.csp import ComponentGroup, component_id

# Written for these tests in the structure of rserpooldemo's scenario files.
DEMO = """\
<?xml version="1.0" encoding="UTF-8"?>
<RSerPoolDemoConfigurationRoot>
   <RefreshTime>500</RefreshTime>
   <ListenPort>2961</ListenPort>
   <DiagramResolutionX>1200</DiagramResolutionX>
   <DiagramResolutionY>800</DiagramResolutionY>
   <Caption>Test Lab</Caption>
   <BackgroundImage>images/map.png</BackgroundImage>
   <ProtocolColor ID="11">blue</ProtocolColor>
   <ProtocolColor ID="12">#ff0000</ProtocolColor>
   <ProtocolColor ID="99">green</ProtocolColor>
   <Node>
      <UID>NOUID</UID>
      <DisplayName>Control</DisplayName>
      <PositionX>1</PositionX>
      <PositionY>1</PositionY>
   </Node>
   <Node>
      <UID>100000000010000</UID>
      <DisplayName>Registrar 1</DisplayName>
      <RefreshTimeout>5</RefreshTimeout>
      <ActiveImageURL>a.png</ActiveImageURL>
      <InactiveImageURL>i.png</InactiveImageURL>
      <PositionX>10</PositionX>
      <PositionY>20</PositionY>
      <ContextMenuEntry>
         <Name>Start</Name>
         <Command>./ComponentControl cfg PR 1 start</Command>
      </ContextMenuEntry>
      <ContextMenuSeparator/>
   </Node>
   <Node>
      <UID>200000000000100</UID>
      <DisplayName>PE 1</DisplayName>
      <PositionX>50</PositionX>
      <PositionY>40</PositionY>
   </Node>
   <Node>
      <UID>300000000000001</UID>
      <DisplayName>PU 1</DisplayName>
      <PositionX>90</PositionX>
      <PositionY>40</PositionY>
   </Node>
</RSerPoolDemoConfigurationRoot>
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "setup.xml"
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(XmlImportError) as info:
        import_xml(write(tmp_path, text))
    return [str(i) for i in info.value.issues]


def test_import_takes_over_nodes_colours_and_settings(tmp_path: Path) -> None:
    result = import_xml(write(tmp_path, DEMO))
    scenario = result.scenario
    assert scenario.name == "Test Lab" and scenario.csp_port == 2961
    assert scenario.background == tmp_path / "images" / "map.png"
    assert scenario.colors["asap"] == "blue" and scenario.colors["enrp"] == "#ff0000"
    assert scenario.colors["ppid-99"] == "green"
    kinds = {c.name: c.kind for c in scenario.components}
    assert kinds == {
        "Registrar-1": ComponentKind.REGISTRAR,
        "PE-1": ComponentKind.FRACTAL_PE,
        "PU-1": ComponentKind.FRACTAL_PU,
    }
    pr = scenario.component("Registrar-1")
    assert pr.display_name == "Registrar 1" and pr.identifier == 0x10000
    assert pr.csp_id == component_id(ComponentGroup.REGISTRAR, 0x10000)
    assert pr.position == (10.0, 20.0) and pr.timeout_multiplier == 5.0
    assert scenario.component("PU-1").csp_id == 0x300000000000001
    waves = [[c.name for c in w] for w in scenario.start_waves()]
    assert waves == [["Registrar-1"], ["PE-1"], ["PU-1"]]
    joined = "\n".join(result.notes)
    assert ":12: node 'Control' has no numeric UID; skipped" in joined
    assert "context-menu commands not imported" in joined


def test_load_any_picks_the_format_by_suffix(tmp_path: Path) -> None:
    assert load_any(write(tmp_path, DEMO)).name == "Test Lab"
    toml = tmp_path / "s.toml"
    toml.write_text('[scenario]\nname = "T"\n')
    assert load_any(toml).name == "T"


def test_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    broken = DEMO.replace("</Caption>", "</Captio>")
    (issue,) = errors(tmp_path, broken)
    assert issue.startswith(f"{tmp_path / 'setup.xml'}:7: (syntax): mismatched tag")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("<PositionX>50</PositionX>", "<PositionX>150</PositionX>",
         ":35: Node[2].PositionX: must be between 0 and 100, not 150"),
        ("<PositionY>40</PositionY>\n   </Node>\n   <Node>\n      <UID>300000000000001",
         "<PositionY>4x</PositionY>\n   </Node>\n   <Node>\n      <UID>300000000000001",
         ":36: Node[2].PositionY: must be an integer, not '4x'"),
        ("<Caption>", "<Titel>x</Titel><Caption>", ":7: Titel: unknown tag"),
        ("<DisplayName>PE 1", "<Colour/><DisplayName>PE 1", ":34: Node[2].Colour: unknown tag"),
        ("<UID>300000000000001", "<UID>500000000000001",
         ":39: Node[3].UID: 500000000000001 is not a registrar"),
        ("<UID>300000000000001", "<UID>200000000000100",
         ":39: Node[3].UID: UID 200000000000100 also used by 'PE-1'"),
        ('<ProtocolColor ID="99">', '<ProtocolColor ID="x">',
         ":11: ProtocolColor.ID: needs a numeric PPID"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_field(old: str, new: str, expected: str, tmp_path: Path) -> None:
    assert old in DEMO
    found = errors(tmp_path, DEMO.replace(old, new, 1))
    assert any(expected in f for f in found), found
    assert all(f.startswith(str(tmp_path / "setup.xml") + ":") for f in found)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(XmlImportError, match=r"none\.xml"):
        import_xml(tmp_path / "none.xml")
