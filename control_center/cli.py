"""``rsp-control-center``: run a scenario in the Qt window, or headless with a storyboard.

    rsp-control-center SCENARIO                          (the window: map, panels, actions)
    rsp-control-center SCENARIO --start-all --screenshot FILE.png --exit-after S
    rsp-control-center --storyboard FILE [--screenshot-dir DIR --close-when-done]
                                                         (a storyboard played in the window)
    rsp-control-center SCENARIO --headless --storyboard FILE [--report FILE]
    rsp-control-center --headless --storyboard FILE      (the storyboard names its scenario)
    rsp-control-center SCENARIO --headless [--duration S] (start all, print the timeline)

Exit status: 0 when every expectation held, 1 when one failed or the story
could not run, 2 for bad arguments or files that do not validate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from control_center.monitor import CspMonitor, StatusModel, expected_from
from control_center.scenario import Scenario
from control_center.scenario_file import load_scenario
from control_center.storyboard import (
    Action,
    Step,
    Storyboard,
    StoryboardError,
    apply_options,
    load_storyboard,
)
from rsplib.session.cookies import COOKIE_KEY_ENV

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

GUI_MISSING = (
    "rsp-control-center: the Qt window needs PySide6 (pip install -e . in the project's "
    "virtual environment); or run a scenario with --headless [--storyboard FILE]"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsp-control-center",
        description="Start, watch and script an RSerPool demo scenario.",
    )
    parser.add_argument(
        "scenario", nargs="?", help="scenario file (TOML); optional if the storyboard names one"
    )
    parser.add_argument("--headless", action="store_true", help="run without a window")
    parser.add_argument("--storyboard", metavar="FILE", help="run the steps of this storyboard")
    parser.add_argument(
        "--report", metavar="FILE", help="JSON report (default: the storyboard's, or the run dir)"
    )
    parser.add_argument("--run-dir", metavar="DIR", help="logs and outputs (default: per scenario)")
    parser.add_argument(
        "--csp-port",
        type=int,
        metavar="N",
        help="status monitor port (default: the scenario's; 0 = any free port)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="without a storyboard: stop the scenario after S seconds (default: at Ctrl-C)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the timeline")
    add_gui_arguments(parser)
    parser.add_argument(
        "--loglevel",
        default="error",
        metavar="LEVEL",
        help="debug, info, warning or error (default error: the timeline shows what happens)",
    )
    return parser


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{3,5})x(\d{3,5})", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 1400x860, not {text!r}")
    return int(match[1]), int(match[2])


def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the window (ignored with --headless)."""
    gui = parser.add_argument_group("window (without --headless)")
    gui.add_argument("--start-all", action="store_true", help="start every component at once")
    gui.add_argument(
        "--screenshot", metavar="FILE.png", help="save a window screenshot, then stop and exit"
    )
    gui.add_argument(
        "--exit-after",
        type=float,
        metavar="S",
        help="stop everything and exit S seconds after the scenario is up",
    )
    gui.add_argument(
        "--viewers",
        action="store_true",
        help="start every pool user as a fractal-pu viewer window (a scenario asks for it per "
        'pool user with display = "window"); the window shows their pictures either way',
    )
    gui.add_argument("--present", action="store_true", help="start in presentation mode")
    gui.add_argument("--size", type=parse_size, metavar="WxH", help="window size (1400x860)")
    gui.add_argument(
        "--screenshot-dir",
        metavar="DIR",
        help="with --storyboard: save the map after every step and at the first failover",
    )
    gui.add_argument(
        "--close-when-done",
        action="store_true",
        help="with --storyboard: exit when the story ends (status: the story's verdict)",
    )


