"""Virtual-host lab: namespaces, bridge, unplug/replug/impair, and a PU failing over.

Needs root (network namespaces); skipped with the reason otherwise. Every lab
uses a random 10.x.y.0/24 subnet and a random name token, so concurrent runs on
one machine do not collide; fixtures remove everything even when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from control_center.launchers import netns
from control_center.launchers.base import (
    Action,
    HostChanged,
    HostConnectionError,
    Impairment,
    LauncherEvent,
    ProcessExited,
)
from control_center.launchers.netns import qdisc_args
from control_center.orchestrator import Orchestrator, OrchestratorError
from control_center.scenario_file import loads_scenario
from tests.control_center.launch_helpers import open_collector, wait_for, wait_for_log

T = TypeVar("T")
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

needs_lab = pytest.mark.skipif(
    netns.lab_requirements_problem() is not None,
    reason=f"virtual-host lab unavailable: {netns.lab_requirements_problem()}",
)


def run(factory: Callable[[], Awaitable[T]], timeout: float = 90.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(main())


def random_prefix() -> str:
    return f"10.{random.randint(200, 250)}.{random.randint(1, 250)}."


def new_token() -> str:
    return f"t{random.getrandbits(20):05x}"


def namespaces(token: str) -> set[str]:
    """This test's namespaces (other labs may come and go meanwhile)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    return {n for n in names if n.startswith(f"rsp-{token}-")}


ECHO_SERVER = (
    "import socket, sys\n"
    "s = socket.create_server((sys.argv[1], 7000))\n"
    "print('listening', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'hi'); c.close()\n"
)


def two_host_scenario(prefix: str, tmp_path: Path) -> str:
    return f"""\
[scenario]
csp_port = 0
stop_grace_s = 2
[hosts.a]
kind = "netns"
address = "{prefix}1/24"
[hosts.b]
kind = "netns"
address = "{prefix}2/24"
[[components]]
name = "srv"
kind = "command"
host = "a"
command = ["{sys.executable}", "-c", {json.dumps(ECHO_SERVER)}, "{prefix}1"]
"""


async def fetch(address: str, timeout: float) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, 7000), timeout)
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    return data


def test_lab_refuses_clearly_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    problem = netns.lab_requirements_problem()
    assert problem is not None and "root" in problem


