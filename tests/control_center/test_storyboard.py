"""Storyboard files: parsing, located errors, option overrides, the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_center.scenario_file import load_scenario, loads_scenario
from control_center.story_runner import check_against_scenario
from control_center.storyboard import (
    Action,
    ConditionKind,
    StoryboardError,
    apply_options,
    load_storyboard,
    loads_storyboard,
)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"

GOOD = """\
[storyboard]
name = "demo"
scenario = "local.toml"
timeout_s = 60
report = "out/report.json"

[options."PE-*"]
block_delay = 20
policy = "LeastUsed"

[[step]]
do = "start-all"

[[step]]
do = "wait-until"
status = "PU-1"
matches = "Processed|Sessions"
timeout_s = 20

[[step]]
do = "kill"
serving = "PU-1"
as = "victim"
at = 12.5

[[step]]
do = "expect"
inactive = "$victim"
reason = "timeout"
within_s = 1.5

[[step]]
do = "unplug"
component = "$victim"

[[step]]
do = "impair"
host = "beta"
rate = "1mbit"

[[step]]
do = "wait"
seconds = 2

[[step]]
do = "expect"
exited = "PU-1"
exit_code = 0
within_s = 30
fatal = true
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(StoryboardError) as info:
        loads_storyboard(text, source="story.toml")
    return [str(issue) for issue in info.value.issues]


def test_a_valid_storyboard_loads_with_lines_and_resolved_paths(tmp_path: Path) -> None:
    path = tmp_path / "story.toml"
    path.write_text(GOOD)
    story = load_storyboard(path)
    assert story.name == "demo" and story.timeout_s == 60
    assert story.scenario == tmp_path / "local.toml"
    assert story.report == tmp_path / "out" / "report.json"
    assert story.options == {"PE-*": {"block_delay": 20, "policy": "LeastUsed"}}
    actions = [step.action for step in story.steps]
    assert actions[:3] == [Action.START_ALL, Action.WAIT_UNTIL, Action.KILL]
    wait = story.steps[1]
    assert wait.condition is not None and wait.condition.kind is ConditionKind.STATUS
    assert wait.condition.pattern is not None and wait.condition.pattern.search("4 Sessions")
    assert wait.timeout_s == 20 and wait.line == 14
    kill = story.steps[2]
    assert (kill.serving, kill.bind, kill.at_s, kill.line) == ("PU-1", "victim", 12.5, 20)
    expect = story.steps[3]
    assert expect.condition is not None and expect.condition.reason == "timeout"
    assert expect.describe() == "expect $victim inactive (timeout) within 1.5 s"
    assert story.steps[4].describe() == "unplug the host of $victim"
    impair = story.steps[5]
    assert impair.impairment is not None and impair.impairment.rate == "1mbit"
    last = story.steps[-1]
    assert last.fatal and last.condition is not None and last.condition.exit_code == 0


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('do = "explode"', "story.toml:5: step[0].do: unknown or missing action 'explode'"),
        ('do = "kill"', "story.toml:4: step[0].component: kill needs a component (or serving)"),
        ('do = "kill"\ncomponent = "$nobody"', "step[0].component: $nobody is not bound"),
        ('do = "kill"\ncomponent = "PE-1"\nserving = "PU-1"', "give either component or serving"),
        ('do = "wait"', "story.toml:4: step[0].seconds: required"),
        ('do = "wait"\nseconds = -1', "story.toml:6: step[0].seconds: must be between 0 and"),
        ('do = "wait"\nsecs = 1', "story.toml:6: step[0].secs: unknown key"),
        ('do = "expect"\nwithin_s = 1', "step[0]: needs exactly one condition"),
        ('do = "expect"\nactive = "A"\ninactive = "B"', "needs exactly one condition"),
        ('do = "expect"\nstatus = "PU-1"', "story.toml:4: step[0].matches: status needs matches"),
        ('do = "expect"\nstatus = "PU-1"\nmatches = "("', "step[0].matches: invalid regular"),
        ('do = "expect"\nactive = "PU-1"\nreason = "final"', "step[0].reason: only with inactive"),
        ('do = "expect"\nexited = "PU-1"\nexit_code = "0"', "step[0].exit_code: an integer"),
        ('do = "impair"\nhost = "beta"', "impair needs rate, delay_ms or loss_percent"),
        ('do = "unplug"\nhost = "b"\ncomponent = "PE-1"', "give either host or component"),
        ('do = "kill"\ncomponent = "PE-1"\nas = "1x"', "step[0].as: invalid binding name"),
    ],
)
def test_errors_name_file_line_and_field(snippet: str, expected: str) -> None:
    text = f'[storyboard]\nname = "x"\n\n[[step]]\n{snippet}\n'
    issues = errors_of(text)
    assert any(expected in issue for issue in issues), issues


