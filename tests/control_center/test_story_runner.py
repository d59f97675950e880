"""StoryRunner against a scripted controller that plays the components' status reports.

The fake controller reports every 50 ms for each "running" component straight
into the monitor's model (so the timeout is 5 x 50 ms); kill stops its
reports, stop sends a FINAL report, and the PU's JSON report is served from
memory. That exercises the runner's logic -- target picking, bindings,
expectations with their reference times, aborts, the timeline and the JSON
report -- without processes; the real thing is in test_storyboard_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from control_center.launchers.base import ExitStatus, LauncherEvent, ProcessExited
from control_center.monitor import CspMonitor, ExpectedComponent, StatusModel
from control_center.story_runner import StoryResult, StoryRunner, summarize_pu_report
from control_center.storyboard import ImpairSpec, loads_storyboard
from rsplib.wire.csp import ComponentGroup, CspAssociation, CspReport, component_id

IDS = {
    "PR-1": component_id(ComponentGroup.REGISTRAR, 0x10001),
    "PE-1": component_id(ComponentGroup.POOL_ELEMENT, 0x101),
    "PE-2": component_id(ComponentGroup.POOL_ELEMENT, 0x102),
    "PE-3": component_id(ComponentGroup.POOL_ELEMENT, 0x103),
    "PU-1": component_id(ComponentGroup.POOL_USER, 0x1),
}
HOSTS = {"PR-1": "pr", "PE-1": "a", "PE-2": "b", "PE-3": "c", "PU-1": "pu"}
INTERVAL = 0.05


class FakeControl:
    def __init__(self, model: StatusModel, monitor: CspMonitor) -> None:
        self.model = model
        self.monitor = monitor
        self.running: set[str] = set()
        self.serving: list[str] = []  # the PU's sessions, one entry per session
        self.calls: list[str] = []
        self.exits: dict[str, ExitStatus] = {}
        self.report: dict[str, Any] | None = None
        self.listeners: list[Callable[[LauncherEvent], None]] = []
        self.fail_on: str | None = None
        self._task: asyncio.Task[None] | None = None

    # -- reporting loop
    def _report(self, name: str, *, final: bool = False) -> None:
        links: tuple[CspAssociation, ...] = ()
        if name == "PU-1" and not final:
            links = tuple(
                CspAssociation(receiver_id=IDS[pe], duration_us=1000, ppid=32)
                for pe in self.serving
                if pe in self.running
            )
        report = CspReport(
            sender_id=IDS[name],
            timestamp_us=0,
            report_interval_us=int(INTERVAL * 1e6),
            location=HOSTS[name],
            status=f"{len(links)} Sessions" if name == "PU-1" else "ok",
            workload=None,
            associations=links,
            final=final,
        )
        self.model.handle_report(report, self.monitor.now())
        self.monitor._rearm()

    async def _loop(self) -> None:
        while True:
            for name in sorted(self.running):
                self._report(name)
            await asyncio.sleep(INTERVAL)

    def _exit(self, name: str, status: ExitStatus, expected: bool = True) -> None:
        self.running.discard(name)
        self.exits[name] = status
        for listener in self.listeners:
            listener(ProcessExited(name, HOSTS[name], status, expected, self.monitor.now()))

    # -- StoryController
    def components(self) -> list[str]:
        return list(IDS)

    def hosts(self) -> list[str]:
        return list(HOSTS.values())

    def pool_users(self) -> list[str]:
        return ["PU-1"]

    def host_of(self, component: str) -> str:
        return HOSTS[component]

    def exit_status(self, component: str) -> ExitStatus | None:
        return self.exits.get(component)

    def subscribe(self, listener: Callable[[LauncherEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    async def read_output(self, component: str, key: str) -> bytes | None:
        assert key == "report"
        return None if self.report is None else json.dumps(self.report).encode()

    def _call(self, text: str) -> None:
        self.calls.append(text)
        if self.fail_on == text:
            raise RuntimeError(f"{text} went wrong")

    async def start_all(self) -> None:
        self._call("start-all")
        self.running |= set(IDS)
        self.serving = ["PE-2", "PE-2", "PE-1", "PE-3"]
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop_all(self, *, grace: float | None = None) -> None:
        self._call("stop-all")
        for name in sorted(self.running):
            self._report(name, final=True)
            self._exit(name, ExitStatus(code=0))
        if self._task is not None:
            self._task.cancel()

    async def start(self, component: str) -> None:
        self._call(f"start {component}")
        self.running.add(component)

    async def stop(self, component: str, grace: float | None = None) -> object:
        self._call(f"stop {component}")
        self._report(component, final=True)
        self._exit(component, ExitStatus(code=0))
        self._failover(component)
        return None

    async def kill(self, component: str) -> object:
        self._call(f"kill {component}")
        self._exit(component, ExitStatus(signal=9))
        self._failover(component)
        return None

    def _failover(self, dead: str) -> None:
        alive = [pe for pe in ("PE-1", "PE-2", "PE-3") if pe in self.running]
        self.serving = [pe if pe != dead else alive[0] for pe in self.serving]

    async def hang(self, component: str) -> None:
        self._call(f"hang {component}")
        self.running.discard(component)

    async def resume(self, component: str) -> None:
        self._call(f"resume {component}")
        self.running.add(component)

    async def restart(self, component: str, grace: float | None = None) -> None:
        self._call(f"restart {component}")

    async def unplug(self, host: str) -> None:
        self._call(f"unplug {host}")
        for name, where in HOSTS.items():
            if where == host:
                self.running.discard(name)
                self._failover(name)

    async def replug(self, host: str) -> None:
        self._call(f"replug {host}")

    async def impair(self, host: str, impairment: ImpairSpec) -> None:
        self._call(f"impair {host} {impairment.rate}")


def run_story(
    text: str,
    prepare: Callable[[FakeControl], None] | None = None,
    *,
    presenter: Any = None,
    drive: Callable[[asyncio.Task[StoryResult]], Awaitable[None]] | None = None,
) -> tuple[StoryResult, FakeControl, list[str]]:
    """Run ``text`` against the fake controller; ``drive`` acts while the story runs."""
    story = loads_storyboard(text, source="fake-story.toml")
    lines: list[str] = []

    class Out:
        def write(self, data: str) -> None:
            lines.extend(data.splitlines())

        def flush(self) -> None:
            pass

    async def main() -> tuple[StoryResult, FakeControl]:
        model = StatusModel([ExpectedComponent(name, cid) for name, cid in IDS.items()])
        async with CspMonitor(model, host="127.0.0.1", port=0) as monitor:
            control = FakeControl(model, monitor)
            if prepare is not None:
                prepare(control)
            runner = StoryRunner(
                story,
                control,
                monitor,
                out=Out(),  # type: ignore[arg-type]
                presenter=presenter,
            )
            task = asyncio.ensure_future(runner.run())
            if drive is not None:
                await drive(task)
            return await task, control

    result, control = asyncio.run(main())
    return result, control, lines


FAILOVER = """
[storyboard]
name = "fake failover"
timeout_s = 20

