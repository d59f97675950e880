"""Guided tours: caption / wait_for_key / message_speed steps, and the shipped tours."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from control_center.scenario_file import load_scenario
from control_center.story_runner import StoryResult, check_against_scenario
from control_center.storyboard import Action, StoryboardError, load_storyboard, loads_storyboard

from .test_story_runner import run_story
from .test_storyboard_e2e import SCENARIOS, copy_story, run_cli

TOUR = """
[storyboard]
name = "mini tour"
timeout_s = 30

[[step]]
do = "caption"
caption = "Hello class"
message_speed = 0.1
wait_for_key = true

[[step]]
do = "start-all"
caption = "Everything starts"

[[step]]
do = "wait"
seconds = 0.05
wait_for_key = true
"""


def test_tour_keys_load() -> None:
    story = loads_storyboard(TOUR, source="tour.toml")
    first, second, third = story.steps
    assert first.action is Action.CAPTION and first.caption == "Hello class"
    assert first.wait_for_key and first.message_speed == 0.1
    assert second.caption == "Everything starts" and not second.wait_for_key
    assert third.wait_for_key and third.caption is None
    assert first.describe() == "caption: Hello class"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('do = "caption"', "needs a caption"),
        ('do = "caption"\ncaption = ""', "non-empty"),
        ('do = "wait"\nseconds = 1\nmessage_speed = 5', "between"),
        ('do = "wait"\nseconds = 1\nwait_for_key = "yes"', "true or false"),
        ('do = "caption"\ncaption = "' + "x" * 401 + '"', "400"),
    ],
)
def test_bad_tour_keys(step: str, message: str) -> None:
    with pytest.raises(StoryboardError) as info:
        loads_storyboard(f"[[step]]\n{step}\n", source="bad.toml")
    assert message in str(info.value)


class FakePresenter:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.key = asyncio.Event()

    def show_caption(self, text: str) -> None:
        self.calls.append(f"caption {text}")

    def set_message_speed(self, speed: float) -> None:
        self.calls.append(f"speed {speed:g}")

    async def wait_for_key(self) -> None:
        self.calls.append("waiting")
        await self.key.wait()
        self.key.clear()
        self.calls.append("key")


def _run(presenter: FakePresenter | None) -> tuple[list[str], list[str], bool]:
    async def press_space_twice(task: asyncio.Task[StoryResult]) -> None:
        assert presenter is not None
        for _ in range(2):
            while "waiting" not in presenter.calls[-1:]:
                await asyncio.sleep(0.01)
            assert not task.done()
            presenter.key.set()
            await asyncio.sleep(0.01)

    result, _control, lines = run_story(
        TOUR, presenter=presenter, drive=press_space_twice if presenter else None
    )
    return (presenter.calls if presenter else []), lines, result.passed


def test_runner_shows_captions_and_waits_for_the_key() -> None:
    calls, lines, passed = _run(FakePresenter())
    assert passed
    assert calls == [
        "caption Hello class",
        "speed 0.1",
        "waiting",
        "key",
        "caption Everything starts",
        "waiting",
        "key",
    ]
    assert any("Hello class" in line for line in lines)


def test_without_presenter_the_story_goes_on() -> None:
    _calls, lines, passed = _run(None)
    assert passed
    assert sum("no presenter: going on" in line for line in lines) == 2


def test_shipped_tours_fit_their_scenario() -> None:
    tours = sorted(SCENARIOS.glob("tour-*.toml"))
    assert len(tours) == 5
    for path in tours:
        story = load_storyboard(path)
        assert story.scenario is not None
        scenario = load_scenario(story.scenario)
        names = [c.name for c in scenario.components]
        assert check_against_scenario(story, names, list(scenario.hosts)) == [], path
        assert any(step.caption for step in story.steps)
        assert any(step.wait_for_key for step in story.steps)


def test_registration_tour_passes_headless(tmp_path: Path) -> None:
    story = copy_story(tmp_path, "tour-registration.toml", "local.toml")
    report_path = tmp_path / "report.json"
    result = run_cli(
        "--headless", "--storyboard", str(story), "--run-dir", str(tmp_path / "run"),
        "--report", str(report_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] and all(s["outcome"] == "ok" for s in report["steps"])
    assert "no presenter: going on" in result.stdout
    # The trace of the run shows what the captions talk about.
    saved = (tmp_path / "run" / "trace.jsonl").read_text()
    assert '"type":"REGISTRATION"' in saved and '"type":"HANDLE_UPDATE"' in saved
    # The report page sits next to the JSON.
    page = report_path.with_suffix(".html").read_text()
    assert "Tour: a pool element registers" in page and page.count("<svg") == 2
