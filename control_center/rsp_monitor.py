"""``rsp-monitor``: a terminal view of CSP status reports (like rsplib's cspmonitor).

It shares :class:`~control_center.monitor.StatusModel` with the control
center; this module only renders it. The screen is redrawn with ANSI escape
sequences every ``--update-interval``; ``--once`` prints one plain snapshot
(no escape sequences) at the end of ``--duration`` instead, which is what
scripts and tests use.

Compact view: one line per component. Full view: also one indented line per
association. Components are sorted by group (PR, PE, PU), then location,
then ID; each group is capped (``--max-pr/--max-pe/--max-pu``) with a line
that says how many were hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from control_center.monitor import (
    DEFAULT_CSP_PORT,
    ComponentState,
    CspMonitor,
    Link,
    StatusModel,
    default_name,
    expected_from,
)
from rsplib.wire.csp import ComponentGroup, split_component_id

# ANSI: colour per group as cspmonitor (PR red, PE blue, PU green).
_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_REVERSE = "\x1b[7m"
_CLEAR = "\x1b[H\x1b[2J"
_GROUP_COLOURS: dict[int, str] = {
    ComponentGroup.REGISTRAR: "\x1b[31m",
    ComponentGroup.POOL_ELEMENT: "\x1b[34m",
    ComponentGroup.POOL_USER: "\x1b[32m",
}
_GROUP_PLURAL: dict[int, str] = {
    ComponentGroup.REGISTRAR: "PRs",
    ComponentGroup.POOL_ELEMENT: "PEs",
    ComponentGroup.POOL_USER: "PUs",
}
#: Workload at or above this is shown in reverse video.
HIGH_WORKLOAD = 0.9


@dataclass(frozen=True, slots=True)
class ViewOptions:
    full: bool = False
    color: bool = False
    max_pr: int = 6
    max_pe: int = 42
    max_pu: int = 24
    max_location: int = 72

    def limit(self, group: int) -> int | None:
        limits: dict[int, int] = {
            ComponentGroup.REGISTRAR: self.max_pr,
            ComponentGroup.POOL_ELEMENT: self.max_pe,
            ComponentGroup.POOL_USER: self.max_pu,
        }
        return limits.get(group)


def short_label(csp_id: int) -> str:
    """cspmonitor's label: ``PR $0001a2b3``, ``PU $00000000000001``."""
    group, obj = split_component_id(csp_id)
    if group == ComponentGroup.POOL_USER:
        return f"PU ${obj:014x}"
    if group in (ComponentGroup.REGISTRAR, ComponentGroup.POOL_ELEMENT):
        prefix = "PR" if group == ComponentGroup.REGISTRAR else "PE"
        return f"{prefix} ${obj:08x}"
    return default_name(csp_id)


