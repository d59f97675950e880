"""ENRP between rsplib's ``rspregistrar`` and our ``rsp-registrar`` over kernel SCTP.

Three registrars peer with each other: rsplib's R (id 0x20) and ours, O1 (0x30) and O2
(0x40). An rsplib echo PE registers at R, one of ours at O1. Checked: each PE resolves at
every registrar; the ownership checksums agree (every registrar's view of each home's PEs,
and no checksum-triggered resynchronisation in steady state); a restarted registrar of
either kind gets the other kind's PEs back from its peers; a dead registrar's PEs are taken
over by a registrar of the other kind, in both directions. rsplib completes a takeover
only when every other peer acknowledges it, hence the third registrar.

hsdump poses as a peer of its target for a few seconds; a takeover by rsplib's registrar
started meanwhile would wait for hsdump's acknowledgement in vain. So the takeover test
looks at rsplib's registrar with hsdump only after its takeover is complete (the first
test's hsdump peers died with the registrars it restarted).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rsplib.handlespace.checksum import ownership_checksum
from tests.interop.lab import (
    LabNet,
    OurRegistrar,
    Processes,
    Rspregistrar,
    occurrences,
    our_echo_pe,
    rsplib_echo_pe,
    wait_for_text,
    wait_resolves,
)
from tests.interop.rsplib_programs import HandlespaceDump, hsdump, need_programs
from tests.support import LoggedProcess

pytestmark = [pytest.mark.sctp, pytest.mark.timeout(300)]

POOL = "EnrpInteropPool"
R_ID, O1_ID, O2_ID = 0x20, 0x30, 0x40
RSPLIB_PE, OUR_PE = 0x111, 0x222
#: O2 notices dead peers later than R, so that R (not O2) takes over O1's PEs.
SLOW_PEER_TIMERS = (
    "--peer-heartbeat-interval", "1000",
    "--peer-max-time-last-heard", "4000",
    "--peer-max-time-no-response", "2000",
    "--takeover-expiry", "2000",
    "--mentor-discovery-timeout", "500",
)  # fmt: skip


@dataclass
class Trio:
    r: Rspregistrar
    o1: OurRegistrar
    o2: OurRegistrar
    our_pe: LoggedProcess

    @property
    def all(self) -> tuple[Rspregistrar | OurRegistrar, ...]:
        return (self.r, self.o1, self.o2)


@pytest.fixture(scope="module")
def trio(net: LabNet, module_procs: Processes) -> Iterator[Trio]:
    """The three registrars and two PEs, shared by the tests in order: the first leaves
    all of them running (it restarts two registrars), the second kills two."""
    need_programs("rspregistrar", "rspserver", "hsdump")
    procs = module_procs
    r_enrp, o1_enrp, o2_enrp = net.endpoint(9901), net.endpoint(19901), net.endpoint(29901)
    # Our echo PE cannot be reached by a registrar it did not register with (see the
    # takeover test), so rsplib's R keeps a taken-over PE of ours for 20 s, not 5.
    r = Rspregistrar(
        procs, net, R_ID, 3863, 9901, peers=(o1_enrp, o2_enrp),
        extra=["-endpointkeepalivetimeoutinterval=20000"],
    )  # fmt: skip
    # Debug logs: the tests look for the checksum comparisons.
    o1 = OurRegistrar(procs, net, O1_ID, 13863, 19901, peers=(r_enrp, o2_enrp), loglevel="debug")
    o2 = OurRegistrar(
        procs, net, O2_ID, 23863, 29901, peers=(r_enrp, o1_enrp), timers=SLOW_PEER_TIMERS,
        loglevel="debug",
    )  # fmt: skip
    o1.ready()
    o2.ready()
    rsplib_echo_pe(procs, RSPLIB_PE, r.asap, POOL)
    trio = Trio(r, o1, o2, our_echo_pe(procs, net, OUR_PE, o1.asap, POOL))
    for registrar in trio.all:
        wait_resolves(registrar.asap, POOL, {RSPLIB_PE, OUR_PE}, timeout=60.0)
    yield trio


def expected_checksum(*pes: int) -> int:
    return ownership_checksum((POOL.encode(), pe) for pe in pes)


def as_hsdump_shows(checksum: int) -> int:
    """hsdump prints the 16-bit checksum field as a little-endian number."""
    return ((checksum & 0xFF) << 8) | (checksum >> 8)


def count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


def test_pes_resolve_everywhere_checksums_agree_and_restarts_resynchronise(trio: Trio) -> None:
    # -- every registrar's view of every home agrees, with our checksum algorithm
    homes = {RSPLIB_PE: R_ID, OUR_PE: O1_ID}
    dumps: dict[str, HandlespaceDump] = {"R": hsdump(trio.r.enrp), "O1": hsdump(trio.o1.enrp)}
    for name, dump in dumps.items():
        assert dump.homes() == homes, f"{name}'s handlespace: {dump.pes}"
        for pe, (checksum, _home) in dump.pes.items():
            assert checksum == as_hsdump_shows(expected_checksum(pe)), f"{name}: PE {pe:#x}"
    assert dumps["R"].peer_checksums[O1_ID] == as_hsdump_shows(expected_checksum(OUR_PE))
    assert dumps["O1"].peer_checksums[R_ID] == as_hsdump_shows(expected_checksum(RSPLIB_PE))

    # -- the checksums in the Presences match what the receivers hold: no resync loop
    ours_differ = r"ownership checksum of peer 0x00000020 differs"
    rsplib_syncs = r"Handle Table synchronization with peer \$0000003[0] is necessary"
    before = (count(ours_differ, trio.o1.log_text()), count(rsplib_syncs, trio.r.log_text()))
    time.sleep(3.5)  # three Presence cycles of both registrars
    after = (count(ours_differ, trio.o1.log_text()), count(rsplib_syncs, trio.r.log_text()))
    assert after == before, "a Presence checksum disagreed with the receiver's handlespace"

    # -- rsplib's registrar restarts and gets our PE back from our registrars
    trio.r.kill()
    trio.r.restart()
    wait_resolves(trio.r.asap, POOL, {RSPLIB_PE, OUR_PE})
    assert "obtaining handlespace from mentor server" in trio.r.log_text()

    # -- ours restarts and gets rsplib's PE back from its peers
    trio.o1.kill()
    trio.o1.restart()
    wait_resolves(trio.o1.asap, POOL, {RSPLIB_PE, OUR_PE})
    assert "synchronised from mentor" in trio.o1.log_text()


def test_takeover_in_both_directions(trio: Trio) -> None:
    # Our PE is back at O1 (after O1's restart), so O1 owns something to take over.
    wait_for_text(trio.our_pe, r"home registrar is now 10\.231\.0\.1:13863", 30.0, count=2)
    wait_resolves(trio.o1.asap, POOL, {RSPLIB_PE, OUR_PE})
    # The first test's restart of O1 may have let R take O1 over already: count anew.
    r_done = r"Takeover of peer \$00000030 completed"
    r_owns = r"Taking ownership of pool element \$00000222"
    o2_ack = r"acknowledging 0x00000020's takeover of 0x00000030"
    o2_audit = r"ownership checksum of peer 0x00000020 differs"
    before = {p: occurrences(trio.r.process, p) for p in (r_done, r_owns)}
    before |= {p: occurrences(trio.o2.process, p) for p in (o2_ack, o2_audit)}

    # -- our O1 dies: rsplib's R takes its PE over, acknowledged by our O2
    trio.o1.kill()
    wait_for_text(trio.r.process, r_done, 30.0, count=before[r_done] + 1)
    assert occurrences(trio.r.process, r_owns) == before[r_owns] + 1
    assert occurrences(trio.o2.process, o2_ack) == before[o2_ack] + 1
    # rsplib 3.4.4 fails to send its Takeover Server ("Sending TakeoverServer failed"):
    # O2 learns the new home from R's changed ownership checksum (an audit).
    wait_for_text(trio.o2.process, o2_audit, 15.0, count=before[o2_audit] + 1)
    wait_for_home(trio.o2, OUR_PE, R_ID)

    # -- rsplib's R dies: our O2 takes over every PE R owned (rsplib's and the one above)
    trio.r.kill()
    ours_done = r"takeover of 0x00000020 complete: [1-9]\d* PE\(s\) now ours"
    wait_for_text(trio.o2.process, ours_done, 30.0)
    wait_for_home(trio.o2, RSPLIB_PE, O2_ID)
    wait_resolves(trio.o2.asap, POOL, {RSPLIB_PE, OUR_PE})


def wait_for_home(registrar: OurRegistrar, pe: int, home: int, timeout: float = 15.0) -> None:
    """Wait until ``registrar``'s handlespace (as hsdump shows it) has ``pe`` at ``home``."""
    deadline = time.monotonic() + timeout
    while True:
        homes = hsdump(registrar.enrp).homes()
        if homes.get(pe) == home:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"PE {pe:#x} not at {home:#x} in {registrar.enrp}: {homes}")
        time.sleep(1.0)
