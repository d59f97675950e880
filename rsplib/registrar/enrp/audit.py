"""Handlespace audit (RFC 5353, section 3.6; rsplib's ownership checksum).

A peer's Presence carries a checksum over the PEs it owns. When it differs from ours over
the PEs we believe it owns, we mark those PEs, fetch the peer's own PEs again (Handle Table
Request with the W flag) and, after the final response, remove the marked PEs it did not
confirm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rsplib.handlespace import PoolElementEntry
from rsplib.handlespace.entry import PeKey
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.links import Links
from rsplib.registrar.enrp.state import Peer, SyncState
from rsplib.wire.enrp import HandleTableRequest


class Audit:
    def __init__(
        self,
        ctx: CoreContext,
        links: Links,
        remove_entry: Callable[[PoolElementEntry, float, str], None],
    ) -> None:
        self.ctx = ctx
        self.links = links
        self._remove_entry = remove_entry

    def differs(self, peer: Peer, checksum: int) -> bool:
        return checksum != self.ctx.handlespace.ownership_checksum(peer.server_id)

    def start(self, peer: Peer, now: float) -> None:
        """Checksum mismatch: re-fetch the peer's own PEs; purge those it no longer has."""
        assert peer.conn is not None
        marked = {
            (e.pool_handle, e.identifier)
            for e in self.ctx.handlespace.entries_of_home(peer.server_id)
        }
        peer.sync = SyncState(own_children_only=True, mentor=False, started=now, marked=marked)
        self.ctx.outbox.log(
            logging.DEBUG, f"ownership checksum of peer 0x{peer.server_id:08x} differs: resync"
        )
        self.links.send(
            peer.conn,
            HandleTableRequest(self.ctx.server_id, peer.server_id, own_children_only=True),
        )

    @staticmethod
    def confirmed(sync: SyncState, key: PeKey) -> None:
        if sync.marked is not None:
            sync.marked.discard(key)

    def finish(self, peer: Peer, sync: SyncState, now: float) -> None:
        """The final response arrived: remove what the peer did not confirm."""
        if not sync.marked:
            return
        hs = self.ctx.handlespace
        source = f"peer 0x{peer.server_id:08x}"
        purged = 0
        for key in sync.marked:
            entry = hs.get(*key)
            if entry is not None and entry.home_registrar_id == peer.server_id:
                self._remove_entry(entry, now, f"not confirmed by {source}")
                purged += 1
        if purged:
            self.ctx.outbox.log(logging.INFO, f"audit of {source}: purged {purged} stale PE(s)")
