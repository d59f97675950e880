"""Shared test configuration.

Qt runs offscreen unless the caller chose a platform (without a display and
without this, Qt aborts the process). ``--run-slow`` enables soak/fuzz tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run long soak/fuzz tests (marked slow)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="long soak/fuzz run; enable with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def _have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


@pytest.fixture(scope="session")
def tshark_tools() -> None:
    """Skip (with the reason) when tshark/text2pcap are not installed."""
    if not _have("tshark", "text2pcap"):
        pytest.skip("tshark/text2pcap not installed (scripts/setup.sh installs them as root)")
