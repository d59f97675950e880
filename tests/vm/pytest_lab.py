"""Tests marked ``sctp`` run over kernel SCTP: natively where the kernel has it, else in the lab VM.

On a host without kernel SCTP this plugin boots the lab VM once per pytest session
(before the first test), runs every selected ``sctp`` test inside it with the same
pytest, and turns each marked test on the host into a report of its guest outcome:
passed, failed with the guest's failure text, or skipped with the guest's reason.
Where the lab cannot run (no QEMU, kernel or busybox; ``--sctp-lab off``) the marked
tests are skipped with that reason. On a host with kernel SCTP, and inside the lab,
marked tests simply run.

Inside the lab the same plugin keeps only the tests the host asked for
(``RSERPOOL_LAB_SELECT``) and writes each outcome to ``RSERPOOL_LAB_REPORT`` as soon
as it is known, so a VM that dies half-way still reports what finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rsplib.transport import sctp_available
from tests.vm.guest import fast_python_prelude, guest_environment, prepare_host
from tests.vm.image import LabUnavailable
from tests.vm.machine import GUEST_OUT, LabRun, VmSettings, describe_failure, run_in_vm

MARKER = "sctp"
SELECT_ENV = "RSERPOOL_LAB_SELECT"
REPORT_ENV = "RSERPOOL_LAB_REPORT"
IN_LAB_ENV = "RSERPOOL_SCTP_LAB"
#: Host options that change which marked tests run or how; passed on to the guest.
FORWARDED_FLAGS = ("--run-slow",)
#: The guest loads only these pytest plugins: scanning every installed package's entry
#: points, importing hypothesis and Qt cost the guest tens of seconds on a cold cache.
GUEST_PLUGINS = ("pytest_timeout",)
DEFAULT_TIMEOUT = 1200.0


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("sctp-lab", "kernel-SCTP lab VM")
    group.addoption(
        "--sctp-lab",
        choices=("auto", "off"),
        default=os.environ.get("RSERPOOL_SCTP_LAB_MODE", "auto"),
        help="where the kernel lacks SCTP, run tests marked sctp in the lab VM "
        "(auto, the default) or skip them (off)",
    )
    group.addoption(
        "--sctp-lab-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds the lab VM may take for all sctp tests (default: %(default)s)",
    )


def make_plugin(config: pytest.Config) -> object:
    if os.environ.get(IN_LAB_ENV) == "1":
        return GuestPlugin(config)
    if sctp_available():
        return None  # marked tests run here like any other
    return HostPlugin(config)


@dataclass
class GuestOutcome:
    outcome: str  # "passed", "failed" or "skipped"
    text: str  # failure text or skip reason
    duration: float  # seconds of the phase that decided the outcome

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


class LabTestFailed(Exception):
    """A test failed inside the lab VM; the message is the guest's failure report."""


