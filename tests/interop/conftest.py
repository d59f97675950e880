"""Fixtures of the interop checks with rsplib: the private test address and process lists.

Inside the lab VM the processes' logs go to ``$LAB_OUT/interop/`` (on the host afterwards,
kept when a test failed); elsewhere to pytest's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.lab import LabNet, Processes, lab_address


@pytest.fixture(scope="session")
def net() -> Iterator[LabNet]:
    with lab_address() as address:
        yield address


def _log_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    lab_out = os.environ.get("LAB_OUT")
    if lab_out and os.environ.get("RSERPOOL_SCTP_LAB") == "1":
        directory = Path(lab_out) / "interop" / re.sub(r"[^\w.-]", "_", name)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    return tmp_path_factory.mktemp(name[:40])


@pytest.fixture(scope="module")
def module_procs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Processes]:
    procs = Processes(_log_dir(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1]))
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def procs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Processes]:
    procs = Processes(_log_dir(tmp_path_factory, request.node.name))
    try:
        yield procs
    finally:
        procs.stop_all()
