"""Handle table transfer and Handle Updates (RFC 5353, sections 3.2.3 and 3.3).

Outbound: every change of a PE we own goes to every peer as a Handle Update; a peer's
Handle Table Request is answered in chunks (``htchunk``). Inbound: Handle Updates and the
responses to our own Handle Table Requests (mentor sync at start-up, audits) change the
handlespace, each change checked by :class:`~rsplib.registrar.enrp.trust.PeerTrust`.
Responses nobody asked for are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rsplib.handlespace import HandlespaceError, PoolElementEntry, TimerKind
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.audit import Audit
from rsplib.registrar.enrp.links import Links
from rsplib.registrar.enrp.state import EnrpConnection, Peer, SyncState
from rsplib.registrar.enrp.trust import SILENT, PeerTrust
from rsplib.registrar.fastpath import readdress
from rsplib.registrar.htchunk import ChunkCursor, next_chunk
from rsplib.wire.constants import PPID, UpdateAction
from rsplib.wire.enrp import (
    HandleTableRequest,
    HandleTableResponse,
    HandleUpdate,
    ListRequest,
    encode_enrp,
)
from rsplib.wire.params import PoolElementParam


class TableSync:
    def __init__(
        self,
        ctx: CoreContext,
        links: Links,
        trust: PeerTrust,
        audit: Audit,
        *,
        remove_entry: Callable[[PoolElementEntry, float, str], None],
        mentor_done: Callable[[Peer, float, bool], None],
    ) -> None:
        self.ctx = ctx
        self.links = links
        self.trust = trust
        self.audit = audit
        self._remove_entry = remove_entry
        #: Called with ok=True when the mentor's table is complete, False when refused.
        self._mentor_done = mentor_done

    # --- outbound ----------------------------------------------------------------------

    def start_mentor_sync(self, peer: Peer, now: float) -> None:
        """Fetch the peer list and the whole handle table from our mentor."""
        assert peer.conn is not None
        me = self.ctx.server_id
        self.ctx.outbox.log(logging.INFO, f"mentor: peer 0x{peer.server_id:08x}")
        peer.sync = SyncState(own_children_only=False, mentor=True, started=now)
        self.links.send(peer.conn, ListRequest(me, peer.server_id))
        self.links.send(peer.conn, HandleTableRequest(me, peer.server_id, own_children_only=False))

    def broadcast_update(self, action: UpdateAction, entry: PoolElementEntry) -> None:
        """Handle Update to every peer (our own PEs' additions and removals)."""
        peers = self.links.peers
        if not peers:
            return
        ctx = self.ctx
        # Encoded once; only the receiver id differs per peer.
        data = encode_enrp(
            HandleUpdate(
                ctx.server_id,
                0,
                action,
                entry.pool_handle,
                entry.to_param(True),
                ctx.config.takeover_suggestion,
            )
        )
        outbox = ctx.outbox
        for peer in peers.values():
            if peer.conn is not None:
                outbox.send(peer.conn, PPID.ENRP, readdress(data, peer.server_id))

    def serve_request(self, peer: Peer, c: EnrpConnection, msg: HandleTableRequest) -> None:
        """Answer with the next chunk of the table (or of our own PEs, W flag)."""
        ctx = self.ctx
        hs = ctx.handlespace
        me = ctx.server_id
        cursor = peer.cursor
        if cursor is None or cursor.own_children_only != msg.own_children_only:
            entries = hs.entries_of_home(me) if msg.own_children_only else list(hs.entries())
            keys = sorted((e.pool_handle, e.identifier) for e in entries)
            cursor = ChunkCursor(msg.own_children_only, keys)
        groups, more = next_chunk(
            cursor,
            hs,
            own_id=me if msg.own_children_only else None,
            max_elements=ctx.config.max_elements_per_ht_request,
            max_bytes=ctx.config.max_ht_response_bytes,
        )
        peer.cursor = cursor if more else None
        self.links.send(c.conn, HandleTableResponse(me, peer.server_id, groups, more_to_send=more))

    # --- inbound -----------------------------------------------------------------------

    def update(self, peer: Peer, msg: HandleUpdate, now: float) -> None:
        """A Handle Update (its share of the peer's budget was taken before decoding)."""
        sender = peer.server_id
        if msg.action == UpdateAction.ADD_PE:
            self._learn(sender, msg.pool_handle, msg.pool_element, now, from_update=True)
            return
        entry = self.ctx.handlespace.get(msg.pool_handle, msg.pool_element.identifier)
        if entry is None:
            return
        refusal = self.trust.may_delete(sender, entry)
        if refusal is not None:
            self.trust.refused(sender, "delete", f"deletion ignored: {refusal}")
            return
        self._remove_entry(entry, now, f"deleted by peer 0x{sender:08x}")

    def response(self, peer: Peer, c: EnrpConnection, msg: HandleTableResponse, now: float) -> None:
        sync = peer.sync
        sender = peer.server_id
        if sync is None:
            self.trust.refused(sender, "unsolicited", "Handle Table Response we did not ask for")
            return
        if msg.reject:
            peer.sync = None
            self.ctx.outbox.log(
                logging.INFO, f"peer 0x{sender:08x} rejected our Handle Table Request"
            )
            if sync.mentor:
                self._mentor_done(peer, now, False)
            return
        count = sum(len(pes) for _handle, pes in msg.entries)
        if not self.trust.within_budget(sender, count, now):
            # Abandoned; the next Presence's checksum comparison starts an audit again.
            peer.sync = None
            return
        for pool_handle, pes in msg.entries:
            for pe in pes:
                self._learn(sender, pool_handle, pe, now, from_update=False)
                self.audit.confirmed(sync, (pool_handle, pe.identifier))
        if msg.more_to_send:
            self.links.send(
                c.conn,
                HandleTableRequest(
                    self.ctx.server_id, sender, own_children_only=sync.own_children_only
                ),
            )
            return
        peer.sync = None
        self.audit.finish(peer, sync, now)
        if sync.mentor:
            self._mentor_done(peer, now, True)

    def _learn(
        self,
        sender: int,
        pool_handle: bytes,
        pe: PoolElementParam,
        now: float,
        *,
        from_update: bool,
    ) -> None:
        """Store a PE a peer told us about, if the trust rules let it."""
        hs = self.ctx.handlespace
        existing = hs.get(pool_handle, pe.identifier)
        refusal = self.trust.may_store(
            sender, pe.home_registrar_id, existing, now, from_update=from_update
        )
        if refusal is not None:
            if refusal != SILENT:
                self.trust.refused(
                    sender,
                    "store",
                    f"PE 0x{pe.identifier:08x} of pool {pool_handle!r} not stored: {refusal}",
                )
            return
        try:
            entry = hs.register(
                pool_handle,
                pe,
                home_registrar_id=pe.home_registrar_id,
                now=now,
                connection=None,
                asap_transport=pe.asap_transport,
            ).entry
        except HandlespaceError as exc:
            self.trust.refused(
                sender,
                f"inconsistent-{exc.cause}",
                f"PE 0x{pe.identifier:08x} of pool {pool_handle!r} not stored: {exc}",
            )
            return
        hs.set_timer(entry, TimerKind.EXPIRY, now + pe.registration_life / 1000.0)