def format_uptime(seconds: float | None) -> str:
    """``hh:mm:ss``, or ``Nd hhh`` from one day on; ``--:--:--`` if unknown."""
    if seconds is None:
        return "--:--:--"
    total = int(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d {hours:02d}h"
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def format_duration(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with "..."."""
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    return text[: limit - 3] + "..."


def _sort_key(state: ComponentState) -> tuple[int, int, str, int]:
    # Scenario components that never reported go last within their group.
    return (state.group, 0 if state.reports else 1, state.location, state.csp_id)


def _paint(text: str, *codes: str, enabled: bool) -> str:
    return f"{''.join(codes)}{text}{_RESET}" if enabled else text


def render_component(
    state: ComponentState, model: StatusModel, now: float, options: ViewOptions
) -> list[str]:
    """The line (compact) or lines (full) of one component."""
    color = options.color
    label = short_label(state.csp_id)
    if state.name != default_name(state.csp_id):
        label = f"{label} {state.name}"
    head = _paint(label, _BOLD, _GROUP_COLOURS.get(state.group, ""), enabled=color)
    parts = [head, f"[{truncate(state.location, options.max_location)}]"]
    if state.active:
        silence = state.silence(now)
        parts += [
            f"U={format_uptime(state.uptime)}",
            f"l={silence:.1f}s" if silence is not None else "l=-",
            f"A={len(state.links)}",
        ]
        if state.workload is not None:
            load = f"L={round(state.workload * 100):d}%"
            if state.workload >= HIGH_WORKLOAD:
                load = _paint(load, _REVERSE, enabled=color)
            parts.append(load)
        parts.append(f'"{state.status}"')
    else:
        reason = state.inactive_reason.value
        parts.append(_paint(f"inactive ({reason})", _DIM, enabled=color))
        if state.status:
            parts.append(_paint(f'last: "{state.status}"', _DIM, enabled=color))
    lines = [" ".join(parts)]
    if options.full:
        lines += [f"   -> {render_link(link, model)}" for link in state.links]
    return lines


def render_link(link: Link, model: StatusModel) -> str:
    peer = short_label(link.receiver_id)
    name = model.name_of(link.receiver_id)
    if name != default_name(link.receiver_id):
        peer = f"{peer} {name}"
    text = f"{peer} {link.protocol}/{link.transport_name}"
    if link.duration is not None:
        text += f" duration={format_duration(link.duration)}"
    return text


def render(
    model: StatusModel,
    now: float,
    options: ViewOptions,
    *,
    listening: str = "",
    wall_clock: float | None = None,
) -> list[str]:
    """The whole screen as lines (without the clear-screen sequence)."""
    states = sorted(model.snapshot(), key=_sort_key)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall_clock))
    counts = []
    for group, plural in _GROUP_PLURAL.items():
        count = sum(1 for s in states if s.group == group and s.active)
        counts.append(
            _paint(f"{plural}: {count}", _BOLD, _GROUP_COLOURS[group], enabled=options.color)
        )
    header = f"rsp-monitor {stamp}"
    if listening:
        header += f"  on {listening}"
    lines = [
        header,
        "  ".join(counts)
        + f"  (reports: {model.stats.reports}, malformed: {model.stats.malformed})",
        "",
    ]
    by_group: dict[int, list[ComponentState]] = {}
    for state in states:
        by_group.setdefault(state.group, []).append(state)
    for group, members in by_group.items():
        limit = options.limit(group)
        shown = members if limit is None else members[:limit]
        for state in shown:
            lines += render_component(state, model, now, options)
        hidden = len(members) - len(shown)
        if hidden:
            plural = _GROUP_PLURAL.get(group, "components")
            lines.append(f"({hidden} further {plural} have been hidden)")
    if not states:
        lines.append("(no status reports yet)")
    return lines


# ----------------------------------------------------------------------------- CLI


def _positive_ms(text: str) -> float:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value / 1000


def _count(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _port(text: str) -> int:
    value = _count(text)
    if value > 0xFFFF:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsp-monitor",
        description="Show the components that send CSP status reports (like cspmonitor).",
    )
    parser.add_argument("--address", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_CSP_PORT, help="UDP port (default 2960)"
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--compact", dest="full", action="store_false", help="one line each")
    view.add_argument("--full", dest="full", action="store_true", help="also every link")
    parser.add_argument(
        "--update-interval",
        type=_positive_ms,
        default=1.0,
        metavar="MS",
        help="redraw period (default 1000, minimum 100)",
    )
    parser.add_argument(
        "--purge-interval",
        type=_positive_ms,
        default=30.0,
        metavar="MS",
        help="drop silent components after min(this, 10 report intervals) (default 30000)",
    )
    parser.add_argument(
        "--timeout-multiplier",
        type=float,
        default=5.0,
        metavar="N",
        help="inactive after N missed report intervals (default 5)",
    )
    parser.add_argument("--max-pr", type=_count, default=6, metavar="N")
    parser.add_argument("--max-pe", type=_count, default=42, metavar="N")
    parser.add_argument("--max-pu", type=_count, default=24, metavar="N")
    parser.add_argument("--max-location-size", type=_count, default=72, metavar="N")
    parser.add_argument("--scenario", metavar="FILE", help="name components after a scenario file")
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: run on)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print one plain snapshot at the end of --duration (default 2 s) and exit",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colours (default: when writing to a terminal)",
    )
    parser.set_defaults(full=False)
    return parser


def _load_expected(path: str, timeout_multiplier: float) -> StatusModel:
    from control_center.scenario_file import load_scenario

    scenario = load_scenario(path)
    return StatusModel(
        expected_from(scenario.components, timeout_multiplier=scenario.timeout_multiplier),
        timeout_multiplier=timeout_multiplier,
    )


async def run_monitor(args: argparse.Namespace, out: TextIO) -> int:
    if args.scenario:
        model = _load_expected(args.scenario, args.timeout_multiplier)
        model.purge_interval = args.purge_interval
    else:
        model = StatusModel(
            timeout_multiplier=args.timeout_multiplier, purge_interval=args.purge_interval
        )
    color = args.color == "always" or (args.color == "auto" and out.isatty() and not args.once)
    options = ViewOptions(
        full=args.full,
        color=color,
        max_pr=args.max_pr,
        max_pe=args.max_pe,
        max_pu=args.max_pu,
        max_location=args.max_location_size,
    )
    monitor = CspMonitor(model, host=args.address, port=args.port)
    await monitor.start()
    listening = "{}:{}".format(*monitor.address)
    # Scripts that pass --port 0 read the bound port from this line.
    print(f"rsp-monitor: listening on {listening}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    duration = args.duration if args.duration is not None else (2.0 if args.once else None)
    end_at = None if duration is None else loop.time() + duration
    interval = max(args.update_interval, 0.1)
    try:
        while not stop.is_set():
            if not args.once:
                screen = render(model, monitor.now(), options, listening=listening)
                out.write(_CLEAR + "\n".join(screen) + "\n")
                out.flush()
            wait = interval if end_at is None else min(interval, end_at - loop.time())
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        if args.once:
            out.write("\n".join(render(model, monitor.now(), options, listening=listening)))
            out.write("\n")
            out.flush()
    finally:
        monitor.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.update_interval < 0.1:
        parser.error("--update-interval must be at least 100 ms")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    if not args.timeout_multiplier > 0:
        parser.error("--timeout-multiplier must be positive")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run_monitor(args, sys.stdout))
    except OSError as exc:
        print(f"rsp-monitor: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a scenario that does not validate
        print(f"rsp-monitor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
