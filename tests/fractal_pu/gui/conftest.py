"""Fixtures of the viewer tests: a registrar and fractal PE processes, viewer windows.

Processes run on loopback with ephemeral ports and the TCP mapping and are
stopped by PID in the finalizers. Windows are closed (which stops the engine
thread) at the end of each test. Screenshots go to ``test-artifacts/`` at the
repository root (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from fractal_pe.kernel import compute_rows
from fractal_pu.fsf import read_fsf
from fractal_pu.split import split_image_covering, sub_parameters
from tests.registrar.service_helpers import RegistrarProcess, registrar_args
from tests.support import FractalPeProcess

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"
FSF = REPO / "assets" / "fsf" / "02-seahorse-valley.fsf"
POOL = "FractalViewerTestPool"
KEY = "hex:" + "3c" * 32


class FractalPe(FractalPeProcess):
    """One ``fractal-pe`` child process of the viewer tests."""

    def __init__(self, identifier: int, registrar: RegistrarProcess, tmp: Path, *extra: str):
        self.identifier = identifier
        env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY, FRACTAL_KERNEL="numpy")
        args = [
            "--registrar",
            f"{registrar.asap[0]}:{registrar.asap[1]}",
            "--transport",
            "tcp",
            "--identifier",
            f"0x{identifier:x}",
            "--poolhandle",
            POOL,
            "--kernel",
            "numpy",
            "--heartbeat-interval",
            "250",
            *extra,
        ]
        super().__init__(args, tmp / f"pe-{identifier:x}.log", env)

    def stop(self, timeout: float = 5.0) -> int | None:
        """PEs of the viewer tests die by SIGKILL."""
        self.kill_and_close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrarProcess]:
    tmp = tmp_path_factory.mktemp("viewer-registrar")
    process = RegistrarProcess(registrar_args(0xC1), tmp / "pr.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


PeFactory = Callable[..., FractalPe]


@pytest.fixture
def start_pe(registrar: RegistrarProcess, tmp_path: Path) -> Iterator[PeFactory]:
    """``start_pe(identifier, *extra_args)`` starts a PE and waits for its registration."""
    started: list[FractalPe] = []

    def start(identifier: int, *extra: str) -> FractalPe:
        pe = FractalPe(identifier, registrar, tmp_path, *extra)
        started.append(pe)
        pe.wait_registered()
        return pe

    try:
        yield start
    finally:
        for pe in started:
            pe.stop()


def reference_values(width: int, height: int, sessions: int) -> np.ndarray:
    """Iteration counts of the test image, each cell computed offline from its parameters."""
    job = read_fsf(FSF)
    image = np.zeros((height, width), dtype=np.uint32)
    for rect in split_image_covering(width, height, sessions):
        param = sub_parameters(job, rect, width, height)
        image[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = compute_rows(
            param, 0, rect.h, kernel="numpy"
        )
    return image


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
