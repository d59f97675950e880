"""rsplib's own programs as scenario components: command lines, pool sharing, checks.

The programs themselves run in the SCTP lab (tests/interop); here the scenario model,
the command lines in rsplib's option syntax, and the clear refusal on a machine that
cannot run them are checked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control_center.commands import RunContext, build_command
from control_center.orchestrator import Orchestrator
from control_center.scenario import ComponentKind
from control_center.scenario_file import load_scenario, loads_scenario
from control_center.story_runner import check_against_scenario
from control_center.storyboard import load_storyboard
from rsplib.transport import sctp_available
from rsplib.wire.csp import ComponentGroup

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MIXED = """\
[scenario]
name = "mixed"

[hosts.a]
kind = "netns"
address = "10.77.0.1/24"

[hosts.b]
kind = "netns"
address = "10.77.0.2/24"

[[components]]
name = "PR-ours"
kind = "registrar"
host = "a"
identifier = 0x10001

[[components]]
name = "PR-rsplib"
kind = "rspregistrar"
host = "b"
identifier = 0x10002
options = { maxbadpereports = 5 }

[[components]]
name = "PE-rsplib"
kind = "rspserver-fractal"
host = "b"
identifier = 0x201
options = { fgpcookiemaxpackets = 10 }

[[components]]
name = "PE-ours"
kind = "fractal-pe"
host = "a"
identifier = 0x101

