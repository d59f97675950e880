"""Fixtures that start real processes and always stop them by PID.

The processes of a ``cluster`` speak the test's ``transport`` (the TCP mapping, or
kernel SCTP for tests parametrized with tests.transports.both_transports).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.processes import EchoPe, Process, Registrar


class Cluster:
    """Processes of one test; the finalizer stops every one of them."""

    def __init__(self, log_dir: Path, transport: str) -> None:
        self.log_dir = log_dir
        self.transport = transport
        self.processes: list[Process] = []

    def registrar(self, identifier: int, **kwargs: Any) -> Registrar:
        registrar = Registrar(identifier, self.log_dir, transport=self.transport, **kwargs)
        self.processes.append(registrar)
        return registrar

    def echo_pe(self, identifier: int, **kwargs: Any) -> EchoPe:
        pe = EchoPe(identifier, self.log_dir, transport=self.transport, **kwargs)
        self.processes.append(pe)
        return pe

    def stop_all(self) -> None:
        # Pool elements first: a PE whose registrar is gone waits for it while deregistering.
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def cluster(tmp_path: Path, transport: str) -> Iterator[Cluster]:
    group = Cluster(tmp_path, transport)
    try:
        yield group
    finally:
        group.stop_all()