def _check_port_and_start_logging(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> None:
    """The checks the window and the headless run share; then logging as ``--loglevel``."""
    if args.csp_port is not None and not 0 <= args.csp_port <= 0xFFFF:
        parser.error("--csp-port must be 0..65535")
    level = getattr(logging, str(args.loglevel).upper(), None)
    if not isinstance(level, int):
        parser.error(f"unknown log level {args.loglevel!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _invalid_input(exc: ValueError) -> int:
    """Reports a storyboard or scenario that failed to load; the usage exit status."""
    kind = "storyboard" if isinstance(exc, StoryboardError) else "scenario"
    print(f"rsp-control-center: invalid {kind}:\n{exc}", file=sys.stderr)
    return EXIT_USAGE


def run_window(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The Qt window (``control_center.gui``), imported only when it is wanted."""
    if args.scenario is None and args.storyboard is None:
        parser.error("give a SCENARIO (or a --storyboard that names one)")
    if args.exit_after is not None and args.exit_after <= 0:
        parser.error("--exit-after must be positive")
    _check_port_and_start_logging(args, parser)
    try:
        if args.storyboard:
            scenario, story = _load_inputs(args)
            story_or_none: Storyboard | None = story
        else:
            scenario, story_or_none = load_scenario(args.scenario), None
    except ValueError as exc:  # StoryboardError or ScenarioError
        return _invalid_input(exc)
    try:
        from control_center.gui.app import run_gui
    except ImportError as exc:
        print(f"{GUI_MISSING} ({exc})", file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault(COOKIE_KEY_ENV, "hex:" + secrets.token_hex(32))
    return run_gui(scenario, story_or_none, args)


def _load_inputs(args: argparse.Namespace) -> tuple[Scenario, Storyboard]:
    """Scenario and storyboard (a plain "start all, run" story without --storyboard)."""
    if args.storyboard:
        story = load_storyboard(args.storyboard)
    else:
        steps: tuple[Step, ...] = (Step(index=0, action=Action.START_ALL),)
        if args.duration is not None:
            steps += (Step(index=1, action=Action.WAIT, seconds=args.duration),)
        else:
            steps += (Step(index=1, action=Action.WAIT, seconds=365 * 86_400.0),)
        story = Storyboard(name="headless run", scenario=None, steps=steps, timeout_s=1e9)
    scenario_path = Path(args.scenario) if args.scenario else story.scenario
    if scenario_path is None:
        raise StoryboardError([])  # handled by the caller as a usage error
    scenario = load_scenario(scenario_path)
    return apply_options(scenario, story), story


async def run_headless(
    scenario: Scenario, story: Storyboard, args: argparse.Namespace, out: TextIO | None
) -> int:
    from control_center.orchestrator import Orchestrator
    from control_center.registration import registration_wait
    from control_center.report_html import write_html_report
    from control_center.story_runner import (
        OrchestratorControl,
        StoryRunner,
        check_against_scenario,
    )
    from control_center.trace_collector import TRACE_FILE, TraceCollector
    from control_center.trace_store import TraceStore

    sc = scenario
    issues = check_against_scenario(story, [c.name for c in sc.components], list(sc.hosts))
    if issues:
        raise StoryboardError(issues)
    model = StatusModel(
        expected_from(sc.components, timeout_multiplier=sc.timeout_multiplier),
        timeout_multiplier=sc.timeout_multiplier,
    )
    csp_port = args.csp_port if args.csp_port is not None else sc.csp_port
    orchestrator = Orchestrator(sc, run_dir=args.run_dir)
    async with orchestrator:
        monitor = CspMonitor(model, host=orchestrator.csp_listen_address, port=csp_port)
        await monitor.start()
        tracer = TraceCollector(
            TraceStore(),
            host=orchestrator.csp_listen_address,
            save_to=orchestrator.run_dir / TRACE_FILE,
        )
        await tracer.start()
        try:
            orchestrator.csp_port = monitor.address[1]
            orchestrator.trace_port = tracer.address[1]
            runner = StoryRunner(
                story,
                OrchestratorControl(orchestrator, before_pool_users=registration_wait(monitor)),
                monitor,
                out=out,
                # A plain headless run (no storyboard) ends with Ctrl-C.
                interrupt_ok=not args.storyboard,
            )
            task = asyncio.current_task()
            loop = asyncio.get_running_loop()
            interrupted = False

            def interrupt() -> None:
                nonlocal interrupted
                interrupted = True
                if task is not None:
                    task.cancel()

            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, interrupt)
            try:
                result = await runner.run()
            except asyncio.CancelledError:
                if not interrupted:
                    raise
                result = runner.result
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(signum)
        finally:
            monitor.close()
            tracer.close()
    report = (
        Path(args.report)
        if args.report
        else story.report
        if story.report is not None
        else orchestrator.run_dir / f"{_slug(story.name)}-report.json"
    )
    if args.storyboard or args.report:
        result.write(report)
        page = write_html_report(
            result.to_json(), report, trace_path=orchestrator.run_dir / TRACE_FILE
        )
        if out is not None:
            out.write(f"report: {report}\nreport page: {page}\n")
    return EXIT_OK if result.passed else EXIT_FAILED


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-") or "story"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.headless:
        return run_window(args, parser)
    if args.storyboard is None and args.scenario is None:
        parser.error("give a SCENARIO, a --storyboard, or both")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    _check_port_and_start_logging(args, parser)
    try:
        scenario, story = _load_inputs(args)
    except ValueError as exc:  # StoryboardError or ScenarioError
        if isinstance(exc, StoryboardError) and not exc.issues:
            parser.error("the storyboard names no scenario; give SCENARIO")
        return _invalid_input(exc)
    out = None if args.quiet else sys.stdout
    # Fractal PEs refuse to run without a cookie key; a run without one configured gets a
    # fresh random key that every locally started component inherits.
    os.environ.setdefault(COOKIE_KEY_ENV, "hex:" + secrets.token_hex(32))
    try:
        return asyncio.run(run_headless(scenario, story, args, out))
    except StoryboardError as exc:
        print(f"rsp-control-center: storyboard does not fit the scenario:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # hosts unavailable, lab needs root, port in use, ...
        print(f"rsp-control-center: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