[[components]]
name = "PU-rsplib"
kind = "fractalpooluser"
host = "a"
identifier = 0x2
display_name = "rsplib PU"
registrars = ["PR-rsplib"]
"""


def context(display: bool = False) -> RunContext:
    return RunContext(
        run_dirs={"local": "/run/x", "a": "/run/x", "b": "/run/x"},
        csp_port=2960,
        csp_addresses={"local": "127.0.0.1", "a": "10.77.0.254", "b": "10.77.0.254"},
        cookie_key="hex:" + "00" * 32,
        local_display=display,
    )


def test_rsplib_kinds_belong_to_their_groups() -> None:
    scenario = loads_scenario(MIXED)
    groups = {c.name: c.group for c in scenario.components}
    assert groups["PR-rsplib"] is ComponentGroup.REGISTRAR
    assert groups["PE-rsplib"] is ComponentGroup.POOL_ELEMENT
    assert groups["PU-rsplib"] is ComponentGroup.POOL_USER
    assert [c.name for c in scenario.registrars()] == ["PR-ours", "PR-rsplib"]
    assert ComponentKind.RSP_REGISTRAR.is_registrar and ComponentKind.RSP_REGISTRAR.from_rsplib
    assert not ComponentKind.FRACTAL_PE.from_rsplib
    # Registrars first, then every PE, then the pool user.
    waves = [{c.name for c in wave} for wave in scenario.start_waves()]
    assert waves == [{"PR-ours", "PR-rsplib"}, {"PE-rsplib", "PE-ours"}, {"PU-rsplib"}]


def test_rspregistrar_command_line_uses_rsplib_syntax_and_peers_with_ours() -> None:
    scenario = loads_scenario(MIXED)
    argv = build_command(scenario, scenario.component("PR-rsplib"), context()).argv
    assert argv[0] == "rspregistrar"
    assert "-identifier=0x10002" in argv
    assert "-asap=10.77.0.2:3863" in argv and "-enrp=10.77.0.2:9901" in argv
    assert "-peer=10.77.0.1:9901" in argv
    assert "-asapannounce=off" in argv and "-enrpannounce=off" in argv
    assert "-cspserver=10.77.0.254:2960" in argv and "-cspinterval=250" in argv
    assert "-logcolor=off" in argv and "-maxbadpereports=5" in argv
    assert not any(a.startswith("--") for a in argv)
    # Our registrar peers with rsplib's in turn.
    ours = build_command(scenario, scenario.component("PR-ours"), context()).argv
    assert ours[ours.index("--peer") + 1] == "10.77.0.2:9901"


def test_rspserver_and_fractalpooluser_command_lines() -> None:
    scenario = loads_scenario(MIXED)
    pe = build_command(scenario, scenario.component("PE-rsplib"), context()).argv
    assert pe[:2] == ("rspserver", "-fractal")
    assert "-registrar=10.77.0.1:3863" in pe and "-registrar=10.77.0.2:3863" in pe
    assert "-poolhandle=FractalGeneratorPool" in pe and "-identifier=0x201" in pe
    assert "-fgpcookiemaxpackets=10" in pe
    pu = build_command(scenario, scenario.component("PU-rsplib"), context())
    assert pu.argv[0] == "fractalpooluser"
    assert [a for a in pu.argv if a.startswith("-registrar=")] == ["-registrar=10.77.0.2:3863"]
    assert "-caption=rsplib PU" in pu.argv
    with_demo = loads_scenario(
        MIXED.replace(
            'name = "mixed"', 'name = "mixed"\n\n[demo]\nwidth = 320\nsessions = 2\npause_s = 2.5'
        )
    )
    argv = build_command(with_demo, with_demo.component("PU-rsplib"), context()).argv
    assert {"-width=320", "-threads=2", "-interimagetime=2"} <= set(argv)
    # A virtual host has no display: rsplib's Qt pool user runs offscreen there.
    assert pu.env["QT_QPA_PLATFORM"] == "offscreen"


def test_fractalpooluser_on_this_machine_opens_its_window_when_a_display_is_there() -> None:
    text = MIXED.replace('host = "a"\nidentifier = 0x2', "identifier = 0x2")
    scenario = loads_scenario(text)
    with_display = build_command(scenario, scenario.component("PU-rsplib"), context(True))
    assert "QT_QPA_PLATFORM" not in with_display.env
    without = build_command(scenario, scenario.component("PU-rsplib"), context(False))
    assert without.env["QT_QPA_PLATFORM"] == "offscreen"


def test_our_pes_accept_unsigned_cookies_only_in_pools_shared_with_rsplib_pes() -> None:
    scenario = loads_scenario(MIXED)
    argv = build_command(scenario, scenario.component("PE-ours"), context()).argv
    assert "--accept-unsigned-cookies" in argv
    other_pool = MIXED.replace("options = { fgpcookiemaxpackets = 10 }", 'pool_handle = "Other"')
    apart = loads_scenario(other_pool)
    argv = build_command(apart, apart.component("PE-ours"), context()).argv
    assert "--accept-unsigned-cookies" not in argv


def test_registrar_only_keys_are_allowed_for_rspregistrar() -> None:
    scenario = loads_scenario(MIXED.replace("options = { maxbadpereports = 5 }", "asap_port = 0"))
    assert scenario.component("PR-rsplib").asap_port == 0


@pytest.mark.skipif(sctp_available(), reason="checks the refusal on a machine without SCTP")
def test_starting_an_rsplib_program_without_kernel_sctp_says_why(tmp_path: Path) -> None:
    scenario = loads_scenario(
        '[[components]]\nname = "PR"\nkind = "rspregistrar"\n', source=tmp_path / "s.toml"
    )

    async def body() -> None:
        async with Orchestrator(scenario, run_dir=tmp_path) as orch:
            with pytest.raises(Exception, match=r"needs kernel SCTP|is not installed"):
                await orch.start("PR")
            assert not orch.is_running("PR")

    asyncio.run(asyncio.wait_for(body(), 30))


def test_shipped_rsplib_scenario_and_story_load_and_agree() -> None:
    scenario = load_scenario(SCENARIOS / "rsplib-lab.toml")
    kinds = {c.kind for c in scenario.components}
    assert {ComponentKind.RSP_REGISTRAR, ComponentKind.RSP_FRACTAL_PE} <= kinds
    assert ComponentKind.RSP_FRACTAL_PU in kinds and ComponentKind.FRACTAL_PE in kinds
    story = load_storyboard(SCENARIOS / "rsplib-story.toml")
    assert story.scenario == SCENARIOS / "rsplib-lab.toml"
    names = [c.name for c in scenario.components]
    assert check_against_scenario(story, names, list(scenario.hosts)) == []