[[step]]
do = "start-all"

[[step]]
do = "wait-until"
computing = "PU-1"
timeout_s = 2

[[step]]
do = "kill"
serving = "PU-1"
as = "killed"

[[step]]
do = "expect"
inactive = "$killed"
reason = "timeout"
within_s = 1.0

[[step]]
do = "stop"
serving = "PU-1"
as = "stopped"

[[step]]
do = "expect"
inactive = "$stopped"
reason = "final"
within_s = 0.2

[[step]]
do = "expect"
image_complete = "PU-1"
within_s = 1

[[step]]
do = "expect"
no_pixel_lost = "PU-1"

[[step]]
do = "expect"
no_pixel_recomputed = "PU-1"
"""

PU_REPORT = {
    "complete": True,
    "error": None,
    "images": [
        {
            "missing_pixels": 0,
            "pixels_computed_twice": 120,
            "failovers": 3,
            "failover_time_ms": {"median": 80.0, "max": 140.5},
            "pixels_per_pe": {"0x00000101": 100, "0x00000102": 20},
        }
    ],
}


def test_failover_story_picks_serving_pes_and_measures_expectations() -> None:
    def prepare(control: FakeControl) -> None:
        async def write_report_later() -> None:
            await asyncio.sleep(0.3)
            control.report = PU_REPORT

        original = control.stop

        async def stop(component: str, grace: float | None = None) -> object:
            asyncio.get_running_loop().create_task(write_report_later())
            return await original(component, grace)

        control.stop = stop  # type: ignore[method-assign]

    result, control, lines = run_story(FAILOVER, prepare)
    # PE-2 serves two sessions, so it is "the" serving PE; the next pick skips it.
    assert control.calls[:3] == ["start-all", "kill PE-2", "stop PE-1"]
    assert control.calls[-1] == "stop-all"
    outcomes = [(s.action, s.outcome) for s in result.steps]
    assert outcomes[:-1] == [
        ("start-all", "ok"),
        ("wait-until", "ok"),
        ("kill", "ok"),
        ("expect", "ok"),
        ("stop", "ok"),
        ("expect", "ok"),
        ("expect", "ok"),
        ("expect", "ok"),
    ]
    # pixels_computed_twice is 120: the last expectation fails, the story fails.
    assert outcomes[-1] == ("expect", "failed")
    assert "pixels_computed_twice=120" in result.steps[-1].detail
    assert not result.passed and result.error is None
    killed = result.steps[3]
    assert killed.target == "PE-2"
    assert killed.description == "expect PE-2 inactive (timeout) within 1 s"
    assert killed.measured_s is not None and 5 * INTERVAL - 0.01 <= killed.measured_s < 1.0
    stopped = result.steps[5]
    assert stopped.target == "PE-1" and stopped.measured_s is not None
    assert stopped.measured_s < 0.1
    assert result.pool_users["PU-1"] == summarize_pu_report(PU_REPORT)
    assert result.pool_users["PU-1"]["failover_time_ms_max"] == 140.5
    assert result.components["PE-2"]["inactive_reason"] == "timeout"
    text = "\n".join(lines)
    assert "picked PE-2 (serving PU-1)" in text and "PE-2 killed by SIGKILL" in text
    assert "PASS expect PE-2 inactive (timeout) within 1 s" in text
    assert "PU-1 served by PE-2, PE-1, PE-3" in text
    assert "FAIL expect PU-1 recomputed no pixel" in text
    assert text.endswith("storyboard FAILED")


def test_wait_until_timeout_aborts_and_skips_the_rest() -> None:
    story = """
