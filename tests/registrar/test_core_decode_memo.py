"""Handle Resolutions and Registrations that repeat byte for byte are decoded once; the
answers stay right and the memory for it stays bounded."""

from __future__ import annotations

from rsplib.registrar import core as core_module
from rsplib.wire.asap import HandleResolution, HandleResolutionResponse, RegistrationResponse
from tests.registrar.core_harness import POOL, FakePE, Net


def test_repeated_requests_are_answered_alike_and_the_memo_is_bounded() -> None:
    net = Net()
    core = net.add_registrar("A", 0x10)
    net.run(1.0)
    pe = FakePE(net)
    conn = net.connect_pe(pe, "A")
    for _ in range(3):  # the same Registration bytes: one PE, re-registered
        pe.register(conn, 7)
    assert [r.rejected for r in pe.received(RegistrationResponse)] == [False] * 3
    assert len(list(core.handlespace.entries())) == 1
    user = FakePE(net)
    user_conn = net.connect_pe(user, "A")
    for _ in range(3):
        user.send(user_conn, HandleResolution(POOL, items=1))
    answers = user.received(HandleResolutionResponse)
    assert [[p.identifier for p in a.pool_elements] for a in answers] == [[7]] * 3
    # Distinct questions (here: pool handles) evict, never grow the memo without bound.
    for index in range(core_module._MEMO_ENTRIES + 10):
        user.send(user_conn, HandleResolution(b"pool-%d" % index, items=1))
    assert len(core._asap_memo) <= core_module._MEMO_ENTRIES
    # An empty message is still a protocol problem, not a crash.
    net.allow_errors = False
    user.send_raw(user_conn, b"")
