"""Failure 1 of the attack review: a rogue ENRP peer (independent client, real registrar).

Any process reaching the ENRP port became a peer; its Handle Updates added PEs without
limit and overwrote, then deleted, a PE registered at this registrar that was alive and
answering its keep-alives.
"""

from __future__ import annotations

import contextlib
import struct

from tests.hostile.conftest import POOL, StartRegistrar, register_pe
from tests.hostile.rawwire import (
    PPID_ENRP,
    RawConnection,
    handle_table_request,
    handle_update,
    presence,
    record,
    resolve,
)

ROGUE = 0x0BAD0BAD


def join_as_peer(
    opened: list[RawConnection], enrp: tuple[str, int], registrar_id: int
) -> RawConnection:
    """Connect to the ENRP port and become a peer by a Presence (no authentication)."""
    rogue = RawConnection(enrp)
    opened.append(rogue)
    rogue.send(PPID_ENRP, presence(ROGUE, 40000, reply=True))
    answer = rogue.expect(0x01, ppid=PPID_ENRP)  # its Presence back: we are a peer now
    assert struct.unpack_from("!I", answer.body)[0] == registrar_id
    return rogue


def barrier(rogue: RawConnection, registrar_id: int) -> list[bytes]:
    """Everything the rogue sent before is processed once its table request is answered;
    returns the Pool Element parameters of the whole table (following the M flag)."""
    elements: list[bytes] = []
    while True:
        answer = rogue.request(PPID_ENRP, handle_table_request(ROGUE, registrar_id), 0x03)
        elements += [value for kind, value in answer.params(8) if kind == 0x000A]
        if not answer.flags & 0x02:
            return elements


def test_rogue_peer_cannot_overwrite_or_delete_a_pe_registered_here(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar()
    register_pe(connections, reg.asap, 0x1001, 41001)
    rogue = join_as_peer(connections, reg.enrp, reg.server_id)
    rogue.send(PPID_ENRP, handle_update(ROGUE, reg.server_id, True, POOL, 0x1001, 50000, ROGUE))
    rogue.send(PPID_ENRP, handle_update(ROGUE, reg.server_id, False, POOL, 0x1001, 50000, ROGUE))
    barrier(rogue, reg.server_id)
    assert resolve(reg.asap, POOL) == {0x1001: 41001}
    assert "not stored: PE is registered here" in reg.log_text()


def test_rogue_peer_adds_only_up_to_its_quota(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar()  # the default quota: 10,000 PEs per other registrar
    rogue = join_as_peer(connections, reg.enrp, reg.server_id)
    updates = b"".join(
        record(PPID_ENRP, handle_update(ROGUE, reg.server_id, True, POOL, identifier, 50000, ROGUE))
        for identifier in range(1, 10_501)
    )
    rogue.send_bytes(updates)
    stored = barrier(rogue, reg.server_id)
    homes = [struct.unpack_from("!I", value, 4)[0] for value in stored]
    assert homes.count(ROGUE) == 10_000
    assert "more than 10000 PEs of registrar 0x0bad0bad" in reg.log_text()


def test_handle_update_speaks_only_for_the_senders_own_pes(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar()
    register_pe(connections, reg.asap, 0x2002, 41002)
    rogue = join_as_peer(connections, reg.enrp, reg.server_id)
    # A Handle Update for a PE of another registrar (home 0x77) is not the sender's to give.
    rogue.send(PPID_ENRP, handle_update(ROGUE, reg.server_id, True, POOL, 0x3003, 50000, 0x77))
    stored = barrier(rogue, reg.server_id)
    assert {struct.unpack_from("!I", value)[0] for value in stored} == {0x2002}
    assert resolve(reg.asap, POOL) == {0x2002: 41002}


def test_unknown_peer_is_refused_when_an_allow_list_is_given(
    start_registrar: StartRegistrar, connections: list[RawConnection]
) -> None:
    reg = start_registrar("--allow-peer", "127.0.0.77")
    rogue = RawConnection(reg.enrp)
    connections.append(rogue)
    with contextlib.suppress(OSError):  # it may be closed before we get to send
        rogue.send(PPID_ENRP, presence(ROGUE, 40000, reply=True))
    assert rogue.closed.wait(5.0), "the registrar kept a connection from a host not allowed"
    assert "not in the peer allow-list" in reg.log_text()
    assert "new ENRP peer 0x0bad0bad" not in reg.log_text()