[[step]]
do = "start-all"
[[step]]
do = "wait-until"
status = "PU-1"
matches = "^never$"
timeout_s = 0.3
[[step]]
do = "kill"
component = "PE-1"
"""
    result, control, lines = run_story(story)
    assert [s.outcome for s in result.steps] == ["ok", "failed", "skipped"]
    assert "kill PE-1" not in control.calls and control.calls[-1] == "stop-all"
    assert result.error is not None and "status matches /^never$/" in result.error
    assert "active, status '4 Sessions'" in result.steps[1].detail
    assert any(
        line.endswith(
            "TIMEOUT wait-until PU-1 status matches /^never$/: active, status '4 Sessions'"
        )
        for line in lines
    )


def test_failed_expect_goes_on_unless_fatal() -> None:
    story = """
[[step]]
do = "start-all"
[[step]]
do = "wait-until"
active = "PE-3"
timeout_s = 1
[[step]]
do = "expect"
inactive = "PE-3"
within_s = 0.1
[[step]]
do = "hang"
component = "PE-3"
[[step]]
do = "expect"
inactive = "PE-3"
reason = "final"
within_s = 0.5
fatal = true
[[step]]
do = "resume"
component = "PE-3"
"""
    result, control, _ = run_story(story)
    assert [s.outcome for s in result.steps] == ["ok", "ok", "failed", "ok", "failed", "skipped"]
    assert "hang PE-3" in control.calls and "resume PE-3" not in control.calls
    # A hung PE times out, it sends no FINAL: the reason check makes the difference.
    assert result.steps[4].detail == "inactive (timeout), status 'ok'"


def test_an_action_that_raises_ends_the_story_with_an_error() -> None:
    story = """
[[step]]
do = "start-all"
[[step]]
do = "impair"
component = "PE-1"
rate = "8bit"
[[step]]
do = "unplug"
host = "b"
[[step]]
do = "wait"
seconds = 0.01
"""

    def prepare(control: FakeControl) -> None:
        control.fail_on = "unplug b"

    result, control, lines = run_story(story, prepare)
    assert control.calls[:3] == ["start-all", "impair a 8bit", "unplug b"]
    assert [s.outcome for s in result.steps] == ["ok", "ok", "error", "skipped"]
    assert result.steps[1].target == "a (host of PE-1)"
    assert result.steps[2].detail == "RuntimeError: unplug b went wrong"
    assert any("ERROR step 2: RuntimeError: unplug b went wrong" in line for line in lines)


def test_serving_without_candidates_is_an_error() -> None:
    story = """
[[step]]
do = "kill"
serving = "PU-1"
timeout_s = 0.2
"""
    result, control, _ = run_story(story)
    assert result.steps[0].outcome == "error"
    assert "no pool element (not hit before) served PU-1 within 0.2 s" in result.steps[0].detail
    assert control.calls == ["stop-all"]


def test_timed_steps_wait_for_their_time_and_the_story_timeout_ends_it() -> None:
    story = """
[storyboard]
timeout_s = 1
[[step]]
do = "start-all"
at = 0.2
[[step]]
do = "expect"
exited = "PU-1"
within_s = 5
"""
    result, _, _ = run_story(story)
    assert result.steps[0].started_s >= 0.2
    assert result.error == "storyboard timeout of 1 s reached"
    assert [s.outcome for s in result.steps] == ["ok", "skipped"]
    assert not result.passed


def test_exit_condition_and_json_report(tmp_path: Path) -> None:
    story = """
[[step]]
do = "start-all"
[[step]]
do = "stop"
component = "PU-1"
[[step]]
do = "expect"
exited = "PU-1"
exit_code = 0
[[step]]
do = "expect"
exited = "PE-1"
within_s = 0.1
"""
    result, _, _ = run_story(story)
    assert [s.outcome for s in result.steps] == ["ok", "ok", "ok", "failed"]
    assert result.steps[3].detail == "still running"
    path = tmp_path / "r" / "report.json"
    result.write(path)
    data = json.loads(path.read_text())
    assert data["passed"] is False and data["steps"][2]["target"] == "PU-1"
    assert {entry["kind"] for entry in data["timeline"]} >= {"story", "step", "monitor", "expect"}


@pytest.mark.parametrize(
    ("report", "complete", "missing"),
    [({"complete": False, "images": [{"missing_pixels": 7}]}, False, 7), ({}, False, 0)],
)
def test_summaries_of_incomplete_reports(
    report: dict[str, Any], complete: bool, missing: int
) -> None:
    summary = summarize_pu_report(report)
    assert summary["complete"] is complete and summary["missing_pixels"] == missing
