"""Start order: pool users wait until the pool elements are registered.

A pool user that starts right after its pool elements resolves the pool
handle before most of them registered, and every session of its first image
goes to the one PE that was quickest. So ``start_all`` waits, between the
pool elements and the pool users, until the registrars' own status reports
say that they know every pool element started so far.

A registrar reports ``"N[M] PEs in P Pool(s), K Peer(s)"`` (rsplib's text:
N pool elements in its handlespace, M of them registered with it); reports
of every active registrar of the scenario must show at least the expected N.
The wait has a timeout: then the pool users start anyway, and the message
says which registrar knew how many.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from control_center.monitor import ComponentState, CspMonitor, StatusModel
from control_center.orchestrator import BeforePoolUsers, Orchestrator
from rsplib.wire.csp import ComponentGroup

#: How long pool users wait for the pool elements' registration.
DEFAULT_REGISTRATION_TIMEOUT_S = 10.0
_PE_COUNT = re.compile(r"^\s*(\d+)\[(\d+)\] PEs in ")


def registered_pes(status: str) -> int | None:
    """The number of pool elements a registrar's status text reports (None: no such text)."""
    match = _PE_COUNT.match(status)
    return int(match[1]) if match else None


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """What the registrars report, against what is expected."""

    expected: int
    #: Registrar name -> pool elements it reports (None: no report of that kind yet).
    counts: Mapping[str, int | None]

    @property
    def complete(self) -> bool:
        return bool(self.counts) and all(
            n is not None and n >= self.expected for n in self.counts.values()
        )

    def describe(self) -> str:
        known = ", ".join(
            f"{name} knows {'?' if n is None else n}" for name, n in sorted(self.counts.items())
        )
        return f"{self.expected} pool element(s) expected; {known or 'no registrar reports'}"


def registration_state(
    states: Iterable[ComponentState], registrars: Mapping[int, str], expected: int
) -> RegistrationState:
    """The registration as the active registrars (CSP id -> name) report it."""
    counts = {
        registrars[s.csp_id]: registered_pes(s.status)
        for s in states
        if s.csp_id in registrars and s.active
    }
    return RegistrationState(expected, counts)


async def wait_for_registration(
    monitor: CspMonitor,
    registrars: Mapping[int, str],
    expected: int,
    timeout: float = DEFAULT_REGISTRATION_TIMEOUT_S,
) -> tuple[bool, RegistrationState]:
    """Wait until every active registrar knows ``expected`` pool elements.

    Returns (in time, the state at the end).
    """

    def state(model: StatusModel) -> RegistrationState:
        return registration_state(model.components.values(), registrars, expected)

    done = await monitor.wait_until(lambda model: state(model).complete, timeout)
    return done, state(monitor.model)


def registration_wait(
    monitor: CspMonitor, timeout: float = DEFAULT_REGISTRATION_TIMEOUT_S
) -> BeforePoolUsers:
    """The ``before_pool_users`` step of ``Orchestrator.start_all`` (see the module doc)."""

    async def wait(orch: Orchestrator) -> str | None:
        scenario = orch.scenario
        registrars = {
            r.csp_id: r.name
            for r in scenario.registrars()
            if r.csp_id is not None and orch.is_running(r.name)
        }
        expected = sum(
            1
            for c in scenario.components
            if c.group == ComponentGroup.POOL_ELEMENT and orch.is_running(c.name)
        )
        if not registrars or not expected:
            return None
        started = monitor.now()
        done, state = await wait_for_registration(monitor, registrars, expected, timeout)
        if done:
            return (
                f"pool users started once the registrars knew all {expected} pool elements "
                f"({monitor.now() - started:.1f} s)"
            )
        return (
            f"pool users started without waiting longer: after {timeout:g} s not every "
            f"pool element was registered ({state.describe()})"
        )

    return wait
