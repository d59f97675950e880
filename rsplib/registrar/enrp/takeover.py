"""Takeover of a failed peer (RFC 5353, section 3.5; rsplib's rules, improved).

The initiator sends Init Takeover to every peer and completes when every other live peer
acked (with none, at once: also with only two registrars, which rsplib never completes).
A required peer that is lost meanwhile is no longer waited for. The lower id wins a race;
a Presence from the target cancels the takeover. On completion the initiator sends
Takeover Server, re-homes the target's PEs and asks the service to reach each of them
(``adopt``).

A Takeover Server from a peer re-homes the target's PEs to that peer, unless the target is
alive here (heard recently): then it is refused (see docs/trust-model.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rsplib.handlespace import PoolElementEntry, TimerKind
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.links import Links
from rsplib.registrar.enrp.state import EnrpConnection, Peer, Takeover
from rsplib.wire.enrp import InitTakeover, InitTakeoverAck, TakeoverServer


class TakeoverMachine:
    def __init__(
        self,
        ctx: CoreContext,
        links: Links,
        *,
        adopt: Callable[[PoolElementEntry, float], None],
        drop_peer: Callable[[int, float, str], None],
        announce_alive: Callable[[], None],
        is_live: Callable[[int, float], bool],
    ) -> None:
        self.ctx = ctx
        self.links = links
        self.takeovers: dict[int, Takeover] = {}
        self._adopt = adopt
        self._drop_peer = drop_peer
        self._announce_alive = announce_alive
        self._is_live = is_live

    def running(self, target: int) -> bool:
        return target in self.takeovers

    def start(self, target: int, now: float) -> None:
        """Init Takeover to all peers; complete when every other live peer acked."""
        ctx = self.ctx
        required = {
            sid
            for sid, peer in self.links.peers.items()
            if peer.conn is not None and sid not in (target, ctx.server_id, 0)
        }
        takeover = Takeover(target, required, now + ctx.config.takeover_expiry)
        self.takeovers[target] = takeover
        ctx.outbox.log(
            logging.INFO,
            f"peer 0x{target:08x} is not responding: starting takeover "
            f"({len(required)} ack(s) needed)",
        )
        # The target gets it too: if it is alive after all, it answers with a Presence.
        self.links.send_to_peers(lambda receiver: InitTakeover(ctx.server_id, receiver, target))
        ctx.schedule.set(("takeover", target), takeover.expires)
        self._check(takeover, now)

    def cancel(self, target: int) -> None:
        """The target spoke: it is alive, no takeover."""
        if self.takeovers.pop(target, None) is not None:
            self.ctx.schedule.cancel(("takeover", target))
            self.ctx.outbox.log(
                logging.INFO, f"takeover of 0x{target:08x} cancelled: the peer is alive"
            )

    def peer_unreachable(self, server_id: int, now: float) -> None:
        """A required acker of a running takeover is gone: do not wait for it."""
        for takeover in list(self.takeovers.values()):
            if server_id in takeover.required:
                takeover.required.discard(server_id)
                self._check(takeover, now)

    def _check(self, takeover: Takeover, now: float) -> None:
        if self.takeovers.get(takeover.target) is takeover and takeover.required <= takeover.acks:
            self._complete(takeover, now)

    def _complete(self, takeover: Takeover, now: float) -> None:
        ctx = self.ctx
        target = takeover.target
        del self.takeovers[target]
        ctx.schedule.cancel(("takeover", target))
        self.links.send_to_peers(
            lambda receiver: TakeoverServer(ctx.server_id, receiver, target), skip=target
        )
        entries = ctx.handlespace.entries_of_home(target)
        for entry in entries:
            ctx.handlespace.rehome(entry, ctx.server_id)
            self._adopt(entry, now)
        ctx.outbox.log(
            logging.INFO, f"takeover of 0x{target:08x} complete: {len(entries)} PE(s) now ours"
        )
        self._drop_peer(target, now, "taken over")

    def expired(self, target: int, now: float) -> None:
        takeover = self.takeovers.pop(target, None)
        if takeover is None:
            return
        missing = ", ".join(f"0x{s:08x}" for s in sorted(takeover.required - takeover.acks))
        self.ctx.outbox.log(
            logging.WARNING,
            f"takeover of 0x{target:08x} abandoned: no ack from {missing}; its PEs expire "
            "after their registration life",
        )
        self._drop_peer(target, now, "takeover abandoned")

    # --- messages from peers -----------------------------------------------------------

    def init_takeover(self, c: EnrpConnection, msg: InitTakeover) -> None:
        ctx = self.ctx
        me = ctx.server_id
        target = msg.target_server_id
        sender = msg.sender_server_id
        if target == me:
            self._announce_alive()
            return
        ours = self.takeovers.get(target)
        if ours is not None:
            if sender > me:
                return  # our lower id wins the race; the other initiator will yield
            del self.takeovers[target]
            ctx.schedule.cancel(("takeover", target))
            ctx.outbox.log(
                logging.INFO,
                f"takeover of 0x{target:08x} left to 0x{sender:08x} (lower id wins)",
            )
        ctx.outbox.log(logging.INFO, f"acknowledging 0x{sender:08x}'s takeover of 0x{target:08x}")
        self.links.send(c.conn, InitTakeoverAck(me, sender, target))

    def init_takeover_ack(self, msg: InitTakeoverAck, now: float) -> None:
        takeover = self.takeovers.get(msg.target_server_id)
        if takeover is not None:
            takeover.acks.add(msg.sender_server_id)
            self._check(takeover, now)

    def takeover_server(self, peer: Peer, msg: TakeoverServer, now: float) -> None:
        ctx = self.ctx
        target = msg.target_server_id
        if target == ctx.server_id:
            ctx.outbox.log(
                logging.WARNING,
                f"peer 0x{peer.server_id:08x} took us over; our PEs' next registrations "
                "reclaim them",
            )
            return
        if self._is_live(target, now):
            ctx.outbox.log_once(
                ("enrp-peer", peer.server_id),
                "takeover-live",
                logging.WARNING,
                f"peer 0x{peer.server_id:08x} claims to have taken over 0x{target:08x}, "
                "which is alive here: refused",
            )
            return
        hs = ctx.handlespace
        for entry in hs.entries_of_home(target):
            hs.rehome(entry, peer.server_id)
            hs.set_timer(entry, TimerKind.EXPIRY, now + entry.registration_life / 1000.0)
        if self.takeovers.pop(target, None) is not None:
            ctx.schedule.cancel(("takeover", target))
        self._drop_peer(target, now, f"taken over by 0x{peer.server_id:08x}")
