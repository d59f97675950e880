"""Storyboards: timed steps of a scripted demo, loaded from TOML with located errors.

A storyboard names its scenario and lists steps that run one after the other
(``at = S`` holds a step until S seconds after the start). Each step is a
``[[step]]`` table with ``do = ACTION``:

* process and host actions: ``start-all``, ``stop-all``, ``start``, ``stop``,
  ``kill``, ``hang``, ``resume``, ``restart`` (of a ``component``), and
  ``unplug``, ``replug``, ``impair`` (of a ``host``, or of the host a
  ``component`` runs on). Instead of naming a component, ``serving = "PU-1"``
  picks a pool element that currently serves that pool user and was not hit
  by an earlier step; ``as = "victim"`` binds the chosen name so later steps
  can say ``"$victim"``.
* ``caption``: only shows its caption (see below).
* ``wait`` (``seconds``), ``wait-until`` (a condition, ``timeout_s``; the story
  stops if it never holds) and ``expect`` (a condition that must hold within
  ``within_s``, counted from the start of the last action step; a failure is
  recorded and the story goes on unless ``fatal = true``).

Conditions (exactly one key per step): ``active``/``inactive`` = component,
``status`` = component plus ``matches`` = regex, ``computing`` = PU (it has a
link to a pool element), ``report_exists``, ``image_complete``,
``no_pixel_lost``, ``no_pixel_recomputed`` = PU (read from the headless PU's
JSON report), ``exited`` = component (optionally ``exit_code``).

Guided tours: any step may carry a ``caption`` (shown on the map while the step runs and
after it, until the next caption) and ``wait_for_key = true`` (the presenter presses Space
before the step runs; without a window the story goes on at once and says so), and
``message_speed`` (the speed of the message dots from this step on, 1 = real time).

The format is documented with examples in ``scenarios/storyboards.md``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from control_center.issues import Issue, IssuesError, field_name, load_document, read_input
from control_center.scenario import OptionValue, Scenario
from control_center.toml_lines import Path as KeyPath
from control_center.toml_lines import line_of


class Action(StrEnum):
    START_ALL = "start-all"
    STOP_ALL = "stop-all"
    START = "start"
    STOP = "stop"
    KILL = "kill"
    HANG = "hang"
    RESUME = "resume"
    RESTART = "restart"
    UNPLUG = "unplug"
    REPLUG = "replug"
    IMPAIR = "impair"
    WAIT = "wait"
    WAIT_UNTIL = "wait-until"
    EXPECT = "expect"
    CAPTION = "caption"


#: Steps that act on one component.
COMPONENT_ACTIONS = frozenset(
    {Action.START, Action.STOP, Action.KILL, Action.HANG, Action.RESUME, Action.RESTART}
)
#: Steps that act on a host.
HOST_ACTIONS = frozenset({Action.UNPLUG, Action.REPLUG, Action.IMPAIR})
#: Steps that count as "the fault" for a later ``within_s``.
FAULT_ACTIONS = COMPONENT_ACTIONS | HOST_ACTIONS | {Action.START_ALL, Action.STOP_ALL}
#: Steps whose component counts as "hit", so ``serving`` does not pick it again.
HITTING_ACTIONS = frozenset(
    {Action.STOP, Action.KILL, Action.HANG, Action.RESTART, Action.UNPLUG, Action.IMPAIR}
)


class ConditionKind(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    STATUS = "status"
    COMPUTING = "computing"
    REPORT_EXISTS = "report_exists"
    IMAGE_COMPLETE = "image_complete"
    NO_PIXEL_LOST = "no_pixel_lost"
    NO_PIXEL_RECOMPUTED = "no_pixel_recomputed"
    EXITED = "exited"


#: Conditions answered by the PU's JSON report rather than the status monitor.
REPORT_CONDITIONS = frozenset(
    {
        ConditionKind.REPORT_EXISTS,
        ConditionKind.IMAGE_COMPLETE,
        ConditionKind.NO_PIXEL_LOST,
        ConditionKind.NO_PIXEL_RECOMPUTED,
    }
)

DEFAULT_WAIT_TIMEOUT_S = 30.0
DEFAULT_SERVING_TIMEOUT_S = 10.0
DEFAULT_STORY_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    #: Component name or ``$binding``.
    subject: str
    pattern: re.Pattern[str] | None = None
    exit_code: int | None = None
    #: For ``inactive``: require this reason ("timeout" or "final").
    reason: str | None = None

    def describe(self) -> str:
        match self.kind:
            case ConditionKind.STATUS:
                assert self.pattern is not None
                return f"{self.subject} status matches /{self.pattern.pattern}/"
            case ConditionKind.INACTIVE if self.reason is not None:
                return f"{self.subject} inactive ({self.reason})"
            case ConditionKind.EXITED if self.exit_code is not None:
                return f"{self.subject} exited with status {self.exit_code}"
            case ConditionKind.REPORT_EXISTS:
                return f"{self.subject} report exists"
            case ConditionKind.IMAGE_COMPLETE:
                return f"{self.subject} image complete"
            case ConditionKind.NO_PIXEL_LOST:
                return f"{self.subject} lost no pixel"
            case ConditionKind.NO_PIXEL_RECOMPUTED:
                return f"{self.subject} recomputed no pixel"
            case _:
                return f"{self.subject} {self.kind.value}"


@dataclass(frozen=True, slots=True)
class ImpairSpec:
    """Network impairment of a host (tc tbf; delay and loss need netem)."""

    rate: str | None = None
    delay_ms: float | None = None
    loss_percent: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    action: Action
    line: int | None = None
    label: str | None = None
    at_s: float | None = None
    component: str | None = None
    serving: str | None = None
    host: str | None = None
    bind: str | None = None
    seconds: float | None = None
    timeout_s: float | None = None
    within_s: float | None = None
    grace_s: float | None = None
    condition: Condition | None = None
    impairment: ImpairSpec | None = None
    fatal: bool = False
    #: Guided tours: text shown on the map, a key press to wait for, the dots' speed.
    caption: str | None = None
    wait_for_key: bool = False
    message_speed: float | None = None

    def describe(self) -> str:
        """One line for the timeline (before names are resolved)."""
        if self.label:
            return self.label
        if self.action is Action.CAPTION:
            return f"caption: {self.caption}"
        action = self.action.value
        if self.action is Action.WAIT:
            return f"wait {self.seconds:g} s"
        if self.condition is not None:
            text = f"{action} {self.condition.describe()}"
            if self.action is Action.EXPECT and self.within_s is not None:
                text += f" within {self.within_s:g} s"
            return text
        target = self.component or (f"a PE serving {self.serving}" if self.serving else None)
        if self.action in HOST_ACTIONS and self.host:
            target = f"host {self.host}"
        elif self.action in HOST_ACTIONS and target:
            target = f"the host of {target}"
        return f"{action} {target}" if target else action


@dataclass(frozen=True, slots=True)
class Storyboard:
    name: str
    #: The scenario file (resolved against the storyboard's directory); None: given on the CLI.
    scenario: Path | None
    steps: tuple[Step, ...]
    timeout_s: float = DEFAULT_STORY_TIMEOUT_S
    #: Where to write the JSON report (resolved); None: next to the run's logs.
    report: Path | None = None
    #: Stop everything at the end (default) or leave it running.
    stop_at_end: bool = True
    #: Component options to change for this story: name pattern (fnmatch) -> options.
    options: Mapping[str, Mapping[str, OptionValue]] = field(default_factory=dict)
    source: Path | None = None


# --------------------------------------------------------------------------- errors


class StoryboardError(IssuesError):
    """A storyboard could not be loaded; ``issues`` lists every problem."""


# --------------------------------------------------------------------------- loading

_BINDING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_HEAD_KEYS = {"name", "scenario", "timeout_s", "report", "stop_at_end"}
_COMMON_STEP_KEYS = {"do", "label", "at", "caption", "wait_for_key", "message_speed"}
_TARGET_KEYS = {"component", "serving", "as", "timeout_s"}
_STEP_KEYS: Mapping[Action, set[str]] = {
    Action.START_ALL: set(),
    Action.STOP_ALL: {"grace_s"},
    Action.START: {"component", "as"},
    Action.STOP: _TARGET_KEYS | {"grace_s"},
    Action.KILL: _TARGET_KEYS,
    Action.HANG: _TARGET_KEYS,
    Action.RESUME: {"component"},
    Action.RESTART: _TARGET_KEYS | {"grace_s"},
    Action.UNPLUG: _TARGET_KEYS | {"host"},
    Action.REPLUG: {"component", "host"},
    Action.IMPAIR: _TARGET_KEYS | {"host", "rate", "delay_ms", "loss_percent"},
    Action.WAIT: {"seconds"},
    Action.WAIT_UNTIL: {"timeout_s"},
    Action.EXPECT: {"within_s", "fatal"},
    Action.CAPTION: set(),
}
_CONDITION_KEYS = {kind.value for kind in ConditionKind}
_CONDITION_EXTRA = {"matches", "exit_code", "reason"}
_REASONS = ("timeout", "final")


def load_storyboard(path: str | Path) -> Storyboard:
    """Read and validate a storyboard file."""
    path = Path(path)
    return loads_storyboard(read_input(path, StoryboardError), source=path)


def loads_storyboard(text: str, *, source: str | Path | None = None) -> Storyboard:
    """Validate storyboard TOML ``text``; ``source`` names the file and anchors paths."""
    return load_document(
        text, source, unnamed="<storyboard>", error=StoryboardError, builder=_Loader
    )


class _Loader:
    def __init__(self, file: str, lines: dict[KeyPath, int], base: Path) -> None:
        self.file = file
        self.lines = lines
        self.base = base
        self.issues: list[Issue] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.issues.append(Issue(self.file, line_of(self.lines, path), field_name(path), message))

    def unknown(self, table: Mapping[str, Any], allowed: set[str], path: KeyPath) -> None:
        for key in table:
            if key not in allowed:
                self.error((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def text(self, table: Mapping[str, Any], key: str, path: KeyPath) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.error((*path, key), "must be a non-empty string")
            return None
        return value

    def number(
        self, table: Mapping[str, Any], key: str, path: KeyPath, low: float, high: float
    ) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error((*path, key), f"must be a number, not {type(value).__name__}")
            return None
        if not low <= value <= high:
            self.error((*path, key), f"must be between {low:g} and {high:g}, not {value}")
            return None
        return float(value)

    def flag(self, table: Mapping[str, Any], key: str, path: KeyPath, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.error((*path, key), "must be true or false")
            return default
        return value

    def build(self, data: dict[str, Any], source: Path | None) -> Storyboard | None:
        self.unknown(data, {"storyboard", "step", "options"}, ())
        options = self.option_overrides(data.get("options", {}))
        head = data.get("storyboard", {})
        if not isinstance(head, dict):
            self.error(("storyboard",), "must be a table")
            head = {}
        self.unknown(head, _HEAD_KEYS, ("storyboard",))
        hp: KeyPath = ("storyboard",)
        name = self.text(head, "name", hp) or (source.stem if source else "storyboard")
        scenario_text = self.text(head, "scenario", hp)
        report_text = self.text(head, "report", hp)
        timeout = self.number(head, "timeout_s", hp, 1, 86_400) or DEFAULT_STORY_TIMEOUT_S
        stop_at_end = self.flag(head, "stop_at_end", hp, True)
        raw_steps = data.get("step")
        if raw_steps is None:
            self.error(("step",), "a storyboard needs at least one [[step]]")
            return None
        if not isinstance(raw_steps, list) or not all(isinstance(s, dict) for s in raw_steps):
            self.error(("step",), "must be an array of tables ([[step]])")
            return None
        bound: set[str] = set()
        steps = [self.step(index, raw, bound) for index, raw in enumerate(raw_steps)]
        if self.issues:
            return None
        return Storyboard(
            name=name,
            scenario=self.base / scenario_text if scenario_text else None,
            steps=tuple(step for step in steps if step is not None),
            timeout_s=timeout,
            report=self.base / report_text if report_text else None,
            stop_at_end=stop_at_end,
            options=options,
            source=source,
        )

    def option_overrides(self, raw: Any) -> dict[str, dict[str, OptionValue]]:
        if not isinstance(raw, dict):
            self.error(("options",), 'must be a table of tables ([options."PE-*"])')
            return {}
        result: dict[str, dict[str, OptionValue]] = {}
        for pattern, table in raw.items():
            path: KeyPath = ("options", pattern)
            if not isinstance(table, dict):
                self.error(path, "must be a table of component options")
                continue
            values: dict[str, OptionValue] = {}
            for key, value in table.items():
                if isinstance(value, list) and all(
                    isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
                ):
                    values[key] = tuple(value)
                elif isinstance(value, str | int | float | bool):
                    values[key] = value
                else:
                    self.error((*path, key), "must be a string, number, boolean or list")
            result[pattern] = values
        return result

    def reference(self, value: str | None, path: KeyPath, bound: set[str]) -> str | None:
        """A component name, or ``$name`` bound by an earlier step's ``as``."""
        if value is not None and value.startswith("$") and value[1:] not in bound:
            self.error(path, f"{value} is not bound by an earlier step (use as = ...)")
        return value

    def step(self, index: int, raw: dict[str, Any], bound: set[str]) -> Step | None:
        path: KeyPath = ("step", index)
        count = len(self.issues)
        do = raw.get("do")
        try:
            action = Action(str(do))
        except ValueError:
            choices = ", ".join(a.value for a in Action)
            self.error((*path, "do"), f"unknown or missing action {do!r} (one of: {choices})")
            return None
        allowed = _COMMON_STEP_KEYS | _STEP_KEYS[action]
        if action in (Action.WAIT_UNTIL, Action.EXPECT):
            allowed |= _CONDITION_KEYS | _CONDITION_EXTRA
        self.unknown(raw, allowed, path)

        component = self.reference(self.text(raw, "component", path), (*path, "component"), bound)
        serving = self.reference(self.text(raw, "serving", path), (*path, "serving"), bound)
        host = self.text(raw, "host", path)
        bind = self.text(raw, "as", path)
        if bind is not None and not _BINDING.match(bind):
            self.error((*path, "as"), f"invalid binding name {bind!r}")
        if component and serving:
            self.error((*path, "serving"), "give either component or serving, not both")
        if action in COMPONENT_ACTIONS and not (component or serving):
            self.error((*path, "component"), f"{action.value} needs a component (or serving)")
        if action in HOST_ACTIONS and not (host or component or serving):
            self.error((*path, "host"), f"{action.value} needs a host, component or serving")
        if host and (component or serving):
            self.error((*path, "host"), "give either host or component/serving, not both")

        seconds = self.number(raw, "seconds", path, 0, 86_400)
        if action is Action.WAIT and "seconds" not in raw:
            self.error((*path, "seconds"), "required")
        impairment = None
        if action is Action.IMPAIR:
            impairment = ImpairSpec(
                rate=self.text(raw, "rate", path),
                delay_ms=self.number(raw, "delay_ms", path, 0, 60_000),
                loss_percent=self.number(raw, "loss_percent", path, 0, 100),
            )
            if impairment == ImpairSpec():
                self.error(path, "impair needs rate, delay_ms or loss_percent")
        condition = None
        if action in (Action.WAIT_UNTIL, Action.EXPECT):
            condition = self.condition(raw, path, bound)
        caption = self.text(raw, "caption", path)
        if caption is not None and len(caption) > 400:
            self.error((*path, "caption"), "at most 400 characters")
        if action is Action.CAPTION and caption is None:
            self.error((*path, "caption"), "a caption step needs a caption")
        if bind is not None and len(self.issues) == count:
            bound.add(bind)
        if len(self.issues) != count:
            return None
        return Step(
            index=index,
            action=action,
            line=line_of(self.lines, path),
            label=self.text(raw, "label", path),
            at_s=self.number(raw, "at", path, 0, 86_400),
            component=component,
            serving=serving,
            host=host,
            bind=bind,
            seconds=seconds,
            timeout_s=self.number(raw, "timeout_s", path, 0, 86_400),
            within_s=self.number(raw, "within_s", path, 0, 86_400),
            grace_s=self.number(raw, "grace_s", path, 0, 600),
            condition=condition,
            impairment=impairment,
            fatal=self.flag(raw, "fatal", path, False),
            caption=caption,
            wait_for_key=self.flag(raw, "wait_for_key", path, False),
            message_speed=self.number(raw, "message_speed", path, 0.01, 1.0),
        )

    def condition(self, raw: dict[str, Any], path: KeyPath, bound: set[str]) -> Condition | None:
        given = [kind for kind in ConditionKind if kind.value in raw]
        if len(given) != 1:
            self.error(
                path,
                "needs exactly one condition: " + ", ".join(k.value for k in ConditionKind),
            )
            return None
        kind = given[0]
        subject = self.text(raw, kind.value, path)
        if subject is None:
            return None
        self.reference(subject, (*path, kind.value), bound)
        pattern = None
        matches = self.text(raw, "matches", path)
        if kind is ConditionKind.STATUS:
            if matches is None:
                self.error((*path, "matches"), "status needs matches = REGEX")
                return None
            try:
                pattern = re.compile(matches)
            except re.error as exc:
                self.error((*path, "matches"), f"invalid regular expression: {exc}")
                return None
        elif matches is not None:
            self.error((*path, "matches"), "only the status condition takes matches")
        exit_code = raw.get("exit_code")
        if exit_code is not None and (
            kind is not ConditionKind.EXITED
            or isinstance(exit_code, bool)
            or not isinstance(exit_code, int)
        ):
            self.error((*path, "exit_code"), "an integer, only with the exited condition")
            exit_code = None
        reason = raw.get("reason")
        if reason is not None and (kind is not ConditionKind.INACTIVE or reason not in _REASONS):
            self.error((*path, "reason"), 'only with inactive: "timeout" or "final"')
            reason = None
        return Condition(
            kind=kind, subject=subject, pattern=pattern, exit_code=exit_code, reason=reason
        )


def apply_options(scenario: Scenario, story: Storyboard) -> Scenario:
    """The scenario with the storyboard's option changes merged into its components.

    Patterns are matched against component names with :func:`fnmatch.fnmatchcase`;
    later patterns win over earlier ones for the same option.
    """
    if not story.options:
        return scenario
    components = []
    for component in scenario.components:
        merged = dict(component.options)
        for pattern, values in story.options.items():
            if fnmatch.fnmatchcase(component.name, pattern):
                merged.update(values)
        components.append(dataclasses.replace(component, options=merged))
    return dataclasses.replace(scenario, components=tuple(components))