class LabReportItem(pytest.Item):
    """Stands in on the host for a marked test that runs in the lab VM."""

    def __init__(self, *, original: pytest.Item, plugin: HostPlugin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)
        self._location = original.location

    @classmethod
    def replacing(cls, item: pytest.Item, plugin: HostPlugin) -> LabReportItem:
        assert item.parent is not None
        return cls.from_parent(item.parent, name=item.name, original=item, plugin=plugin)

    def reportinfo(self) -> tuple[str, int | None, str]:
        path, line, name = self._location
        return path, line, name

    def runtest(self) -> None:
        self.plugin.report(self.nodeid)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LabTestFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class HostPlugin:
    """Host side: one VM boot for every selected sctp test, then one report per test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.items: list[LabReportItem] = []
        self.unavailable: str | None = None
        self.outcomes: dict[str, GuestOutcome] = {}
        self.run: LabRun | None = None
        self.out_dir: Path | None = None
        if config.getoption("--sctp-lab") == "off":
            self.unavailable = "the lab is off (--sctp-lab off)"

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for index, item in enumerate(session.items):
            if item.get_closest_marker(MARKER) is not None:
                replacement = LabReportItem.replacing(item, self)
                session.items[index] = replacement
                self.items.append(replacement)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        if self.items and not session.config.option.collectonly and self.unavailable is None:
            self._run_lab()
        return (yield)

    def report(self, nodeid: str) -> None:
        if self.unavailable is not None:
            pytest.skip(f"needs kernel SCTP, which this machine lacks; {self.unavailable}")
        outcome = self.outcomes.get(nodeid)
        if outcome is None:
            assert self.run is not None
            raise LabTestFailed(
                f"no result from the lab VM for this test; {describe_failure(self.run)}"
            )
        if outcome.outcome == "skipped":
            pytest.skip(f"in the lab VM: {outcome.text}")
        if not outcome.passed:
            raise LabTestFailed(f"failed in the lab VM (kernel SCTP):\n{outcome.text}")

    def _run_lab(self) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        repo = Path(str(self.config.rootpath))
        out_dir = Path(tempfile.mkdtemp(prefix="rserpool-sctp-lab-"))
        self.out_dir = out_dir
        (out_dir / "select.txt").write_text("".join(f"{i.nodeid}\n" for i in self.items))
        files = sorted({item.nodeid.split("::")[0] for item in self.items})
        flags = [flag for flag in FORWARDED_FLAGS if _flag_given(self.config, flag)]
        plugins = [f"-p {name}" for name in GUEST_PLUGINS]
        command = " ".join(
            [
                "python -m pytest -q -p no:cacheprovider -o console_output_style=classic",
                *plugins,
                *flags,
                *files,
            ]
        )
        env = guest_environment(repo)
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env[SELECT_ENV] = f"{GUEST_OUT}/select.txt"
        env[REPORT_ENV] = f"{GUEST_OUT}/report.json"
        if reporter is not None:
            reporter.write_line(
                f"sctp lab: this kernel lacks SCTP; running {len(self.items)} tests marked "
                f"'{MARKER}' in the lab VM (results in {out_dir})"
            )
        try:
            prepare_host(repo)
            self.run = run_in_vm(
                command,
                out_dir=out_dir,
                cwd=repo,
                env=env,
                prelude=fast_python_prelude(repo),
                settings=VmSettings(timeout=self.config.getoption("--sctp-lab-timeout")),
            )
        except LabUnavailable as exc:
            self.unavailable = f"the lab VM cannot run here: {exc}"
            shutil.rmtree(out_dir, ignore_errors=True)
            if reporter is not None:
                reporter.write_line(f"sctp lab: {self.unavailable}")
            return
        self.outcomes = read_report(out_dir / "report.json")
        if reporter is not None:
            reporter.write_line(f"sctp lab: {self._summary()}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Keep the guest's logs and console only when something needs looking at.
        everything_ran = len(self.outcomes) == len(self.items)
        no_failure = all(outcome.outcome != "failed" for outcome in self.outcomes.values())
        if self.out_dir is not None and everything_ran and no_failure:
            shutil.rmtree(self.out_dir, ignore_errors=True)

    def _summary(self) -> str:
        assert self.run is not None
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
        missing = len(self.items) - len(self.outcomes)
        parts = [f"{n} {what}" for what, n in sorted(counts.items())]
        if missing:
            parts.append(f"{missing} without result")
        boot = f"{self.run.boot_seconds:.1f} s" if self.run.boot_seconds is not None else "?"
        return (
            f"{', '.join(parts) or 'no results'} in {self.run.total_seconds:.0f} s "
            f"(boot {boot}; guest exit status {self.run.status})"
        )


def _flag_given(config: pytest.Config, flag: str) -> bool:
    return bool(config.getoption(flag, default=False))


def read_report(path: Path) -> dict[str, GuestOutcome]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {nodeid: GuestOutcome(**entry) for nodeid, entry in raw.items()}


class GuestPlugin:
    """Guest side: run only the host's selection and report every outcome at once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        select = os.environ.get(SELECT_ENV)
        self.selection = set(Path(select).read_text().split()) if select else None
        report = os.environ.get(REPORT_ENV)
        self.report_path = Path(report) if report else None
        self.outcomes: dict[str, GuestOutcome] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.selection is None:
            return
        keep = [item for item in items if item.nodeid in self.selection]
        dropped = [item for item in items if item.nodeid not in self.selection]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.report_path is None:
            return
        known = self.outcomes.get(report.nodeid)
        if report.when == "setup" and report.passed:
            return
        if report.when == "teardown" and (report.passed or (known and not known.passed)):
            return  # keep the first failure's text; a clean teardown changes nothing
        self.outcomes[report.nodeid] = GuestOutcome(
            outcome=report.outcome,
            text=_skip_reason(report) if report.skipped else report.longreprtext,
            duration=report.duration,
        )
        _write_json(self.report_path, self.outcomes)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _write_json(path: Path, outcomes: dict[str, GuestOutcome]) -> None:
    data = {nodeid: vars(outcome) for nodeid, outcome in outcomes.items()}
    temporary = path.with_name(f".{path.name}.{time.monotonic_ns()}")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)
