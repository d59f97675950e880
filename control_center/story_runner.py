"""Runs a storyboard against a running scenario: steps, timeline, JSON report.

The runner drives the scenario through a :class:`StoryController` (the
orchestrator, wrapped by :class:`OrchestratorControl`) and watches it through
the status monitor. Every step, every component going active or inactive,
every process start and exit and every change of the pool elements serving a
pool user lands on one timeline, printed as it happens and written to the
JSON report at the end.

Outcome rules: an ``expect`` that does not hold in time fails the story but
the story goes on (unless ``fatal``); a ``wait-until`` that times out, an
action that raises and the overall ``timeout_s`` end the story. Whatever
happens, the scenario is stopped at the end (unless the storyboard says
``stop_at_end = false``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from control_center.issues import Issue
from control_center.launchers.base import (
    ExitStatus,
    HostChanged,
    HostFailed,
    Impairment,
    LauncherEvent,
    LaunchFailed,
    ProcessExited,
    ProcessHung,
    ProcessResumed,
    ProcessStarted,
)
from control_center.monitor import (
    AssociationsChanged,
    ComponentActive,
    ComponentDiscovered,
    ComponentInactive,
    CspMonitor,
    MonitorEvent,
    StatusModel,
)
from control_center.storyboard import (
    FAULT_ACTIONS,
    HITTING_ACTIONS,
    HOST_ACTIONS,
    REPORT_CONDITIONS,
    Action,
    Condition,
    ConditionKind,
    ImpairSpec,
    Step,
    Storyboard,
)
from rsplib.wire.csp import ComponentGroup

log = logging.getLogger("control_center.story")

#: How often conditions that no monitor event announces (files, exits) are re-checked.
POLL_INTERVAL_S = 0.1


class StoryController(Protocol):
    """What the runner needs from whatever runs the scenario."""

    def components(self) -> list[str]: ...
    def hosts(self) -> list[str]: ...
    def pool_users(self) -> list[str]: ...
    def host_of(self, component: str) -> str: ...
    def exit_status(self, component: str) -> ExitStatus | None: ...
    def subscribe(self, listener: Callable[[LauncherEvent], None]) -> Callable[[], None]: ...
    async def read_output(self, component: str, key: str) -> bytes | None: ...
    async def start_all(self) -> None: ...
    async def stop_all(self, *, grace: float | None = None) -> None: ...
    async def start(self, component: str) -> None: ...
    async def stop(self, component: str, grace: float | None = None) -> object: ...
    async def kill(self, component: str) -> object: ...
    async def hang(self, component: str) -> None: ...
    async def resume(self, component: str) -> None: ...
    async def restart(self, component: str, grace: float | None = None) -> None: ...
    async def unplug(self, host: str) -> None: ...
    async def replug(self, host: str) -> None: ...
    async def impair(self, host: str, impairment: ImpairSpec) -> None: ...


class TourPresenter(Protocol):
    """Who shows a guided tour's captions and presses the key (the window); optional."""

    def show_caption(self, text: str) -> None:
        """Show ``text`` on the map (called from the engine thread)."""
        ...

    def set_message_speed(self, speed: float) -> None:
        """Speed of the message dots (called from the engine thread)."""
        ...

    async def wait_for_key(self) -> None:
        """Return once the presenter pressed the key to go on."""
        ...


class StoryAborted(Exception):
    """A step failed in a way that makes the following steps meaningless."""


# ----------------------------------------------------------------------------- results


@dataclass(slots=True)
class TimelineEntry:
    t: float
    kind: str
    text: str

    def render(self) -> str:
        return f"[{self.t:9.3f}] {self.text}"


@dataclass(slots=True)
class StepResult:
    index: int
    line: int | None
    action: str
    description: str
    started_s: float
    ended_s: float = 0.0
    #: "ok", "failed" (an expectation or wait did not hold), "error" (could not run),
    #: "skipped" (the story ended before it).
    outcome: str = "ok"
    detail: str = ""
    #: For conditions: seconds from the reference time until it held.
    measured_s: float | None = None
    target: str | None = None


@dataclass(slots=True)
class StoryResult:
    name: str
    scenario: str | None
    started_at: str
    passed: bool = True
    duration_s: float = 0.0
    error: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    pool_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


# ----------------------------------------------------------------------------- checks


