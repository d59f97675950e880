"""Start order: the registrars' reports decide when the pool users may start."""

from __future__ import annotations

from control_center.monitor import ComponentState
from control_center.registration import registered_pes, registration_state
from rsplib.wire.csp import ComponentGroup, component_id

PR1 = component_id(ComponentGroup.REGISTRAR, 0x10001)
PR2 = component_id(ComponentGroup.REGISTRAR, 0x10002)
NAMES = {PR1: "PR-1", PR2: "PR-2"}


def registrar(csp_id: int, status: str, *, active: bool = True) -> ComponentState:
    return ComponentState(csp_id, NAMES[csp_id], False, 5.0, active=active, status=status)


def test_the_registrar_status_text_gives_the_pool_element_count() -> None:
    assert registered_pes("3[2] PEs in 1 Pool(s), 1 Peer(s)") == 3
    assert registered_pes("0[0] PEs in 0 Pool(s), 0 Peer(s)") == 0
    for other in ("", "3 PEs", "Looking for Registrar ...", "x3[2] PEs in 1 Pool(s)"):
        assert registered_pes(other) is None


def test_every_active_registrar_must_know_every_pool_element() -> None:
    def state(*states: ComponentState, expected: int = 3):  # type: ignore[no-untyped-def]
        return registration_state(states, NAMES, expected)

    assert not state().complete  # no registrar report at all
    partly = state(
        registrar(PR1, "3[2] PEs in 1 Pool(s), 1 Peer(s)"),
        registrar(PR2, "2[1] PEs in 1 Pool(s), 1 Peer(s)"),
    )
    assert not partly.complete
    assert partly.describe() == "3 pool element(s) expected; PR-1 knows 3, PR-2 knows 2"
    assert state(
        registrar(PR1, "3[2] PEs in 1 Pool(s), 1 Peer(s)"),
        registrar(PR2, "3[1] PEs in 1 Pool(s), 1 Peer(s)"),
    ).complete
    # A registrar that is gone does not hold the pool users back.
    assert state(
        registrar(PR1, "3[3] PEs in 1 Pool(s), 0 Peer(s)"),
        registrar(PR2, "0[0] PEs in 0 Pool(s), 0 Peer(s)", active=False),
    ).complete
    # One whose report has no count yet does.
    assert not state(registrar(PR1, "starting"), expected=0).complete
