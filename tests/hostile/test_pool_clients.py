"""Failures 2 and 3 of the attack review (independent clients, real registrar).

2. Three Endpoint Unreachable reports from one connection within 60 ms removed a PE that
   answered its keep-alives, also with ``--max-eu-rate 1``.
3. A second connection from the same host re-registered another connection's PE
   identifier with its own port; when it disconnected, the real PE was gone.
"""

from __future__ import annotations

import time

import pytest

from tests.hostile.conftest import POOL, StartRegistrar, register_pe
from tests.hostile.rawwire import (
    PPID_ASAP,
    RawConnection,
    endpoint_unreachable,
    registration,
    resolve,
)


@pytest.mark.parametrize("rate_limit", [[], ["--max-eu-rate", "1"]], ids=["unlimited", "rate-1"])
def test_one_pool_user_cannot_remove_a_healthy_pe(
    start_registrar: StartRegistrar, connections: list[RawConnection], rate_limit: list[str]
) -> None:
    reg = start_registrar("--endpoint-keepalive-timeout", "500", *rate_limit)
    register_pe(connections, reg.asap, 0x4004, 41004)
    pu = RawConnection(reg.asap)
    connections.append(pu)
    for _ in range(3):
        pu.send(PPID_ASAP, endpoint_unreachable(POOL, 0x4004))
        time.sleep(0.02)
    time.sleep(1.0)  # twice the keep-alive timeout of the probe the PE answered
    assert resolve(reg.asap, POOL) == {0x4004: 41004}


def test_reported_pe_that_does_not_answer_is_removed_at_once(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    # Keep-alives every minute: only the probe that the report causes can find it hung.
    reg = start_registrar(
        "--endpoint-keepalive-interval", "60000", "--endpoint-keepalive-timeout", "500"
    )
    register_pe(connections, reg.asap, 0x5005, 41005, answer_keep_alives=False)
    pu = RawConnection(reg.asap)
    connections.append(pu)
    pu.send(PPID_ASAP, endpoint_unreachable(POOL, 0x5005))
    deadline = time.monotonic() + 3.0
    while resolve(reg.asap, POOL) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert resolve(reg.asap, POOL) == {}


def test_second_connection_cannot_take_over_a_pe_identifier(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar()
    register_pe(connections, reg.asap, 0x6006, 41006)
    intruder = RawConnection(reg.asap)  # same host, another connection
    connections.append(intruder)
    answer = intruder.request(PPID_ASAP, registration(POOL, 0x6006, 49999), 0x03)
    assert answer.rejected
    assert resolve(reg.asap, POOL) == {0x6006: 41006}
    intruder.close()
    time.sleep(0.3)
    assert resolve(reg.asap, POOL) == {0x6006: 41006}