def check_against_scenario(
    story: Storyboard, components: list[str], hosts: list[str]
) -> list[Issue]:
    """Names in the storyboard that the scenario does not have (located issues)."""
    file = str(story.source) if story.source is not None else "<storyboard>"
    known, known_hosts = set(components), set(hosts)
    issues: list[Issue] = []

    def check(step: Step, field_name: str, value: str | None, pool: set[str], kind: str) -> None:
        if value is None or value.startswith("$") or value in pool:
            return
        choices = ", ".join(sorted(pool)) or "none"
        issues.append(
            Issue(
                file,
                step.line,
                f"step[{step.index}].{field_name}",
                f"no {kind} named {value!r} in the scenario (known: {choices})",
            )
        )

    for pattern in story.options:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in known):
            issues.append(
                Issue(file, None, f"options.{pattern}", "matches no component of the scenario")
            )
    for step in story.steps:
        check(step, "component", step.component, known, "component")
        check(step, "serving", step.serving, known, "component")
        check(step, "host", step.host, known_hosts, "host")
        if step.condition is not None:
            check(step, step.condition.kind.value, step.condition.subject, known, "component")
    return issues


def summarize_pu_report(data: dict[str, Any]) -> dict[str, Any]:
    """The headless PU's JSON report reduced to what a story reports."""
    images = data.get("images") or []
    return {
        "complete": bool(data.get("complete")),
        "error": data.get("error"),
        "images": len(images),
        "missing_pixels": sum(int(i.get("missing_pixels", 0)) for i in images),
        "pixels_computed_twice": sum(int(i.get("pixels_computed_twice", 0)) for i in images),
        "failovers": sum(int(i.get("failovers", 0)) for i in images),
        "failover_time_ms_max": max(
            (
                i["failover_time_ms"]["max"]
                for i in images
                if isinstance(i.get("failover_time_ms"), dict)
                and i["failover_time_ms"].get("max") is not None
            ),
            default=None,
        ),
        "pixels_per_pe": _merge_counts(i.get("pixels_per_pe") or {} for i in images),
        # Every failover the PU measured (the report page draws their histogram).
        "failover_times_ms": [
            f["failover_ms"]
            for i in images
            for cell in i.get("cells") or []
            for f in cell.get("failovers") or []
            if isinstance(f, dict) and isinstance(f.get("failover_ms"), int | float)
        ],
    }


