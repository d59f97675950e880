"""Session machines with a real registrar core, real ASAP clients and scripted PEs.

Failover, cookie echo and refusal, heartbeat loss and re-resolution, on a fake
clock and without sockets (see ``session_world``).
"""

from __future__ import annotations

from rsplib.session.pu_machine import (
    Connected,
    CookieRejected,
    DataReceived,
    FailoverCompleted,
    FailoverReason,
    FailoverStarted,
    PuState,
)
from tests.session.session_world import POOL, SessionWorld


def completed(world: SessionWorld, name: str) -> list[FailoverCompleted]:
    return [e for e in world.session_events[name] if isinstance(e, FailoverCompleted)]


def test_a_killed_pe_s_session_moves_on_with_its_cookie() -> None:
    world = SessionWorld()
    first = world.add_pe("pe-1")
    second = world.add_pe("pe-2")
    machine = world.add_session("s")
    world.open("s", timeout=5.0)
    world.advance(0.1)
    (connected,) = [e for e in world.session_events["s"] if isinstance(e, Connected)]
    serving = first if connected.pe.identifier == first.identifier else second
    other = second if serving is first else first
    # The PU asks for work; the PE answers with data and a cookie.
    conn = machine.current_connection
    assert conn is not None
    world._pe_receives(machine, conn, world.links[("s", conn)], 32, b"job")
    world.pump()
    cookie = machine.cookie
    assert cookie is not None
    world.kill_pe(serving)
    world.advance(0.5)
    (done,) = completed(world, "s")
    assert done.new_pe.identifier == other.identifier and done.had_cookie
    assert other.echoes_seen == [cookie]
    assert machine.state is PuState.CONNECTED
    # The registrar dropped the killed PE when its connection went; nobody reported it.
    assert world.registrars["A"].core.handlespace.get(POOL, serving.identifier) is None


def test_a_hung_pe_costs_a_heartbeat_timeout_but_not_the_cookie() -> None:
    """A registered but hung PE is not a refusal: the cookie goes on to the next PE."""
    world = SessionWorld(heartbeat_timeout=3.0)
    working = world.add_pe("working")
    machine = world.add_session("s")
    world.open("s", timeout=5.0)
    world.advance(0.1)
    conn = machine.current_connection
    assert conn is not None
    world._pe_receives(machine, conn, world.links[("s", conn)], 32, b"job")
    cookie = machine.cookie
    assert cookie is not None
    hung = world.add_pe("hung", behaviour="hang")
    world.kill_pe(working)
    world.advance(1.0)
    assert machine.state is PuState.ECHOING and hung.sessions == 1
    rescuer = world.add_pe("rescuer")
    world.advance(3.0)  # the hung PE's heartbeats time out
    (done,) = completed(world, "s")
    assert done.new_pe.identifier == rescuer.identifier
    assert done.had_cookie and done.attempts >= 2
    assert rescuer.echoes_seen == [cookie]
    assert not [e for e in world.session_events["s"] if isinstance(e, CookieRejected)]
    started = [e for e in world.session_events["s"] if isinstance(e, FailoverStarted)]
    assert len(started) == 1 and started[0].reason is FailoverReason.RESET


def test_a_refused_cookie_restarts_the_session_without_it() -> None:
    world = SessionWorld()
    working = world.add_pe("working")
    machine = world.add_session("s")
    world.open("s", timeout=5.0)
    world.advance(0.1)
    conn = machine.current_connection
    assert conn is not None
    world._pe_receives(machine, conn, world.links[("s", conn)], 32, b"job")
    refuser = world.add_pe("refuser", behaviour="refuse")
    world.kill_pe(working)
    world.advance(1.0)
    (rejected,) = [e for e in world.session_events["s"] if isinstance(e, CookieRejected)]
    assert rejected.pe.identifier == refuser.identifier
    (done,) = completed(world, "s")
    # Only the refusing PE is left: the session starts fresh there.
    assert done.new_pe.identifier == refuser.identifier and not done.had_cookie
    assert len(refuser.echoes_seen) == 1 and machine.cookie is None
    new_conn = machine.current_connection
    assert new_conn is not None
    world._pe_receives(machine, new_conn, world.links[("s", new_conn)], 32, b"job again")
    assert [e for e in world.session_events["s"] if isinstance(e, DataReceived)]


def test_a_busy_pe_is_never_reported_so_it_stays_in_the_pool() -> None:
    world = SessionWorld()
    busy = world.add_pe("busy", behaviour="busy")
    world.add_session("s")
    world.open("s", timeout=2.0)
    world.advance(3.0)
    assert busy.sessions >= 5  # tried again and again (every 0.25 s) ...
    # ... but never reported: the registrar still has the busy PE.
    assert world.registrars["A"].core.handlespace.get(POOL, busy.identifier) is not None
