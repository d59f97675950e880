"""Local launcher and orchestrator with real processes on this machine."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from control_center.launchers.base import (
    Action,
    ExitStatus,
    LauncherError,
    LauncherEvent,
    ProcessExited,
    ProcessHung,
    ProcessResumed,
    ProcessStarted,
    ProcessState,
    SignalSent,
    UnsupportedAction,
)
from control_center.launchers.local import LocalLauncher, tail_lines
from control_center.orchestrator import Orchestrator
from control_center.scenario import ComponentKind
from control_center.scenario_file import ScenarioError, load_scenario, loads_scenario
from tests.control_center.launch_helpers import (
    GRACEFUL,
    STUBBORN,
    TICKER,
    open_collector,
    proc_state,
    python_command,
    wait_for,
    wait_for_log,
)
from tests.support import free_udp_port

T = TypeVar("T")
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run(factory: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(main())


class Recorder:
    def __init__(self) -> None:
        self.events: list[LauncherEvent] = []

    def __call__(self, event: LauncherEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[LauncherEvent]:
        return [e for e in self.events if isinstance(e, kind)]


# ----------------------------------------------------------------- single processes
def test_start_logs_output_and_stop_uses_sigint(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        events = Recorder()
        launcher.subscribe(events)
        cmd = python_command(tmp_path, "g", GRACEFUL)
        info = await launcher.start("G", "local", cmd)
        await wait_for_log(cmd.log_file, "(?m)^ready$")
        assert launcher.state("G") is ProcessState.RUNNING
        status = await launcher.stop("G", grace=5.0)
        assert status == ExitStatus(code=0)
        log_text = Path(cmd.log_file).read_text()
        assert "got SIGINT" in log_text and "exited with status 0" in log_text
        assert [type(e) for e in events.events] == [ProcessStarted, SignalSent, ProcessExited]
        assert events.events[1].signal == "SIGINT"  # type: ignore[attr-defined]
        exited = events.of(ProcessExited)[0]
        assert isinstance(exited, ProcessExited) and exited.expected
        assert exited.component == "G" and info.pid > 0
        assert await launcher.stop("G") is None  # nothing left to stop
        await launcher.close()

    run(scenario)


def test_stop_falls_back_to_sigkill_after_grace(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        cmd = python_command(tmp_path, "s", STUBBORN)
        await launcher.start("S", "local", cmd)
        await wait_for_log(cmd.log_file, "(?m)^ready$")
        loop = asyncio.get_running_loop()
        began = loop.time()
        status = await launcher.stop("S", grace=0.3)
        assert status == ExitStatus(signal=signal.SIGKILL)
        assert 0.3 <= loop.time() - began < 3.0
        await launcher.close()

    run(scenario)


def test_unexpected_exit_is_noticed_with_its_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        events = Recorder()
        launcher.subscribe(events)
        cmd = python_command(tmp_path, "c", "import sys; print('bye'); sys.exit(3)")
        await launcher.start("C", "local", cmd)
        await wait_for(lambda: bool(events.of(ProcessExited)), 10, "exit event")
        (exited,) = events.of(ProcessExited)
        assert isinstance(exited, ProcessExited)
        assert exited.status == ExitStatus(code=3) and not exited.expected
        assert str(exited.status) == "exited with status 3"
        assert launcher.state("C") is ProcessState.EXITED
        assert await launcher.log_tail("C", 2) == ["bye", "=== " + exited_line(cmd.log_file)]
        await launcher.close()

    run(scenario)


def exited_line(log_file: str) -> str:
    last = Path(log_file).read_text().splitlines()[-1]
    assert last.startswith("=== ")
    return last.removeprefix("=== ")


def test_hang_resume_kill_and_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        events = Recorder()
        launcher.subscribe(events)
        counter = tmp_path / "ticks"
        cmd = python_command(tmp_path, "t", TICKER, str(counter))
        info = await launcher.start("T", "local", cmd)
        await wait_for(counter.exists, 10, "first tick")

        await launcher.hang("T")
        assert launcher.state("T") is ProcessState.HUNG
        await wait_for(lambda: proc_state(info.pid) == "T", 2, "stopped state")
        frozen = counter.read_text()
        await asyncio.sleep(0.2)
        assert counter.read_text() == frozen

        await launcher.resume("T")
        await wait_for(lambda: counter.read_text() != frozen, 2, "ticks after resume")
        assert launcher.state("T") is ProcessState.RUNNING

        restarted = await launcher.restart("T", grace=0.5)
        assert restarted.pid != info.pid and launcher.is_running("T")
        assert await launcher.kill("T") == ExitStatus(signal=signal.SIGKILL)
        assert len(events.of(ProcessHung)) == 1 and len(events.of(ProcessResumed)) == 1
        assert len(events.of(ProcessStarted)) == 2
        await launcher.close()

    run(scenario)


def test_stopping_a_hung_process_still_lets_it_shut_down_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        cmd = python_command(tmp_path, "h", GRACEFUL)
        await launcher.start("H", "local", cmd)
        await wait_for_log(cmd.log_file, "(?m)^ready$")
        await launcher.hang("H")
        assert await launcher.stop("H", grace=5.0) == ExitStatus(code=0)
        await launcher.close()

    run(scenario)


def test_errors_and_unsupported_actions(tmp_path: Path) -> None:
    async def scenario() -> None:
        launcher = LocalLauncher()
        cmd = python_command(tmp_path, "g", GRACEFUL)
        await launcher.start("G", "local", cmd)
        with pytest.raises(LauncherError, match="already running"):
            await launcher.start("G", "local", cmd)
        with pytest.raises(LauncherError, match="never started"):
            await launcher.hang("X")
        with pytest.raises(UnsupportedAction):
            await launcher.unplug("local")
        assert Action.UNPLUG not in launcher.supported and Action.HANG in launcher.supported
        missing = python_command(tmp_path, "m", "")
        bad = type(missing)(("/nonexistent/program",), {}, None, missing.log_file)
        with pytest.raises(LauncherError, match="cannot start M"):
            await launcher.start("M", "local", bad)
        await launcher.close()  # stops G
        assert not launcher.is_running("G")

    run(scenario)


def test_tail_lines_reads_backwards_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert tail_lines(str(path), 3, block=64) == ["line 4997", "line 4998", "line 4999"]
    assert tail_lines(str(tmp_path / "none"), 3) == []


# ----------------------------------------------------------------- whole scenario
def ephemeral(scenario_text: str) -> str:
    """The shipped scenario with free ports (others run tests on this machine too)."""
    text = re.sub(r"(asap_port|enrp_port) = \d+", r"\1 = 0", scenario_text)
    return text.replace("csp_port = 2960", "csp_port = 0")


def test_local_scenario_starts_reports_and_stops_cleanly(tmp_path: Path) -> None:
    text = ephemeral((SCENARIOS / "local.toml").read_text())
    # Keep it small and quick: test pattern on the PEs, a tiny image for the PU.
    text = text.replace("max_threads = 6 }", "max_threads = 6, test_mode = true }")
    text = re.sub(r"(?m)^width = \d+", "width = 96", text)
    text = re.sub(r"(?m)^height = \d+", "height = 64", text)
    text = re.sub(r"(?m)^images = \d+", "images = 1", text)  # the demo's endless run: one
    text = re.sub(r"(?m)^block_delay_ms = \d+", "block_delay_ms = 0", text)
    scenario = loads_scenario(text, source=SCENARIOS / "local.toml")

    async def body() -> None:
        collector = await open_collector()
        events = Recorder()
        orch = Orchestrator(scenario, run_dir=tmp_path, csp_port=collector.port)
        orch.subscribe(events)
        try:
            async with orch:
                assert orch.csp_listen_address == "127.0.0.1"
                await orch.start_all()
                started = [e.component for e in events.of(ProcessStarted)]  # type: ignore[attr-defined]
                assert started[:2] == ["PR-1", "PR-2"] and started[-1] == "PU-1"
                wanted = set(scenario.by_csp_id())
                await wait_for(lambda: wanted <= collector.senders(), 15, "reports of all")
                pe1 = scenario.component("PE-1")
                assert pe1.csp_id is not None
                # A PE reports its registrar association (ASAP, PPID 11).
                await wait_for(
                    lambda: any(
                        a.ppid == 11
                        for a in (collector.last_from(pe1.csp_id) or _empty()).associations
                    ),
                    10,
                    "PE-1's ASAP association",
                )
                # The headless PU exits by itself once its image is complete.
                await wait_for(lambda: not orch.is_running("PU-1"), 30, "the PU to finish")
                report = json.loads(Path(orch.files("PU-1")["report"]).read_text())
                assert report["complete"] and report["images"][0]["missing_pixels"] == 0
                await orch.stop_all()
                for comp in scenario.components:
                    assert not orch.is_running(comp.name)
                    if comp.kind is not ComponentKind.FRACTAL_PU:
                        assert collector.final_from(comp.csp_id), comp.name  # type: ignore[arg-type]
            exits = {e.component: e for e in events.of(ProcessExited)}  # type: ignore[attr-defined]
            assert set(exits) == {c.name for c in scenario.components}
            for name, exited in exits.items():
                assert isinstance(exited, ProcessExited)
                assert exited.status.success, f"{name} {exited.status}"
            stop_order = [e.component for e in events.of(ProcessExited)]  # type: ignore[attr-defined]
            assert stop_order.index("PE-1") < stop_order.index("PR-1")
            assert stop_order.index("PE-3") < stop_order.index("PR-2")
        finally:
            collector.close()

    run(body, timeout=90)


def _empty() -> object:
    class _Nothing:
        associations = ()

    return _Nothing()


def test_start_failure_names_the_component(tmp_path: Path) -> None:
    text = """\
