"""Fixtures of the viewer tests: a registrar and fractal PE processes, viewer windows.

Processes run on loopback with ephemeral ports and the TCP mapping and are
stopped by PID in the finalizers. Windows are closed (which stops the engine
thread) at the end of each test. Screenshots go to ``test-artifacts/`` at the
repository root (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from fractal_pe.kernel import compute_rows
from fractal_pu.fsf import read_fsf
from fractal_pu.split import split_image_covering, sub_parameters
from tests.registrar.service_helpers import RegistrarProcess, registrar_args

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"
FSF = REPO / "assets" / "fsf" / "02-seahorse-valley.fsf"
POOL = "FractalViewerTestPool"
KEY = "hex:" + "3c" * 32


class FractalPe:
    """One ``fractal-pe`` child process."""

    def __init__(self, identifier: int, registrar: RegistrarProcess, tmp: Path, *extra: str):
        self.identifier = identifier
        self.log_path = tmp / f"pe-{identifier:x}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, RSERPOOL_COOKIE_KEY=KEY, FRACTAL_KERNEL="numpy")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fractal_pe.cli",
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
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_registered(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while "registered (registrar" not in self.log_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"fractal-pe exited early:\n{self.log_text()}")
            assert time.monotonic() < deadline, f"fractal-pe not registered:\n{self.log_text()}"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)

    def stop(self) -> None:
        try:
            self.kill()
        finally:
            self._log.close()


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
