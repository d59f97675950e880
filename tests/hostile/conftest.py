"""Fixtures of the attack tests: a registrar process per test, always stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hostile.rawwire import PPID_ASAP, RawConnection, registration
from tests.registrar.service_helpers import ProcessPool, RegistrarProcess, registrar_args

POOL = b"HostilePool"
StartRegistrar = Callable[..., RegistrarProcess]


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessPool]:
    pool = ProcessPool(tmp_path)
    yield pool
    pool.close()


@pytest.fixture
def start_registrar(procs: ProcessPool) -> StartRegistrar:
    """``start_registrar(*extra_args, identifier=..., open_files=...)``: a ready registrar."""

    def start(
        *extra: str, identifier: int = 0x5EC, open_files: int | None = None
    ) -> RegistrarProcess:
        args = registrar_args(identifier, extra=extra)
        return procs.registrar(args, open_files=open_files).wait_ready()

    return start


@pytest.fixture
def connections() -> Iterator[list[RawConnection]]:
    """Raw connections a test opens; closed at the end even when it fails."""
    opened: list[RawConnection] = []
    yield opened
    for conn in opened:
        conn.close()


def register_pe(
    opened: list[RawConnection],
    address: tuple[str, int],
    identifier: int,
    port: int,
    *,
    answer_keep_alives: bool = True,
) -> RawConnection:
    """A pool element on its own connection (answering keep-alives unless told not to)."""
    pe = RawConnection(address, answer_keep_alives=answer_keep_alives)
    opened.append(pe)
    answer = pe.request(PPID_ASAP, registration(POOL, identifier, port), 0x03)
    assert not answer.rejected, "the registrar refused a plain registration"
    return pe