[scenario]
csp_port = 0
[[components]]
name = "PR-1"
kind = "registrar"
asap_port = 0
enrp_port = 0
options = { min_address_scope = "nowhere" }
"""
    scenario = loads_scenario(text, source=tmp_path / "bad.toml")

    async def body() -> None:
        async with Orchestrator(scenario, run_dir=tmp_path, ready_timeout=10) as orch:
            with pytest.raises(Exception, match="PR-1") as info:
                await orch.start_all()
            assert "exited during start-up" in str(info.value)
            assert Path(orch.log_file("PR-1")).exists()

    run(body)


def test_shipped_local_scenario_file_is_accepted_by_the_orchestrator(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "local.toml")
    orch = Orchestrator(scenario, run_dir=tmp_path)
    orch._resolve_registrar_ports()
    argv = orch.command("PE-2").argv
    assert "--registrar" in argv and "127.0.0.1:13863" in argv and "127.0.0.1:13864" in argv
    assert argv[argv.index("--identifier") + 1] == "0x102"


def _values(argv: tuple[str, ...], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_homes_are_spread_and_the_pool_user_gets_the_demo_rhythm(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "local.toml")
    orch = Orchestrator(scenario, run_dir=tmp_path)
    orch._resolve_registrar_ports()
    # Each PE's home registrar comes first; the other one stays its fallback.
    pr1, pr2 = "127.0.0.1:13863", "127.0.0.1:13864"
    assert _values(orch.command("PE-1").argv, "--registrar") == [pr1, pr2]
    assert _values(orch.command("PE-2").argv, "--registrar") == [pr2, pr1]
    assert _values(orch.command("PE-2").argv, "--block-delay") == ["80"]
    pu = orch.command("PU-1")
    assert _values(pu.argv, "--registrar") == [pr2, pr1]
    for option, value in (("--width", "640"), ("--height", "400"), ("--sessions", "6")):
        assert _values(pu.argv, option) == [value]
    assert _values(pu.argv, "--images") == ["0"] and _values(pu.argv, "--interimagetime") == ["2"]
    # The viewer and the log name PEs as the map does; the live picture is in the run dir.
    assert _values(pu.argv, "--pe-name") == ["0x101=PE-1", "0x102=PE-2", "0x103=PE-3"]
    assert _values(pu.argv, "--live-image") == [pu.files["live"]]
    assert Path(pu.files["live"]).parent == tmp_path
    # A component's own option wins over the scenario's rhythm.
    custom = loads_scenario(
        (SCENARIOS / "local.toml")
        .read_text()
        .replace("options = { playlist = true, recvtimeout = 2000 }", "options = { images = 3 }"),
        source=SCENARIOS / "local.toml",
    )
    custom_orch = Orchestrator(custom, run_dir=tmp_path)
    custom_orch._resolve_registrar_ports()
    assert _values(custom_orch.command("PU-1").argv, "--images") == ["3"]


def test_a_home_registrar_must_be_a_registrar_the_component_uses() -> None:
    base = (SCENARIOS / "local.toml").read_text()
    for old, new, message in (
        ('registrar = "PR-2"       #', 'registrar = "PE-1"       #', "not a registrar"),
        ('identifier = 0x1\nregistrar = "PR-2"', 'identifier = 0x1\nregistrar = "PR-2"\n'
         'registrars = ["PR-1"]', "not in this registrars list"),
        ('kind = "fractal-pu"', 'kind = "fractal-pu"\ndisplay = "wall"', "'pane' or 'window'"),
    ):  # fmt: skip
        assert old in base
        with pytest.raises(ScenarioError, match=message):
            loads_scenario(base.replace(old, new), source=SCENARIOS / "local.toml")


@pytest.mark.sctp
def test_a_registrar_over_kernel_sctp_is_found_ready(tmp_path: Path) -> None:
    """Where the kernel has SCTP, components pick it (--transport auto), so the readiness
    probe must speak it too: a TCP probe would never find the registrar listening."""
    text = """\
[scenario]
csp_port = 0
[[components]]
name = "PR-1"
kind = "registrar"
asap_port = 0
enrp_port = 0
"""
    scenario = loads_scenario(text, source=tmp_path / "sctp.toml")

    async def body() -> None:
        # Status reports go to a free port nobody listens on (the test reads the log).
        async with Orchestrator(
            scenario, run_dir=tmp_path, ready_timeout=60, csp_port=free_udp_port()
        ) as orch:
            await orch.start_all()
            # Ready means "accepts connections": the kernel completes the handshake from
            # listen() on, a moment before the registrar writes its ready line.
            await wait_for_log(orch.log_file("PR-1"), r"ready: ASAP on .* \((sctp|tcp)\)", 30)
            log = Path(orch.log_file("PR-1")).read_text()
            assert "(sctp)" in log, log
            await orch.stop_all()

    run(body, timeout=120)