def test_all_problems_are_reported_at_once() -> None:
    text = (
        '[storyboard]\ntimeout_s = "long"\ncolour = 1\n\n'
        '[[step]]\ndo = "wait"\n\n[[step]]\ndo = "stop"\n'
    )
    issues = errors_of(text)
    assert "story.toml:2: storyboard.timeout_s: must be a number, not str" in issues
    assert any(i.startswith("story.toml:3: storyboard.colour: unknown key") for i in issues)
    assert "story.toml:5: step[0].seconds: required" in issues
    assert any(i.startswith("story.toml:8: step[1].component:") for i in issues)
    assert len(issues) == 4


def test_syntax_and_structure_errors() -> None:
    (issue,) = errors_of('[storyboard]\nname = "x"\n[[step]]\ndo = \n')
    assert issue.startswith("story.toml:4: (syntax):")
    assert errors_of('[storyboard]\nname = "x"\n') == [
        "story.toml: step: a storyboard needs at least one [[step]]"
    ]
    assert "story.toml:1: step: must be an array of tables" in errors_of('step = "x"\n')[0]
    bad_options = errors_of('[options]\nPE = 3\n[[step]]\ndo = "start-all"\n')
    assert bad_options == ["story.toml:2: options.PE: must be a table of component options"]


def test_binding_must_come_from_an_earlier_step() -> None:
    text = (
        '[[step]]\ndo = "expect"\ninactive = "$later"\n\n'
        '[[step]]\ndo = "kill"\nserving = "PU-1"\nas = "later"\n'
    )
    issues = errors_of(text)
    assert issues == [
        "story.toml:3: step[0].inactive: $later is not bound by an earlier step (use as = ...)"
    ]


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(StoryboardError, match=r"missing\.toml: \(file\)"):
        load_storyboard(tmp_path / "missing.toml")


SCENARIO = """\
[scenario]
name = "s"
[hosts.local]
kind = "local"
[[components]]
name = "PR-1"
kind = "registrar"
identifier = 0x10001
[[components]]
name = "PE-1"
kind = "fractal-pe"
identifier = 0x101
options = { policy = "RoundRobin", block_delay = 5 }
[[components]]
name = "PE-2"
kind = "fractal-pe"
identifier = 0x102
"""


def test_options_are_merged_into_matching_components() -> None:
    scenario = loads_scenario(SCENARIO)
    story = loads_storyboard(
        '[options."PE-*"]\nblock_delay = 50\n[options."PE-2"]\nmax_threads = 1\n'
        '[[step]]\ndo = "start-all"\n'
    )
    changed = apply_options(scenario, story)
    assert dict(changed.component("PE-1").options) == {"policy": "RoundRobin", "block_delay": 50}
    assert dict(changed.component("PE-2").options) == {"block_delay": 50, "max_threads": 1}
    assert dict(changed.component("PR-1").options) == dict(scenario.component("PR-1").options)
    assert dict(scenario.component("PE-1").options)["block_delay"] == 5, "original untouched"


def test_names_are_checked_against_the_scenario() -> None:
    story = loads_storyboard(
        '[options."PU-*"]\nsessions = 2\n'
        '[[step]]\ndo = "kill"\ncomponent = "PE-9"\nas = "v"\n'
        '[[step]]\ndo = "unplug"\nhost = "mars"\n'
        '[[step]]\ndo = "expect"\nactive = "$v"\n'
        '[[step]]\ndo = "expect"\nactive = "PE-1"\n',
        source="s.toml",
    )
    issues = [str(i) for i in check_against_scenario(story, ["PR-1", "PE-1"], ["local"])]
    assert issues == [
        "s.toml: options.PU-*: matches no component of the scenario",
        "s.toml:3: step[0].component: no component named 'PE-9' in the scenario "
        "(known: PE-1, PR-1)",
        "s.toml:7: step[1].host: no host named 'mars' in the scenario (known: local)",
    ]


@pytest.mark.parametrize("name", ["failover-story.toml", "unplug-story.toml"])
def test_shipped_storyboards_fit_their_scenarios(name: str) -> None:
    story = load_storyboard(SCENARIOS / name)
    assert story.scenario is not None and story.scenario.exists()
    scenario = load_scenario(story.scenario)
    components = [c.name for c in scenario.components]
    assert check_against_scenario(story, components, list(scenario.hosts)) == []
    assert story.steps[0].action is Action.START_ALL
    kinds = {s.condition.kind for s in story.steps if s.condition is not None}
    assert {ConditionKind.IMAGE_COMPLETE, ConditionKind.NO_PIXEL_LOST} <= kinds