def test_qdisc_arguments() -> None:
    assert qdisc_args(Impairment(rate="8bit", burst="1", latency_ms=1)) == [
        "tbf", "rate", "8bit", "burst", "1", "latency", "1ms",
    ]  # fmt: skip
    assert qdisc_args(Impairment(delay_ms=100, loss_percent=5)) == [
        "netem", "delay", "100ms", "loss", "5%",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        qdisc_args(Impairment())


@needs_lab
def test_lab_setup_unplug_replug_impair_and_teardown(tmp_path: Path) -> None:
    prefix = random_prefix()
    scenario = loads_scenario(two_host_scenario(prefix, tmp_path), source=tmp_path / "lab.toml")
    token = new_token()

    async def body() -> None:
        events: list[LauncherEvent] = []
        orch = Orchestrator(scenario, run_dir=tmp_path, lab_token=token)
        orch.subscribe(events.append)
        async with orch:
            assert orch.lab is not None
            lab = orch.lab
            created = namespaces(token)
            assert created == {lab.switch, lab.namespace("a"), lab.namespace("b")}
            assert orch.supports("a", Action.UNPLUG) and orch.csp_listen_address == "0.0.0.0"
            await orch.start_all()
            server = f"{prefix}1"
            await wait_for_log(orch.log_file("srv"), "(?m)^listening$")
            # The control center reaches the virtual host through its bridge port.
            assert await fetch(server, 2.0) == b"hi"

            await orch.unplug("a")
            with pytest.raises((TimeoutError, OSError)):
                await fetch(server, 0.5)
            await orch.replug("a")
            assert await fetch(server, 3.0) == b"hi"

            await orch.impair("a", Impairment(rate="1mbit"))
            qdisc = subprocess.run(
                ["tc", "-n", lab.namespace("a"), "qdisc", "show", "dev", "eth0"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            assert "tbf" in qdisc
            assert await fetch(server, 3.0) == b"hi"
            await orch.impair("a", None)
            host_events = [e.what for e in events if isinstance(e, HostChanged)]
            assert host_events == ["unplugged", "replugged", "impaired", "unimpaired"]
        assert namespaces(token) == set()
        link = subprocess.run(["ip", "link", "show", lab.uplink], capture_output=True)
        assert link.returncode != 0  # the root-namespace port is gone too
        exits = [e for e in events if isinstance(e, ProcessExited)]
        assert len(exits) == 1 and exits[0].expected

    run(body)


@needs_lab
def test_lab_with_a_used_subnet_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    routes = subprocess.run(["ip", "-4", "-o", "route", "show"], capture_output=True, text=True)
    used = [
        line.split()[0] for line in routes.stdout.splitlines()
        if re.match(r"^\d+\.\d+\.\d+\.\d+/(2[4-9]|3[0-2]) ", line)
    ]  # fmt: skip
    if not used:
        pytest.skip("this machine has no /24../32 route whose subnet could be reused")
    network = used[0].split("/")[0].rsplit(".", 1)[0] + "."
    text = two_host_scenario(network, tmp_path).replace(f"{network}1/24", f"{network}201/24")
    text = text.replace(f"{network}2/24", f"{network}202/24")
    scenario = loads_scenario(text, source=tmp_path / "used.toml")
    token = new_token()

    async def body() -> None:
        with pytest.raises(OrchestratorError, match="overlaps"):
            await Orchestrator(scenario, run_dir=tmp_path, lab_token=token).open()

    run(body)
    assert namespaces(token) == set()


@needs_lab
def test_unplugging_the_serving_pe_host_makes_the_pu_fail_over_and_finish(tmp_path: Path) -> None:
    prefix = random_prefix()
    text = (SCENARIOS / "lab.toml").read_text().replace("10.77.0.", prefix)
    text = text.replace("csp_port = 2960", "csp_port = 0")
    # One session, so there is exactly one serving PE; the scenario paces its PEs
    # (block_delay), so the image takes seconds and the unplug always lands mid-image.
    text = re.sub(r"(?m)^sessions = \d+", "sessions = 1", text)
    text = re.sub(r"(?m)^images = \d+", "images = 1", text)
    text = re.sub(r"(?m)^width = \d+", "width = 320", text)
    text = re.sub(r"(?m)^height = \d+", "height = 200", text)
    scenario = loads_scenario(text, source=SCENARIOS / "lab.toml")
    pe_by_id = {c.csp_id: c for c in scenario.components if c.kind.value == "fractal-pe"}
    pu = scenario.component("PU-1")

    async def body() -> None:
        events: list[LauncherEvent] = []
        orch = Orchestrator(scenario, run_dir=tmp_path)
        orch.subscribe(events.append)
        async with orch:
            gateway = scenario.lab_gateway()
            assert gateway is not None
            collector = await open_collector(str(gateway.ip))
            try:
                orch.csp_port = collector.port
                await orch.start_all()

                def serving() -> str | None:
                    report = collector.last_from(pu.csp_id)  # type: ignore[arg-type]
                    for assoc in report.associations if report else ():
                        if assoc.receiver_id in pe_by_id:
                            return pe_by_id[assoc.receiver_id].name
                    return None

                await wait_for(lambda: serving() is not None, 20, "the PU's session to a PE")
                victim = serving()
                assert victim is not None
                await orch.unplug(scenario.component(victim).host)
                await wait_for(lambda: not orch.is_running("PU-1"), 60, "the PU to finish")
            finally:
                collector.close()
            exit_event = [
                e for e in events if isinstance(e, ProcessExited) and e.component == "PU-1"
            ]
            assert exit_event and exit_event[0].status.success, await orch.log_tail("PU-1", 20)
            report = json.loads(Path(orch.files("PU-1")["report"]).read_text())
            image = report["images"][0]
            assert image["complete"] and image["missing_pixels"] == 0
            assert image["failovers"] >= 1
            victim_id = f"{scenario.component(victim).identifier:#010x}"
            used = image["cells"][0]["pes_used"]
            assert used[0] == victim_id and len(used) >= 2, used

    run(body, timeout=120)


@needs_lab
def test_host_failure_names_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab that cannot be built is reported per host, and nothing is left behind."""
    prefix = random_prefix()
    scenario = loads_scenario(two_host_scenario(prefix, tmp_path), source=tmp_path / "lab.toml")
    token = new_token()

    async def broken_build(self: netns.NetnsLab) -> None:
        await netns.run_ip("ip", "netns", "add", self.switch)
        self._created.append(self.switch)
        raise HostConnectionError("lab", "simulated failure half-way")

    monkeypatch.setattr(netns.NetnsLab, "_build", broken_build)

    async def body() -> None:
        with pytest.raises(OrchestratorError) as info:
            await Orchestrator(scenario, run_dir=tmp_path, lab_token=token).open()
        assert set(info.value.failures) == {"a"}  # "b" runs no component
        assert "simulated failure" in str(info.value)

    run(body)
    assert namespaces(token) == set()