def _merge_counts(parts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def _report_holds(kind: ConditionKind, data: dict[str, Any]) -> bool:
    if kind is ConditionKind.REPORT_EXISTS:
        return True
    images = data.get("images") or []
    complete = bool(data.get("complete")) and bool(images)
    if kind is ConditionKind.IMAGE_COMPLETE:
        return complete
    if kind is ConditionKind.NO_PIXEL_LOST:
        return complete and all(int(i.get("missing_pixels", 1)) == 0 for i in images)
    if kind is ConditionKind.NO_PIXEL_RECOMPUTED:
        return complete and all(int(i.get("pixels_computed_twice", 1)) == 0 for i in images)
    raise AssertionError(kind)


# ----------------------------------------------------------------------------- runner


class StoryRunner:
    """Runs one storyboard; :meth:`run` returns the result (never raises for a failed story)."""

    def __init__(
        self,
        story: Storyboard,
        control: StoryController,
        monitor: CspMonitor,
        *,
        out: TextIO | None = None,
        interrupt_ok: bool = False,
        presenter: TourPresenter | None = None,
    ) -> None:
        self.story = story
        #: Shows captions and waits for the key of guided tours (None: headless).
        self.presenter = presenter
        #: A cancellation (Ctrl-C) is the normal end of the run, not a failure.
        self.interrupt_ok = interrupt_ok
        self.control = control
        self.monitor = monitor
        self.model: StatusModel = monitor.model
        self.out = out
        self._start = 0.0
        self._bindings: dict[str, str] = {}
        self._hit: set[str] = set()
        self._reference = 0.0
        self._serving: dict[str, tuple[str, ...]] = {}
        self.result = StoryResult(
            name=story.name,
            scenario=str(story.scenario) if story.scenario is not None else None,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    # -- clock and timeline

    def _now(self) -> float:
        return self.monitor.now()

    def _t(self, at: float | None = None) -> float:
        return round((self._now() if at is None else at) - self._start, 3)

    def note(self, kind: str, text: str, at: float | None = None) -> None:
        entry = TimelineEntry(self._t(at), kind, text)
        self.result.timeline.append(entry)
        if self.out is not None:
            self.out.write(entry.render() + "\n")
            self.out.flush()

    def _on_monitor(self, event: MonitorEvent) -> None:
        match event:
            case ComponentActive(component=state):
                self.note("monitor", f"  {state.name} active: {state.status!r}")
            case ComponentInactive(component=state, reason=reason):
                self.note("monitor", f"  {state.name} inactive ({reason.value})")
            case ComponentDiscovered(component=state):
                self.note("monitor", f"  {state.name} discovered (not in the scenario)")
            case AssociationsChanged(component=state):
                if state.group == ComponentGroup.POOL_USER:
                    served = self._serving_pes(state.name, only_candidates=False)
                    if served != self._serving.get(state.name, ()):
                        self._serving[state.name] = served
                        names = ", ".join(served) or "nobody"
                        self.note("monitor", f"  {state.name} served by {names}")
            case _:
                pass

    def _on_launcher(self, event: LauncherEvent) -> None:
        match event:
            case ProcessStarted(component=name, host=host, pid=pid):
                self.note("process", f"  {name} started on {host} (pid {pid})")
            case ProcessExited(component=name, status=status, expected=expected):
                how = "" if expected else " (on its own)"
                self.note("process", f"  {name} {status}{how}")
            case ProcessHung(component=name):
                self.note("process", f"  {name} hung (SIGSTOP)")
            case ProcessResumed(component=name):
                self.note("process", f"  {name} resumed (SIGCONT)")
            case LaunchFailed(message=message):
                self.note("process", f"  launch failed: {message}")
            case HostChanged(host=host, what=what):
                self.note("host", f"  host {host} {what}")
            case HostFailed(host=host, message=message):
                self.note("host", f"  host {host} failed: {message}")

    # -- the run

    async def run(self) -> StoryResult:
        self._start = self._reference = self._now()
        self.note("story", f"storyboard {self.story.name!r}: {len(self.story.steps)} steps")
        unsubscribe = [
            self.model.events.connect(self._on_monitor),
            self.control.subscribe(self._on_launcher),
        ]
        pending = list(self.story.steps)
        try:
            async with asyncio.timeout(self.story.timeout_s):
                while pending:
                    step = pending.pop(0)
                    result = await self._run_step(step)
                    self.result.steps.append(result)
                    if result.outcome != "ok":
                        self.result.passed = False
                    if result.outcome == "error" or (
                        result.outcome == "failed"
                        and (step.action is Action.WAIT_UNTIL or step.fatal)
                    ):
                        self.result.error = f"step {step.index} ({result.description}): " + (
                            result.detail or result.outcome
                        )
                        break
        except TimeoutError:
            self.result.passed = False
            self.result.error = f"storyboard timeout of {self.story.timeout_s:g} s reached"
            self.note("story", self.result.error)
        except asyncio.CancelledError:
            if self.interrupt_ok:
                self.note("story", "interrupted: the run ends here")
            else:
                self.result.passed = False
                self.result.error = "interrupted"
                self.note("story", "interrupted")
            await self._finish(pending, unsubscribe)
            raise
        await self._finish(pending, unsubscribe)
        return self.result

    async def _finish(self, pending: list[Step], unsubscribe: list[Callable[[], None]]) -> None:
        done = {r.index for r in self.result.steps}
        for step in self.story.steps:
            if step.index not in done:
                self.result.steps.append(
                    StepResult(
                        index=step.index,
                        line=step.line,
                        action=step.action.value,
                        description=step.describe(),
                        started_s=self._t(),
                        ended_s=self._t(),
                        outcome="skipped",
                    )
                )
        pending.clear()
        if self.story.stop_at_end:
            self.note("story", "stopping the scenario")
            try:
                await self.control.stop_all()
            except Exception as exc:
                log.exception("stopping the scenario failed")
                self.note("story", f"stopping the scenario failed: {exc}")
        for name in self.control.pool_users():
            data = await self._pu_report(name)
            if data is not None:
                self.result.pool_users[name] = summarize_pu_report(data)
        for state in self.model.snapshot():
            self.result.components[state.name] = {
                "csp_id": f"{state.csp_id:x}",
                "discovered": state.discovered,
                "active": state.active,
                "inactive_reason": None if state.active else state.inactive_reason.value,
                "status": state.status,
                "reports": state.reports,
            }
        for undo in unsubscribe:
            undo()
        self.result.duration_s = self._t()
        verdict = "PASSED" if self.result.passed else "FAILED"
        detail = f": {self.result.error}" if self.result.error else ""
        self.note("story", f"storyboard {verdict}{detail}")

    async def _run_step(self, step: Step) -> StepResult:
        if step.at_s is not None:
            delay = self._start + step.at_s - self._now()
            if delay > 0:
                await asyncio.sleep(delay)
        await self._tour(step)
        started = self._now()
        result = StepResult(
            index=step.index,
            line=step.line,
            action=step.action.value,
            description=step.describe(),
            started_s=self._t(started),
        )
        try:
            if step.action in (Action.WAIT_UNTIL, Action.EXPECT):
                await self._run_condition(step, result, started)
            else:
                self.note("step", f"step {step.index}: {result.description}", started)
                await self._run_action(step, result)
                if step.action in FAULT_ACTIONS:
                    self._reference = started
        except StoryAborted as exc:
            result.outcome = "error"
            result.detail = str(exc)
        except (TimeoutError, asyncio.CancelledError):
            raise
        except Exception as exc:
            result.outcome = "error"
            result.detail = f"{type(exc).__name__}: {exc}"
        result.ended_s = self._t()
        if result.outcome == "error":
            self.note("step", f"ERROR step {step.index}: {result.detail}")
        return result

    # -- actions

    async def _tour(self, step: Step) -> None:
        """A guided tour's part of a step: its caption, the dots' speed, the key."""
        presenter = self.presenter
        if step.caption is not None:
            self.note("caption", step.caption)
            if presenter is not None:
                presenter.show_caption(step.caption)
        if step.message_speed is not None and presenter is not None:
            presenter.set_message_speed(step.message_speed)
        if step.wait_for_key:
            if presenter is None:
                self.note("caption", "  (no presenter: going on without waiting for a key)")
            else:
                self.note("caption", "  waiting for the presenter's key (Space)")
                await presenter.wait_for_key()

    async def _run_action(self, step: Step, result: StepResult) -> None:
        control = self.control
        match step.action:
            case Action.CAPTION:
                return
            case Action.START_ALL:
                await control.start_all()
                return
            case Action.STOP_ALL:
                await control.stop_all(grace=step.grace_s)
                return
            case Action.WAIT:
                assert step.seconds is not None
                await asyncio.sleep(step.seconds)
                return
            case _:
                pass
        name = await self._target(step)
        result.target = name
        if name is not None and step.component is not None and step.component != name:
            self.note("step", f"  {step.component} is {name}")
        if step.action in HOST_ACTIONS:
            host = step.host or control.host_of(name or "")
            result.target = host if name is None else f"{host} (host of {name})"
            if name is not None:
                self._hit.add(name)
            if step.action is Action.UNPLUG:
                await control.unplug(host)
            elif step.action is Action.REPLUG:
                await control.replug(host)
            else:
                assert step.impairment is not None
                await control.impair(host, step.impairment)
            return
        assert name is not None
        if step.action in HITTING_ACTIONS:
            self._hit.add(name)
        match step.action:
            case Action.START:
                await control.start(name)
            case Action.STOP:
                await control.stop(name, step.grace_s)
            case Action.KILL:
                await control.kill(name)
            case Action.HANG:
                await control.hang(name)
            case Action.RESUME:
                await control.resume(name)
            case Action.RESTART:
                await control.restart(name, step.grace_s)
            case _:
                raise AssertionError(step.action)

    async def _target(self, step: Step) -> str | None:
        """The component a step acts on (None for a host given by name)."""
        if step.component is not None:
            name = self._resolve(step.component)
        elif step.serving is not None:
            user = self._resolve(step.serving)
            timeout = step.timeout_s if step.timeout_s is not None else 10.0
            picked = await self._pick_serving(user, timeout)
            if picked is None:
                raise StoryAborted(
                    f"no pool element (not hit before) served {user} within {timeout:g} s"
                )
            self.note("step", f"  picked {picked} (serving {user})")
            name = picked
        else:
            return None
        if step.bind is not None:
            self._bindings[step.bind] = name
        return name

    def _resolve(self, name: str) -> str:
        if name.startswith("$"):
            try:
                return self._bindings[name[1:]]
            except KeyError:
                raise StoryAborted(f"{name} was never bound (its step did not run)") from None
        return name

    def _serving_pes(self, user: str, *, only_candidates: bool) -> tuple[str, ...]:
        """Pool elements that ``user`` has application links to, busiest first."""
        try:
            state = self.model.by_name(user)
        except KeyError:
            return ()
        counts: dict[str, int] = {}
        for link in state.links:
            if link.category != "application":
                continue
            peer = self.model.get(link.receiver_id)
            if peer is None or peer.group != ComponentGroup.POOL_ELEMENT:
                continue
            if only_candidates and (peer.discovered or not peer.active or peer.name in self._hit):
                continue
            counts[peer.name] = counts.get(peer.name, 0) + 1
        return tuple(sorted(counts, key=lambda name: (-counts[name], name)))

    async def _pick_serving(self, user: str, timeout: float) -> str | None:
        found: list[str] = []

        def serving(_model: StatusModel) -> bool:
            found[:] = self._serving_pes(user, only_candidates=True)
            return bool(found)

        if await self.monitor.wait_until(serving, timeout):
            return found[0]
        return None

    # -- conditions

    async def _run_condition(self, step: Step, result: StepResult, started: float) -> None:
        condition = step.condition
        assert condition is not None
        subject = self._resolve(condition.subject)
        result.target = subject
        if subject != condition.subject:
            result.description = result.description.replace(condition.subject, subject)
        if step.action is Action.WAIT_UNTIL:
            reference = started
            timeout = step.timeout_s if step.timeout_s is not None else 30.0
            deadline = started + timeout
            self.note("step", f"step {step.index}: {result.description}", started)
        else:
            reference = self._reference
            deadline = reference + (step.within_s or 0.0)
        held_at = await self._await_condition(condition, subject, deadline)
        if held_at is not None:
            result.measured_s = round(max(0.0, held_at - reference), 3)
            if step.action is Action.EXPECT:
                self.note("expect", f"PASS {result.description} ({result.measured_s:.3f} s)")
            else:
                self.note("step", f"  held after {result.measured_s:.3f} s")
            return
        result.outcome = "failed"
        result.detail = await self._explain(condition, subject)
        verb = "FAIL" if step.action is Action.EXPECT else "TIMEOUT"
        self.note("expect", f"{verb} {result.description}: {result.detail}")

    async def _await_condition(
        self, condition: Condition, subject: str, deadline: float
    ) -> float | None:
        """When the condition held (monitor clock), or None if not by ``deadline``."""
        kind = condition.kind
        if kind in REPORT_CONDITIONS or kind is ConditionKind.EXITED:
            while True:
                if await self._holds_async(condition, subject):
                    return self._now()
                remaining = deadline - self._now()
                if remaining <= 0:
                    return None
                await asyncio.sleep(min(POLL_INTERVAL_S, remaining))
        predicate = self._model_predicate(condition, subject)
        remaining = max(0.0, deadline - self._now())
        if not await self.monitor.wait_until(predicate, remaining):
            return None
        if kind is ConditionKind.INACTIVE:
            # The model knows when exactly the component went inactive.
            since = self.model.by_name(subject).inactive_since
            if since is not None:
                return since
        return self._now()

    def _model_predicate(self, condition: Condition, subject: str) -> Callable[[StatusModel], bool]:
        kind = condition.kind

        def state_of(model: StatusModel) -> Any:
            try:
                return model.by_name(subject)
            except KeyError:
                return None

        if kind is ConditionKind.ACTIVE:
            return lambda m: (s := state_of(m)) is not None and s.active
        if kind is ConditionKind.INACTIVE:
            reason = condition.reason
            return lambda m: (
                (s := state_of(m)) is not None
                and not s.active
                and (reason is None or s.inactive_reason.value == reason)
            )
        if kind is ConditionKind.STATUS:
            pattern = condition.pattern
            assert pattern is not None
            return lambda m: (
                (s := state_of(m)) is not None and s.active and bool(pattern.search(s.status))
            )
        if kind is ConditionKind.COMPUTING:
            return lambda m: bool(self._serving_pes(subject, only_candidates=False))
        raise AssertionError(kind)

    async def _holds_async(self, condition: Condition, subject: str) -> bool:
        if condition.kind is ConditionKind.EXITED:
            status = self.control.exit_status(subject)
            if status is None:
                return False
            return condition.exit_code is None or status.code == condition.exit_code
        data = await self._pu_report(subject)
        return data is not None and _report_holds(condition.kind, data)

    async def _pu_report(self, name: str) -> dict[str, Any] | None:
        try:
            raw = await self.control.read_output(name, "report")
        except Exception as exc:
            log.debug("report of %s not readable: %s", name, exc)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None  # being written; the next poll sees the whole file
        return data if isinstance(data, dict) else None

    async def _explain(self, condition: Condition, subject: str) -> str:
        """Why a condition does not hold, for the timeline and report."""
        kind = condition.kind
        if kind is ConditionKind.EXITED:
            status = self.control.exit_status(subject)
            return "still running" if status is None else str(status)
        if kind in REPORT_CONDITIONS:
            data = await self._pu_report(subject)
            if data is None:
                return "no report yet"
            summary = summarize_pu_report(data)
            return (
                f"complete={summary['complete']}, missing_pixels={summary['missing_pixels']}, "
                f"pixels_computed_twice={summary['pixels_computed_twice']}"
            )
        try:
            state = self.model.by_name(subject)
        except KeyError:
            return "unknown component"
        if kind is ConditionKind.COMPUTING:
            return "no link to a pool element"
        where = "active" if state.active else f"inactive ({state.inactive_reason.value})"
        return f"{where}, status {state.status!r}"


# ----------------------------------------------------------------------------- orchestrator


class OrchestratorControl:
    """Adapts :class:`control_center.orchestrator.Orchestrator` to :class:`StoryController`."""

    def __init__(self, orchestrator: Any, *, before_pool_users: Any = None) -> None:
        # Typed loosely so this module does not import the launchers' host tooling.
        self.orch = orchestrator
        #: What ``start-all`` does between pool elements and pool users (see
        #: control_center.registration): wait for the pool elements' registration.
        self.before_pool_users = before_pool_users

    def components(self) -> list[str]:
        return [c.name for c in self.orch.scenario.components]

    def hosts(self) -> list[str]:
        return list(self.orch.scenario.hosts)

    def pool_users(self) -> list[str]:
        return [
            c.name for c in self.orch.scenario.components if c.group == ComponentGroup.POOL_USER
        ]

    def host_of(self, component: str) -> str:
        return str(self.orch.scenario.component(component).host)

    def exit_status(self, component: str) -> ExitStatus | None:
        launcher = self.orch.launchers.get(self.host_of(component))
        if launcher is None or component not in launcher.processes:
            return None
        status: ExitStatus | None = launcher.processes[component].exit_status
        return status

    def subscribe(self, listener: Callable[[LauncherEvent], None]) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self.orch.subscribe(listener)
        return unsubscribe

    async def read_output(self, component: str, key: str) -> bytes | None:
        path = self.orch.files(component).get(key)
        if path is None:
            return None
        launcher = self.orch.launchers.get(self.host_of(component))
        run = getattr(launcher, "run", None)
        if run is not None and hasattr(launcher, "check"):
            # An SSH host: the file lives over there.
            code, out, _ = await run(f"cat {shlex.quote(path)}")
            return str(out).encode() if code == 0 else None
        try:
            return await asyncio.to_thread(Path(path).read_bytes)
        except OSError:
            return None

    async def start_all(self) -> None:
        note = await self.orch.start_all(before_pool_users=self.before_pool_users)
        if note:
            log.info("%s", note)

    async def stop_all(self, *, grace: float | None = None) -> None:
        await self.orch.stop_all(grace=grace)

    async def start(self, component: str) -> None:
        await self.orch.start(component)

    async def stop(self, component: str, grace: float | None = None) -> object:
        return await self.orch.stop(component, grace)

    async def kill(self, component: str) -> object:
        return await self.orch.kill(component)

    async def hang(self, component: str) -> None:
        await self.orch.hang(component)

    async def resume(self, component: str) -> None:
        await self.orch.resume(component)

    async def restart(self, component: str, grace: float | None = None) -> None:
        await self.orch.restart(component, grace)

    async def unplug(self, host: str) -> None:
        await self.orch.unplug(host)

    async def replug(self, host: str) -> None:
        await self.orch.replug(host)

    async def impair(self, host: str, impairment: ImpairSpec) -> None:
        spec = Impairment(
            rate=impairment.rate,
            delay_ms=impairment.delay_ms,
            loss_percent=impairment.loss_percent,
        )
        await self.orch.impair(host, spec)
