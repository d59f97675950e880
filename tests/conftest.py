"""Shared test configuration.

Qt runs offscreen unless the caller chose a platform (without a display and
without this, Qt aborts the process). ``--run-slow`` enables soak/fuzz tests.
Tests marked ``sctp`` need kernel SCTP; where this kernel lacks it they run in the
lab VM (tests/vm/pytest_lab.py, docs/sctp-lab.md).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.transports import TCP_MAPPING
from tests.vm import pytest_lab

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Property tests check behaviour, not speed: Hypothesis' per-example deadline (200 ms)
# measures wall time, which a loaded 2-core machine stretches at random. Speed is the
# benchmarks' job (bench/).
settings.register_profile("project", deadline=None)
settings.load_profile("project")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run long soak/fuzz tests (marked slow)",
    )
    pytest_lab.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # Tests marked sctp: native where the kernel has SCTP, else in the lab VM (one boot).
    plugin = pytest_lab.make_plugin(config)
    if plugin is not None:
        config.pluginmanager.register(plugin, "sctp-lab")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="long soak/fuzz run; enable with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Command-line ``main()``s run in-process replace the root handlers with one on
    the stderr of the moment (pytest's capture file, closed after the test); put the
    handlers back so later tests neither lose their log capture nor print
    "Logging error" tracebacks."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if not _is_pytest_handler(h)]
    level = root.level
    yield
    for handler in root.handlers[:]:
        if handler not in ours and not _is_pytest_handler(handler):
            root.removeHandler(handler)
            handler.close()
    for handler in ours:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _is_pytest_handler(handler: logging.Handler) -> bool:
    # pytest adds and removes its capture handlers around each test phase itself.
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def transport() -> str:
    """The transport of a real-socket test: the TCP mapping unless the test is
    parametrized over both (tests.transports.both_transports)."""
    return TCP_MAPPING


def _have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


@pytest.fixture(scope="session")
def tshark_tools() -> None:
    """Skip (with the reason) when tshark/text2pcap are not installed."""
    if not _have("tshark", "text2pcap"):
        pytest.skip("tshark/text2pcap not installed (scripts/setup.sh installs them as root)")
