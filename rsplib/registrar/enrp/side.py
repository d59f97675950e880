"""The registrar's ENRP side: the sub-machines wired together, and message dispatch.

Sub-machines (one module each): ``links`` (connections, dialling, the peer table),
``peers`` (Presence, peer supervision, peer lists), ``tables`` (Handle Updates and Handle
Table transfers), ``audit`` (checksum comparison and purge), ``takeover`` (taking over a
failed peer) and ``trust`` (what a peer may change). This module owns the start-up phase
(mentor discovery, RFC 5353, section 3.2) and routes every message to its machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rsplib.addressing import ConnId, PeerAddress
from rsplib.handlespace import PoolElementEntry
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.audit import Audit
from rsplib.registrar.enrp.links import Links
from rsplib.registrar.enrp.peers import PeerPresence
from rsplib.registrar.enrp.state import EnrpConnection, Peer
from rsplib.registrar.enrp.tables import TableSync
from rsplib.registrar.enrp.takeover import TakeoverMachine
from rsplib.registrar.enrp.trust import PeerTrust
from rsplib.wire.constants import UpdateAction
from rsplib.wire.enrp import (
    EnrpError,
    EnrpMessage,
    HandleTableRequest,
    HandleTableResponse,
    HandleUpdate,
    InitTakeover,
    InitTakeoverAck,
    ListRequest,
    ListResponse,
    Presence,
    TakeoverServer,
)

EntryCallback = Callable[[PoolElementEntry, float], None]


class EnrpSide:
    def __init__(
        self,
        ctx: CoreContext,
        *,
        remove_entry: Callable[[PoolElementEntry, float, str], None],
        adopt_taken_over: EntryCallback,
        on_ready: Callable[[float], None],
    ) -> None:
        self.ctx = ctx
        self.mentor: int | None = None
        self.in_startup = True
        self._on_ready = on_ready
        self.links = Links(ctx, self._peer_unreachable)
        self.presence = PeerPresence(
            ctx, self.links, peer_dead=self._peer_dead, peer_alive=self._peer_alive
        )
        self.trust = PeerTrust(ctx, self.presence.recently_heard)
        self.audit = Audit(ctx, self.links, remove_entry)
        self.tables = TableSync(
            ctx,
            self.links,
            self.trust,
            self.audit,
            remove_entry=remove_entry,
            mentor_done=self._mentor_done,
        )
        self.takeover = TakeoverMachine(
            ctx,
            self.links,
            adopt=adopt_taken_over,
            drop_peer=self.drop_peer,
            announce_alive=self.presence.announce_alive,
            is_live=self.presence.recently_heard,
        )

    # --- views the core and tests use ---------------------------------------------------

    @property
    def connections(self) -> dict[ConnId, EnrpConnection]:
        return self.links.connections

    @property
    def peers(self) -> dict[int, Peer]:
        return self.links.peers

    def send(self, conn: ConnId, msg: EnrpMessage) -> None:
        self.links.send(conn, msg)

    def status_peers(self) -> list[Peer]:
        return self.links.status_peers()

    # --- start-up and timers -----------------------------------------------------------

    def start(self, now: float) -> None:
        self.links.start()
        self.ctx.schedule.set(("presence",), now)
        self.ctx.schedule.set(("mentor",), now + self.ctx.config.mentor_discovery_timeout)

    def end_startup(self, now: float, why: str) -> None:
        if not self.in_startup:
            return
        self.in_startup = False
        self.ctx.schedule.cancel(("mentor",))
        self.ctx.outbox.log(logging.INFO, f"start-up phase over ({why}): serving")
        self._on_ready(now)

    def _mentor_done(self, peer: Peer, now: float, ok: bool) -> None:
        if ok:
            self.end_startup(now, f"synchronised from mentor 0x{peer.server_id:08x}")
        elif self.mentor == peer.server_id:
            self.mentor = None  # the next peer heard becomes the mentor

    def send_presences(self, now: float) -> None:
        self.presence.send_presences(now)

    def peer_timer(self, server_id: int, now: float) -> None:
        if not self.takeover.running(server_id):
            self.presence.peer_timer(server_id, now)

    def takeover_expired(self, target: int, now: float) -> None:
        self.takeover.expired(target, now)

    def dial_due(self, address: PeerAddress, now: float) -> None:
        self.links.dial_due(address, now)

    # --- connections -------------------------------------------------------------------

    def opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
        now: float,
        outbound_to: PeerAddress | None,
        local: PeerAddress | None = None,
    ) -> bool:
        return self.links.opened(conn, peer, outbound_to, local)

    def connect_failed(self, address: PeerAddress, now: float) -> None:
        self.links.connect_failed(address, now)

    def lost(self, conn: ConnId, now: float) -> None:
        self.links.lost(conn, now)

    # --- peers coming and going --------------------------------------------------------

    def _peer_unreachable(self, server_id: int, now: float) -> None:
        peer = self.links.peers.get(server_id)
        if peer is not None and self._is_visitor(peer):
            # An inspector (rsp-hsdump) that owns nothing and has no ENRP endpoint of its
            # own cannot be reached again: forget it now instead of counting it as a peer
            # until it times out.
            self.drop_peer(server_id, now, "left (no ENRP endpoint)")
            return
        self.takeover.peer_unreachable(server_id, now)

    def _is_visitor(self, peer: Peer) -> bool:
        return (
            peer.address is not None
            and peer.address.port == 0
            and not self.ctx.handlespace.count_of_home(peer.server_id)
        )

    def _peer_alive(self, server_id: int) -> None:
        self.takeover.cancel(server_id)

    def _peer_dead(self, server_id: int, now: float) -> None:
        if self.ctx.handlespace.count_of_home(server_id):
            self.takeover.start(server_id, now)
        else:
            self.drop_peer(server_id, now, "no response")

    def drop_peer(self, server_id: int, now: float, reason: str) -> None:
        if self.links.remove_peer(server_id, now, reason) is None:
            return
        if self.mentor == server_id and self.in_startup:
            self.mentor = None
        self.trust.forget(server_id)
        self.takeover.peer_unreachable(server_id, now)

    def start_takeover(self, target: int, now: float) -> None:
        self.takeover.start(target, now)

    # --- messages ----------------------------------------------------------------------

    def presence_multicast(self, msg: Presence, source: PeerAddress, now: float) -> None:
        self.presence.presence_multicast(msg, source, now)

    def broadcast_update(self, action: UpdateAction, entry: PoolElementEntry) -> None:
        self.tables.broadcast_update(action, entry)

    def admit_update(self, c: EnrpConnection, now: float) -> bool:
        """Before a Handle Update from ``c`` is decoded: is it within its peer's budget?

        Checked on the raw message so that a peer flooding updates costs little more than
        reading them; updates from connections not yet tied to a peer pass (and are then
        ignored as coming from an unknown registrar).
        """
        sender = c.server_id
        if sender is None or sender not in self.links.peers:
            return True
        return self.trust.within_budget(sender, 1, now)

    def handle(self, c: EnrpConnection, msg: EnrpMessage, now: float) -> None:
        if not self.links.bind_sender(c, msg.sender_server_id):
            return
        if isinstance(msg, Presence):
            self._presence(c, msg, now)
            return
        sender = msg.sender_server_id
        peer = self.links.peers.get(sender)
        if peer is None:
            self._from_unknown(c, msg)
            return
        self.presence.heard(peer, now)
        if isinstance(msg, HandleUpdate):
            self.tables.update(peer, msg, now)
        elif isinstance(msg, HandleTableRequest):
            self.tables.serve_request(peer, c, msg)
        elif isinstance(msg, HandleTableResponse):
            self.tables.response(peer, c, msg, now)
        elif isinstance(msg, InitTakeover):
            self.takeover.init_takeover(c, msg)
        elif isinstance(msg, InitTakeoverAck):
            self.takeover.init_takeover_ack(msg, now)
        elif isinstance(msg, TakeoverServer):
            self.takeover.takeover_server(peer, msg, now)
        elif isinstance(msg, ListRequest):
            self.presence.list_request(peer, c)
        elif isinstance(msg, ListResponse):
            self.presence.list_response(c, msg)
        elif isinstance(msg, EnrpError):
            self.ctx.outbox.log_once(
                ("conn", c.conn),
                "enrp-error",
                logging.WARNING,
                f"ENRP Error from peer 0x{sender:08x}: "
                + ", ".join(cause.name for cause in msg.error.causes),
            )

    def _presence(self, c: EnrpConnection, msg: Presence, now: float) -> None:
        peer = self.presence.presence_unicast(c, msg, now)
        if peer is None:
            return
        if peer.sync is not None:
            if now - peer.sync.started <= 2 * self.ctx.config.peer_max_time_last_heard:
                return  # a transfer is running; compare after it
            peer.sync = None  # stuck transfer: start over
        if self.in_startup and self.mentor is None and not self._is_visitor(peer):
            self.mentor = peer.server_id
            self.tables.start_mentor_sync(peer, now)
        elif self.audit.differs(peer, msg.checksum):
            self.audit.start(peer, now)

    def _from_unknown(self, c: EnrpConnection, msg: EnrpMessage) -> None:
        """Requests of a registrar we have no Presence from are rejected (rsplib)."""
        me = self.ctx.server_id
        if isinstance(msg, HandleTableRequest):
            self.links.send(c.conn, HandleTableResponse(me, msg.sender_server_id, reject=True))
        elif isinstance(msg, ListRequest):
            self.links.send(c.conn, ListResponse(me, msg.sender_server_id, reject=True))
        else:
            self.ctx.outbox.log_once(
                ("conn", c.conn),
                "unknown-peer",
                logging.INFO,
                f"ENRP {type(msg).__name__} from unknown registrar "
                f"0x{msg.sender_server_id:08x} at {c.address} ignored",
            )
