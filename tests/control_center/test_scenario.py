"""Scenario loading: model contents, ordering, identifiers, and located errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from control_center.scenario import ComponentKind, LocalHost, NetnsHost, SshHost
from control_center.scenario_file import ScenarioError, load_scenario, loads_scenario
from control_center.toml_lines import key_lines, line_of
from rsplib.wire.csp import ComponentGroup, component_id

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = """\
[scenario]
name = "t"

[[components]]
name = "PR-1"
kind = "registrar"

[[components]]
name = "PE-1"
kind = "fractal-pe"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def issues_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return [str(i) for i in info.value.issues]


# ----------------------------------------------------------------- shipped files
@pytest.mark.parametrize("name", ["local", "lab", "remote"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    kinds = [c.kind for c in scenario.components]
    assert kinds.count(ComponentKind.REGISTRAR) == 2
    assert kinds.count(ComponentKind.FRACTAL_PE) == 3
    assert kinds.count(ComponentKind.FRACTAL_PU) == 1
    assert len(scenario.by_csp_id()) == len(scenario.components)


def test_local_scenario_runs_on_this_machine_only() -> None:
    scenario = load_scenario(SCENARIOS / "local.toml")
    assert all(isinstance(scenario.host_of(c), LocalHost) for c in scenario.components)


def test_lab_scenario_gives_each_component_its_own_virtual_host() -> None:
    scenario = load_scenario(SCENARIOS / "lab.toml")
    hosts = [c.host for c in scenario.components]
    assert len(set(hosts)) == len(hosts)
    assert all(isinstance(scenario.host_of(c), NetnsHost) for c in scenario.components)
    assert scenario.lab_gateway() == ipaddress.IPv4Interface("10.77.0.254/24")


def test_remote_scenario_has_an_ssh_host_with_checked_host_keys() -> None:
    scenario = load_scenario(SCENARIOS / "remote.toml")
    remote = [h for h in scenario.hosts.values() if isinstance(h, SshHost)]
    assert len(remote) == 1
    assert remote[0].accept_unknown_host_keys is False
    assert scenario.component("PE-3").host == remote[0].name


# ----------------------------------------------------------------- model
def test_defaults_and_implicit_local_host(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.pool_handle == "FractalGeneratorPool"
    assert scenario.csp_port == 2960 and scenario.report_interval_ms == 250
    assert isinstance(scenario.hosts["local"], LocalHost)
    assert scenario.component("PE-1").host == "local"
    assert scenario.source == tmp_path / "s.toml"


def test_automatic_identifiers_avoid_used_ones(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[components]]\nname = "PE-2"\nkind = "echo-pe"\nidentifier = 0x100\n'
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.component("PE-2").identifier == 0x100
    assert scenario.component("PE-1").identifier == 0x101  # 0x100 was taken
    assert scenario.component("PR-1").identifier == 0x10000
    pe1 = scenario.component("PE-1")
    assert pe1.csp_id == component_id(ComponentGroup.POOL_ELEMENT, 0x101)
    assert scenario.by_csp_id()[pe1.csp_id] is pe1


def test_same_identifier_in_different_groups_is_fine(tmp_path: Path) -> None:
    text = """\
[[components]]
name = "PE-1"
kind = "fractal-pe"
identifier = 1
[[components]]
name = "PU-1"
kind = "fractal-pu"
identifier = 1
"""
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.component("PE-1").csp_id != scenario.component("PU-1").csp_id


def test_start_waves_registrars_first_then_pes_then_pus(tmp_path: Path) -> None:
    text = """\
[[components]]
name = "PU"
kind = "fractal-pu"
[[components]]
name = "PE-B"
kind = "fractal-pe"
depends_on = ["PE-A"]
[[components]]
name = "PE-A"
kind = "fractal-pe"
[[components]]
name = "PR"
kind = "registrar"
"""
    scenario = load_scenario(write(tmp_path, text))
    waves = [[c.name for c in wave] for wave in scenario.start_waves()]
    assert waves == [["PR"], ["PE-A"], ["PE-B"], ["PU"]]
    assert [[c.name for c in w] for w in scenario.stop_waves()] == list(reversed(waves))


def test_options_colours_position_and_paths(tmp_path: Path) -> None:
    text = """\
[scenario]
name = "x"
background = "maps/europe.svg"
[colors]
asap = "#123456"
fgp = "gold"
[[components]]
name = "PE-1"
kind = "fractal-pe"
position = [12.5, 100]
options = { max_threads = 2, test_mode = true, registrar_list = ["a", "b"] }
env = { FRACTAL_KERNEL = "numpy" }
"""
    scenario = load_scenario(write(tmp_path, text))
    assert scenario.background == tmp_path / "maps" / "europe.svg"
    assert scenario.colors["asap"] == "#123456" and scenario.colors["fgp"] == "gold"
    assert scenario.colors["enrp"] == "#d02020"  # default kept
    pe = scenario.component("PE-1")
    assert pe.position == (12.5, 100.0)
    assert pe.options == {"max_threads": 2, "test_mode": True, "registrar_list": ("a", "b")}
    assert pe.env == {"FRACTAL_KERNEL": "numpy"}


# ----------------------------------------------------------------- located errors
def test_error_names_file_line_and_field(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[components]]\nname = "PU-1"\nkind = "fractal-pu"\nidentifier = "one"\n'
    (issue,) = issues_of(tmp_path, text)
    path = tmp_path / "s.toml"
    assert issue == f"{path}:15: components[2].identifier: must be an integer, not a string"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
[scenario]
name = "x"
csp_port = 70000
[hosts.b]
kind = "netns"
address = "10.1.0.2"
[[components]]
name = "PE-1"
kind = "fractal-pe"
host = "nowhere"
[[components]]
name = "PE-1"
kind = "fractal-pu"
colour = "red"
"""
    issues = issues_of(tmp_path, text)
    joined = "\n".join(issues)
    assert ":3: scenario.csp_port: must be between 0 and 65535" in joined
    assert ":6: hosts.b.address: needs a prefix length" in joined
    assert ":10: components[0].host: no host 'nowhere'" in joined
    assert ":12: components[1].name: duplicate name" in joined
    assert ":14: components[1].colour: unknown key" in joined
    assert len(issues) == 5


@pytest.mark.parametrize(
    ("snippet", "line", "field", "message"),
    [
        ('kind = "database"', 6, "components[1].kind", "unknown kind 'database'"),
        ('depends_on = ["PX"]', 7, "components[1].depends_on", "no component named 'PX'"),
        ('registrars = ["PE-1"]', 7, "components[1].registrars", "is not a registrar"),
        ("position = [10, 120]", 7, "components[1].position", "0..100"),
        ("identifier = 0", 7, "components[1].identifier", "between 1 and"),
        ("asap_port = 1", 7, "components[1].asap_port", "only for registrar kinds"),
        ("options = { Bad = 1 }", 7, "components[1].options.Bad", "lower-case"),
        ("options = { x = { y = 1 } }", 7, "components[1].options.x", "must be a string"),
        ("port = true", 7, "components[1].port", "unknown key"),
    ],
)
def test_component_errors(
    snippet: str, line: int, field: str, message: str, tmp_path: Path
) -> None:
    text = f"""\
[[components]]
name = "PR-1"
kind = "registrar"
[[components]]
name = "PE-1"
kind = "fractal-pe"
{snippet}
"""
    if snippet.startswith("kind"):  # replaces the PE's kind line, one line up
        text = text.replace('kind = "fractal-pe"\n', "")
    issues = issues_of(tmp_path, text)
    assert any(f":{line}: {field}: " in i and message in i for i in issues), issues


def test_duplicate_identifier_and_registrar_port(tmp_path: Path) -> None:
    text = """\
[[components]]
name = "PR-1"
kind = "registrar"
asap_port = 4000
[[components]]
name = "PR-2"
kind = "registrar"
asap_port = 4000
identifier = 0x10000
"""
    joined = "\n".join(issues_of(tmp_path, text))
    # PR-1 gets 0x10000 automatically only after the explicit check, so only the port clashes.
    assert ":8: components[1].asap_port: port 4000 also used by 'PR-1'" in joined


def test_dependency_cycle_is_reported(tmp_path: Path) -> None:
    text = """\
[[components]]
name = "A"
kind = "fractal-pe"
depends_on = ["B"]
[[components]]
name = "B"
kind = "fractal-pe"
depends_on = ["A"]
"""
    joined = "\n".join(issues_of(tmp_path, text))
    assert "components: dependency cycle among: A, B" in joined


def test_ssh_host_requirements(tmp_path: Path) -> None:
    text = """\
[hosts.far]
kind = "ssh"
address = "192.0.2.1"
workdir = "relative/dir"
csp_address = "monitor.example"
"""
    joined = "\n".join(issues_of(tmp_path, text))
    assert ":1: hosts.far.user: required" in joined
    assert ":1: hosts.far.key_file: required" in joined
    assert ":4: hosts.far.workdir: must be an absolute path" in joined
    assert ":5: hosts.far.csp_address: must be an IP address" in joined


def test_virtual_hosts_share_one_subnet_and_unique_addresses(tmp_path: Path) -> None:
    text = """\
[hosts.a]
kind = "netns"
address = "10.9.0.1/24"
[hosts.b]
kind = "netns"
address = "10.9.1.1/24"
[hosts.c]
kind = "netns"
address = "10.9.0.1/24"
[lab]
gateway = "10.9.0.1/24"
"""
    joined = "\n".join(issues_of(tmp_path, text))
    assert ":6: hosts.b.address: all virtual hosts share one bridge" in joined
    assert ":9: hosts.c.address: address already used by host 'a'" in joined
    assert ":11: lab.gateway: address already used by a virtual host" in joined


def test_toml_syntax_error_is_located(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path, '[scenario]\nname = "x"\nreport_interval_ms = = 3\n')
    assert issue.startswith(f"{tmp_path / 's.toml'}:3: (syntax): ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml"):
        load_scenario(tmp_path / "nope.toml")


def test_loads_without_file_name() -> None:
    with pytest.raises(ScenarioError, match=r"^<scenario>:2: scenario\.csp_port"):
        loads_scenario('[scenario]\ncsp_port = "x"\n')


# ----------------------------------------------------------------- the key index
def test_key_lines_tables_arrays_and_inline_tables() -> None:
    text = """\
# comment with [brackets] and key = 1
[scenario]
name = "a # not a comment"
long = \"\"\"
fake = 1
\"\"\"
[[components]]
name = "x"
options = { a = 1, b = [1,
  2] }
[[components]]
name = "y"
[components.env]
K = "v"
"""
    lines = key_lines(text)
    assert lines[("scenario", "name")] == 3
    assert ("scenario", "fake") not in lines
    assert lines[("components", 0, "options", "b")] == 9
    assert lines[("components", 0, "options", "b", 1)] == 10
    assert lines[("components", 1, "name")] == 12
    assert lines[("components", 1, "env", "K")] == 14
    assert line_of(lines, ("components", 1, "env", "missing")) == 13
    assert line_of(lines, ("nothing",)) is None
