"""The registrar's ENRP side: peers, Presence, handle table transfer, updates, audit,
mentor start-up and takeover (RFC 5353 with rsplib's behaviour, protocol-facts 3.1).

Peers are registrars we heard a Presence from. Unicast ENRP travels over connections the
service opens (``ConnectToPeer``) or accepts; a peer is reachable when one of them is
identified as its connection. Addresses to dial come from ``--peer`` (static, retried with
back-off for ever), multicast Presence and List Responses (retried a few times).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from rsplib.addressing import PeerAddress
from rsplib.handlespace import HandlespaceError, PoolElementEntry, TimerKind
from rsplib.registrar.actions import ConnectToPeer, ConnId, SendEnrpPresence
from rsplib.registrar.config import TRANSPORT_SCTP
from rsplib.registrar.context import CoreContext
from rsplib.registrar.fastpath import readdress
from rsplib.registrar.htchunk import ChunkCursor, next_chunk, server_info_size
from rsplib.registrar.scope import parse_host
from rsplib.wire.constants import PPID, TransportUse, UpdateAction
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
    encode_enrp,
)
from rsplib.wire.params import PoolElementParam, SctpTransport, ServerInformation, TcpTransport

PeKey = tuple[bytes, int]
#: Non-static addresses are given up after this many failed connection attempts in a row.
_LEARNED_DIAL_ATTEMPTS = 3


@dataclass(slots=True)
class EnrpConnection:
    conn: ConnId
    address: PeerAddress
    outbound_to: PeerAddress | None
    #: Sender id of the first message on it (None until the peer spoke).
    server_id: int | None = None
    #: Our end of it, when the service knows it.
    local: PeerAddress | None = None


@dataclass(slots=True)
class SyncState:
    """Our outstanding Handle Table Request to a peer (mentor sync or audit)."""

    own_children_only: bool
    mentor: bool
    started: float
    #: Audit: PEs of that peer not confirmed yet; purged after the final response.
    marked: set[PeKey] | None = None


@dataclass(slots=True)
class Peer:
    server_id: int
    address: PeerAddress | None
    conn: ConnId | None
    last_heard: float
    probing: bool = False
    sync: SyncState | None = None
    #: Where a chunked Handle Table transfer to this peer continues.
    cursor: ChunkCursor | None = None


@dataclass(slots=True)
class Dial:
    """An address we want an ENRP connection to."""

    address: PeerAddress
    static: bool
    backoff: float
    conn: ConnId | None = None
    connecting: bool = False
    failures: int = 0


@dataclass(slots=True)
class Takeover:
    target: int
    required: set[int]
    expires: float
    acks: set[int] = field(default_factory=set)


EntryCallback = Callable[[PoolElementEntry, float], None]


class EnrpSide:
    def __init__(
        self,
        ctx: CoreContext,
        *,
        remove_entry: Callable[[PoolElementEntry, float, str], None],
        adopt_taken_over: EntryCallback,
        entry_left_connection: Callable[[PoolElementEntry, object], None],
        on_ready: Callable[[float], None],
    ) -> None:
        self.ctx = ctx
        self.connections: dict[ConnId, EnrpConnection] = {}
        self.peers: dict[int, Peer] = {}
        self.dials: dict[PeerAddress, Dial] = {}
        self.takeovers: dict[int, Takeover] = {}
        self.mentor: int | None = None
        self.in_startup = True
        self._remove_entry = remove_entry
        self._adopt = adopt_taken_over
        self._entry_left_connection = entry_left_connection
        self._on_ready = on_ready
        cfg = ctx.config
        allow = cfg.peer_allow_list
        # Statically configured peers are allowed implicitly.
        self._allowed = None if allow is None else set(allow) | {p.host for p in cfg.static_peers}

    # --- helpers -----------------------------------------------------------------------

    def allowed(self, host: str) -> bool:
        return self._allowed is None or host in self._allowed

    def send(self, conn: ConnId, msg: EnrpMessage) -> None:
        self.ctx.outbox.send(conn, PPID.ENRP, encode_enrp(msg))

    def _send_to_peers(self, build: Callable[[int], EnrpMessage], *, skip: int = 0) -> None:
        for peer in self.peers.values():
            if peer.conn is not None and peer.server_id != skip:
                self.send(peer.conn, build(peer.server_id))

    def server_info(self, conn: ConnId | None = None) -> ServerInformation:
        """Our ENRP endpoint as the peer on ``conn`` sees it.

        rsplib keeps only the Presence addresses that belong to the association it came
        on, so a wildcard endpoint is named by our end of that connection.
        """
        cfg = self.ctx.config
        endpoint = cfg.enrp_endpoint
        address = parse_host(endpoint.host)
        if address is not None and address.is_unspecified and conn is not None:
            c = self.connections.get(conn)
            if c is not None and c.local is not None:
                address = parse_host(c.local.host) or address
        addresses = (address,) if address is not None else ()
        if cfg.transport == TRANSPORT_SCTP:
            return ServerInformation(
                self.ctx.server_id,
                SctpTransport(endpoint.port, addresses, TransportUse.DATA_ONLY),
            )
        return ServerInformation(
            self.ctx.server_id, TcpTransport(endpoint.port, addresses, TransportUse.DATA_ONLY)
        )

    def _presence(
        self, receiver: int, *, reply_required: bool = False, conn: ConnId | None = None
    ) -> Presence:
        ctx = self.ctx
        return Presence(
            ctx.server_id,
            receiver,
            ctx.handlespace.ownership_checksum(ctx.server_id),
            self.server_info(conn),
            reply_required,
        )

    @staticmethod
    def _endpoint_of(info: ServerInformation, fallback_host: str) -> PeerAddress:
        """A peer's ENRP endpoint: its Server Information, or the source host if wildcard."""
        addresses = [a for a in info.transport.addresses if not a.is_unspecified]
        host = str(addresses[0]) if addresses else fallback_host
        return PeerAddress(host, info.transport.port)

    def status_peers(self) -> list[Peer]:
        return sorted(self.peers.values(), key=lambda p: p.server_id)

    # --- start-up and periodic work ----------------------------------------------------

    def start(self, now: float) -> None:
        cfg = self.ctx.config
        for address in cfg.static_peers:
            self.dials[address] = Dial(address, True, cfg.peer_reconnect_min)
            self._dial(address)
        self.ctx.schedule.set(("presence",), now)
        self.ctx.schedule.set(("mentor",), now + cfg.mentor_discovery_timeout)

    def _dial(self, address: PeerAddress) -> None:
        dial = self.dials[address]
        dial.connecting = True
        self.ctx.outbox.actions.append(ConnectToPeer(address))

    def dial_due(self, address: PeerAddress, now: float) -> None:
        dial = self.dials.get(address)
        if dial is None or dial.conn is not None or dial.connecting:
            return
        if any(c.address == address for c in self.connections.values()):
            # The peer dialled us from its ENRP endpoint: that association is the one
            # between us (over SCTP the kernel refuses a second one); look again later.
            self.ctx.schedule.set(("dial", address), now + dial.backoff)
            return
        self._dial(address)

    def _learned_address(self, address: PeerAddress) -> None:
        """Dial an address learned from multicast or a List Response (if not connected)."""
        if address in self.dials or not self.allowed(address.host):
            return
        for c in self.connections.values():
            if c.address == address or c.outbound_to == address:
                return
        self.dials[address] = Dial(address, False, self.ctx.config.peer_reconnect_min)
        self._dial(address)

    def _retry_later(self, dial: Dial, now: float) -> None:
        cfg = self.ctx.config
        dial.failures += 1
        if not dial.static and dial.failures >= _LEARNED_DIAL_ATTEMPTS:
            del self.dials[dial.address]
            return
        self.ctx.schedule.set(("dial", dial.address), now + dial.backoff)
        dial.backoff = min(dial.backoff * 2, cfg.peer_reconnect_max)

    def send_presences(self, now: float) -> None:
        """Periodic Presence: unicast to every peer (and unidentified outbound connections)
        and by multicast."""
        ctx = self.ctx
        sent_to: set[ConnId] = set()
        for peer in self.peers.values():
            if peer.conn is not None:
                self.send(peer.conn, self._presence(peer.server_id, conn=peer.conn))
                sent_to.add(peer.conn)
        for c in self.connections.values():
            if c.server_id is None and c.outbound_to is not None and c.conn not in sent_to:
                self.send(c.conn, self._presence(0, reply_required=True, conn=c.conn))
        if ctx.config.enrp_announce:
            ctx.outbox.actions.append(SendEnrpPresence(encode_enrp(self._presence(0))))
        ctx.schedule.set(("presence",), now + ctx.jittered(ctx.config.peer_heartbeat_cycle))

    def end_startup(self, now: float, why: str) -> None:
        if not self.in_startup:
            return
        self.in_startup = False
        self.ctx.schedule.cancel(("mentor",))
        self.ctx.outbox.log(logging.INFO, f"start-up phase over ({why}): serving")
        self._on_ready(now)

    # --- connections -------------------------------------------------------------------

    def opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
        now: float,
        outbound_to: PeerAddress | None,
        local: PeerAddress | None = None,
    ) -> bool:
        ctx = self.ctx
        outbox = ctx.outbox
        if outbound_to is None and not self.allowed(peer.host):
            outbox.close(conn, "ENRP peer not in the allow-list", abort=True)
            outbox.log_once(
                ("enrp-host", peer.host),
                "not-allowed",
                logging.WARNING,
                f"ENRP connection from {peer} refused: not in the peer allow-list",
            )
            return False
        if len(self.connections) >= ctx.config.max_enrp_connections:
            outbox.close(conn, "too many ENRP connections", abort=True)
            outbox.log_once(
                "enrp-limit",
                "limit",
                logging.WARNING,
                f"refusing ENRP connections beyond {ctx.config.max_enrp_connections}",
            )
            return False
        self.connections[conn] = EnrpConnection(conn, peer, outbound_to, local=local)
        if outbound_to is not None:
            dial = self.dials.get(outbound_to)
            if dial is not None:
                dial.conn = conn
                dial.connecting = False
                dial.failures = 0
                dial.backoff = ctx.config.peer_reconnect_min
            # Ask at once for the peer's Presence: quick mentor discovery and peer setup.
            self.send(conn, self._presence(0, reply_required=True, conn=conn))
        return True

    def connect_failed(self, address: PeerAddress, now: float) -> None:
        dial = self.dials.get(address)
        if dial is None:
            return
        dial.connecting = False
        self.ctx.outbox.log_once(
            ("dial", address),
            "connect-failed",
            logging.INFO,
            f"cannot connect to ENRP peer {address}; retrying",
        )
        self._retry_later(dial, now)

    def lost(self, conn: ConnId, now: float) -> None:
        c = self.connections.pop(conn, None)
        if c is None:
            return
        self.ctx.outbox.forget(("conn", conn))
        if c.server_id is not None:
            peer = self.peers.get(c.server_id)
            if peer is not None and peer.conn == conn:
                peer.conn = next(
                    (o.conn for o in self.connections.values() if o.server_id == c.server_id),
                    None,
                )
                # A transfer in either direction died with the connection.
                peer.sync = None
                peer.cursor = None
                if peer.conn is None:
                    self._peer_unreachable(peer.server_id, now)
        if c.outbound_to is not None:
            dial = self.dials.get(c.outbound_to)
            if dial is not None and dial.conn == conn:
                dial.conn = None
                dial.failures = 0
                self._retry_later(dial, now)

    def _peer_unreachable(self, server_id: int, now: float) -> None:
        """A required acker of a running takeover is gone: do not wait for it."""
        for takeover in list(self.takeovers.values()):
            if server_id in takeover.required:
                takeover.required.discard(server_id)
                self._check_takeover(takeover, now)

    def _close(self, conn: ConnId, reason: str, now: float) -> None:
        self.ctx.outbox.close(conn, reason, abort=True)
        self.lost(conn, now)

    # --- peers -------------------------------------------------------------------------

    def _heard(self, peer: Peer, now: float) -> None:
        peer.last_heard = now
        peer.probing = False
        self.ctx.schedule.set(
            ("peer", peer.server_id), now + self.ctx.config.peer_max_time_last_heard
        )

    def _add_peer(
        self, server_id: int, address: PeerAddress | None, conn: ConnId | None, now: float
    ) -> Peer:
        peer = Peer(server_id, address, conn, now)
        self.peers[server_id] = peer
        self.ctx.outbox.log(
            logging.INFO,
            f"new ENRP peer 0x{server_id:08x} at {address if address else 'unknown address'}",
        )
        return peer

    def drop_peer(self, server_id: int, now: float, reason: str) -> None:
        peer = self.peers.pop(server_id, None)
        if peer is None:
            return
        ctx = self.ctx
        ctx.schedule.cancel(("peer", server_id))
        ctx.outbox.log(logging.INFO, f"ENRP peer 0x{server_id:08x} dropped: {reason}")
        if self.mentor == server_id and self.in_startup:
            self.mentor = None
        for c in [c for c in self.connections.values() if c.server_id == server_id]:
            self._close(c.conn, f"peer 0x{server_id:08x} dropped", now)
        if peer.address is not None:
            dial = self.dials.get(peer.address)
            if dial is not None and not dial.static and dial.conn is None:
                del self.dials[peer.address]
                ctx.schedule.cancel(("dial", peer.address))
        self._peer_unreachable(server_id, now)

    def peer_timer(self, server_id: int, now: float) -> None:
        """Peer monitoring: silent for max-time-last-heard -> probe; no answer -> dead."""
        peer = self.peers.get(server_id)
        if peer is None or server_id in self.takeovers:
            return
        cfg = self.ctx.config
        if not peer.probing:
            peer.probing = True
            if peer.conn is not None:
                self.send(peer.conn, self._presence(server_id, reply_required=True, conn=peer.conn))
            self.ctx.schedule.set(("peer", server_id), now + cfg.peer_max_time_no_response)
            return
        if self.ctx.handlespace.entries_of_home(server_id):
            self.start_takeover(server_id, now)
        else:
            self.drop_peer(server_id, now, "no response")

    # --- messages ----------------------------------------------------------------------

    def handle(self, c: EnrpConnection, msg: EnrpMessage, now: float) -> None:
        ctx = self.ctx
        sender = msg.sender_server_id
        if sender == ctx.server_id or sender == 0:
            ctx.outbox.log_once(
                ("conn", c.conn),
                "bad-sender",
                logging.WARNING,
                f"ENRP message with sender id 0x{sender:08x} from {c.address} ignored",
            )
            return
        if c.server_id is None:
            c.server_id = sender
        elif c.server_id != sender:
            # One connection speaks for one registrar; anything else is confusion or spoofing.
            ctx.outbox.log_once(
                ("conn", c.conn),
                "sender-changed",
                logging.WARNING,
                f"ENRP connection from {c.address} changed its sender id "
                f"0x{c.server_id:08x} -> 0x{sender:08x}; messages ignored",
            )
            return
        if isinstance(msg, Presence):
            self._presence_unicast(c, msg, now)
            return
        peer = self.peers.get(sender)
        if peer is None:
            self._from_unknown(c, msg)
            return
        self._heard(peer, now)
        if isinstance(msg, HandleUpdate):
            self._handle_update(peer, msg, now)
        elif isinstance(msg, HandleTableRequest):
            self._handle_table_request(peer, c, msg)
        elif isinstance(msg, HandleTableResponse):
            self._handle_table_response(peer, c, msg, now)
        elif isinstance(msg, InitTakeover):
            self._init_takeover(peer, c, msg, now)
        elif isinstance(msg, InitTakeoverAck):
            self._init_takeover_ack(msg, now)
        elif isinstance(msg, TakeoverServer):
            self._takeover_server(peer, msg, now)
        elif isinstance(msg, ListRequest):
            self._list_request(peer, c)
        elif isinstance(msg, ListResponse):
            self._list_response(c, msg)
        elif isinstance(msg, EnrpError):
            ctx.outbox.log_once(
                ("conn", c.conn),
                "enrp-error",
                logging.WARNING,
                f"ENRP Error from peer 0x{sender:08x}: "
                + ", ".join(cause.name for cause in msg.error.causes),
            )

    def _from_unknown(self, c: EnrpConnection, msg: EnrpMessage) -> None:
        """Requests of a registrar we have no Presence from are rejected (rsplib)."""
        me = self.ctx.server_id
        if isinstance(msg, HandleTableRequest):
            self.send(c.conn, HandleTableResponse(me, msg.sender_server_id, reject=True))
        elif isinstance(msg, ListRequest):
            self.send(c.conn, ListResponse(me, msg.sender_server_id, reject=True))
        else:
            self.ctx.outbox.log_once(
                ("conn", c.conn),
                "unknown-peer",
                logging.INFO,
                f"ENRP {type(msg).__name__} from unknown registrar "
                f"0x{msg.sender_server_id:08x} at {c.address} ignored",
            )

    def _presence_unicast(self, c: EnrpConnection, msg: Presence, now: float) -> None:
        sid = msg.sender_server_id
        address = self._endpoint_of(msg.server_info, c.address.host)
        peer = self.peers.get(sid)
        if peer is None:
            peer = self._add_peer(sid, address, c.conn, now)
        else:
            peer.address = address
            if peer.conn is None or peer.conn not in self.connections:
                peer.conn = c.conn
        self._heard(peer, now)
        if self.takeovers.pop(sid, None) is not None:
            self.ctx.schedule.cancel(("takeover", sid))
            self.ctx.outbox.log(
                logging.INFO, f"takeover of 0x{sid:08x} cancelled: the peer is alive"
            )
        if msg.reply_required:
            self.send(c.conn, self._presence(sid, conn=c.conn))
        if peer.sync is not None:
            if now - peer.sync.started <= 2 * self.ctx.config.peer_max_time_last_heard:
                return  # a transfer is running; compare after it
            peer.sync = None  # stuck transfer: start over
        if self.in_startup and self.mentor is None:
            self._start_mentor_sync(peer, now)
        elif msg.checksum != self.ctx.handlespace.ownership_checksum(sid):
            self._start_audit(peer, now)

    def presence_multicast(self, msg: Presence, source: PeerAddress, now: float) -> None:
        """Multicast Presence only maintains the peer list (no checksum comparison)."""
        sid = msg.sender_server_id
        if sid == self.ctx.server_id or sid == 0 or not self.allowed(source.host):
            return
        address = PeerAddress(source.host, msg.server_info.transport.port)
        peer = self.peers.get(sid)
        if peer is None:
            peer = self._add_peer(sid, address, None, now)
        self._heard(peer, now)
        if self.takeovers.pop(sid, None) is not None:
            self.ctx.schedule.cancel(("takeover", sid))
        if peer.conn is None:
            self._learned_address(address)

    def _start_mentor_sync(self, peer: Peer, now: float) -> None:
        assert peer.conn is not None
        me = self.ctx.server_id
        self.mentor = peer.server_id
        self.ctx.outbox.log(logging.INFO, f"mentor: peer 0x{peer.server_id:08x}")
        peer.sync = SyncState(own_children_only=False, mentor=True, started=now)
        self.send(peer.conn, ListRequest(me, peer.server_id))
        self.send(peer.conn, HandleTableRequest(me, peer.server_id, own_children_only=False))

    def _start_audit(self, peer: Peer, now: float) -> None:
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
        self.send(
            peer.conn,
            HandleTableRequest(self.ctx.server_id, peer.server_id, own_children_only=True),
        )

    # --- handlespace updates -----------------------------------------------------------

    def _learn(self, pool_handle: bytes, pe: PoolElementParam, now: float, source: str) -> None:
        """Store a PE a peer told us about (Handle Update ADD or Handle Table Response)."""
        ctx = self.ctx
        hs = ctx.handlespace
        home = pe.home_registrar_id
        existing = hs.get(pool_handle, pe.identifier)
        if home == 0:
            ctx.outbox.log_once(
                ("peer-data", source),
                "home-0",
                logging.WARNING,
                f"{source}: PE without home registrar ignored",
            )
            return
        if home == ctx.server_id:
            # Our own PEs are authoritative here; a peer's older view does not change them.
            return
        previous_conn = existing.connection if existing is not None else None
        try:
            entry = hs.register(
                pool_handle,
                pe,
                home_registrar_id=home,
                now=now,
                connection=None,
                asap_transport=pe.asap_transport,
            ).entry
        except HandlespaceError as exc:
            ctx.outbox.log_once(
                ("peer-data", source),
                f"inconsistent-{exc.cause}",
                logging.WARNING,
                f"{source}: PE 0x{pe.identifier:08x} of pool {pool_handle!r} not stored: {exc}",
            )
            return
        if previous_conn is not None:
            # The PE registered at another registrar: it is no longer ours to supervise.
            self._entry_left_connection(entry, previous_conn)
        hs.set_timer(entry, TimerKind.EXPIRY, now + pe.registration_life / 1000.0)

    def _handle_update(self, peer: Peer, msg: HandleUpdate, now: float) -> None:
        source = f"peer 0x{peer.server_id:08x}"
        if msg.action == UpdateAction.ADD_PE:
            self._learn(msg.pool_handle, msg.pool_element, now, source)
            return
        entry = self.ctx.handlespace.get(msg.pool_handle, msg.pool_element.identifier)
        if entry is not None and entry.home_registrar_id != self.ctx.server_id:
            self._remove_entry(entry, now, f"deleted by {source}")

    def broadcast_update(self, action: UpdateAction, entry: PoolElementEntry) -> None:
        """Handle Update to every peer (our own PEs' additions and removals)."""
        if not self.peers:
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
        for peer in self.peers.values():
            if peer.conn is not None:
                outbox.send(peer.conn, PPID.ENRP, readdress(data, peer.server_id))

    # --- handle table transfer ---------------------------------------------------------

    def _handle_table_request(self, peer: Peer, c: EnrpConnection, msg: HandleTableRequest) -> None:
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
        self.send(c.conn, HandleTableResponse(me, peer.server_id, groups, more_to_send=more))

    def _handle_table_response(
        self, peer: Peer, c: EnrpConnection, msg: HandleTableResponse, now: float
    ) -> None:
        sync = peer.sync
        if msg.reject:
            peer.sync = None
            self.ctx.outbox.log(
                logging.INFO, f"peer 0x{peer.server_id:08x} rejected our Handle Table Request"
            )
            if sync is not None and sync.mentor:
                self.mentor = None
            return
        source = f"peer 0x{peer.server_id:08x}"
        for pool_handle, pes in msg.entries:
            for pe in pes:
                self._learn(pool_handle, pe, now, source)
                if sync is not None and sync.marked is not None:
                    sync.marked.discard((pool_handle, pe.identifier))
        if sync is None:
            return  # unsolicited: the entries are kept, nothing else to do
        if msg.more_to_send:
            self.send(
                c.conn,
                HandleTableRequest(
                    self.ctx.server_id, peer.server_id, own_children_only=sync.own_children_only
                ),
            )
            return
        peer.sync = None
        if sync.marked:
            hs = self.ctx.handlespace
            purged = 0
            for key in sync.marked:
                entry = hs.get(*key)
                if entry is not None and entry.home_registrar_id == peer.server_id:
                    self._remove_entry(entry, now, f"not confirmed by {source}")
                    purged += 1
            if purged:
                self.ctx.outbox.log(logging.INFO, f"audit of {source}: purged {purged} stale PE(s)")
        if sync.mentor:
            self.end_startup(now, f"synchronised from mentor 0x{peer.server_id:08x}")

    # --- peer lists --------------------------------------------------------------------

    def _list_request(self, peer: Peer, c: EnrpConnection) -> None:
        budget = self.ctx.config.max_ht_response_bytes - 12
        servers: list[ServerInformation] = []
        for other in self.status_peers():
            if other.server_id == peer.server_id or other.address is None:
                continue
            info = self._peer_info(other)
            if info is None:
                continue
            size = server_info_size(info)
            if size > budget:
                break  # a partial list, like rsplib's
            budget -= size
            servers.append(info)
        self.send(c.conn, ListResponse(self.ctx.server_id, peer.server_id, tuple(servers)))

    def _peer_info(self, peer: Peer) -> ServerInformation | None:
        assert peer.address is not None
        address = parse_host(peer.address.host)
        if address is None:
            return None
        kind = SctpTransport if self.ctx.config.transport == TRANSPORT_SCTP else TcpTransport
        return ServerInformation(
            peer.server_id, kind(peer.address.port, (address,), TransportUse.DATA_ONLY)
        )

    def _list_response(self, c: EnrpConnection, msg: ListResponse) -> None:
        if msg.reject:
            return
        for info in msg.servers:
            sid = info.server_id
            if sid in (0, self.ctx.server_id) or sid in self.peers:
                continue
            self._learned_address(self._endpoint_of(info, c.address.host))

    # --- takeover ----------------------------------------------------------------------

    def start_takeover(self, target: int, now: float) -> None:
        """Init Takeover to all peers; complete when every other live peer acked."""
        ctx = self.ctx
        required = {
            sid
            for sid, peer in self.peers.items()
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
        self._send_to_peers(lambda receiver: InitTakeover(ctx.server_id, receiver, target))
        ctx.schedule.set(("takeover", target), takeover.expires)
        self._check_takeover(takeover, now)

    def _check_takeover(self, takeover: Takeover, now: float) -> None:
        if self.takeovers.get(takeover.target) is takeover and takeover.required <= takeover.acks:
            self._complete_takeover(takeover, now)

    def _complete_takeover(self, takeover: Takeover, now: float) -> None:
        ctx = self.ctx
        target = takeover.target
        del self.takeovers[target]
        ctx.schedule.cancel(("takeover", target))
        self._send_to_peers(
            lambda receiver: TakeoverServer(ctx.server_id, receiver, target), skip=target
        )
        entries = ctx.handlespace.entries_of_home(target)
        for entry in entries:
            ctx.handlespace.rehome(entry, ctx.server_id)
            self._adopt(entry, now)
        ctx.outbox.log(
            logging.INFO, f"takeover of 0x{target:08x} complete: {len(entries)} PE(s) now ours"
        )
        self.drop_peer(target, now, "taken over")

    def takeover_expired(self, target: int, now: float) -> None:
        takeover = self.takeovers.pop(target, None)
        if takeover is None:
            return
        missing = ", ".join(f"0x{s:08x}" for s in sorted(takeover.required - takeover.acks))
        self.ctx.outbox.log(
            logging.WARNING,
            f"takeover of 0x{target:08x} abandoned: no ack from {missing}; its PEs expire "
            "after their registration life",
        )
        self.drop_peer(target, now, "takeover abandoned")

    def _init_takeover(self, peer: Peer, c: EnrpConnection, msg: InitTakeover, now: float) -> None:
        ctx = self.ctx
        me = ctx.server_id
        target = msg.target_server_id
        sender = msg.sender_server_id
        if target == me:
            # We are alive: say so to everyone.
            for other in self.peers.values():
                if other.conn is not None:
                    self.send(other.conn, self._presence(other.server_id, conn=other.conn))
            if ctx.config.enrp_announce:
                ctx.outbox.actions.append(SendEnrpPresence(encode_enrp(self._presence(0))))
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
        self.send(c.conn, InitTakeoverAck(me, sender, target))

    def _init_takeover_ack(self, msg: InitTakeoverAck, now: float) -> None:
        takeover = self.takeovers.get(msg.target_server_id)
        if takeover is not None:
            takeover.acks.add(msg.sender_server_id)
            self._check_takeover(takeover, now)

    def _takeover_server(self, peer: Peer, msg: TakeoverServer, now: float) -> None:
        ctx = self.ctx
        target = msg.target_server_id
        if target == ctx.server_id:
            ctx.outbox.log(
                logging.WARNING,
                f"peer 0x{peer.server_id:08x} took us over; our PEs' next registrations "
                "reclaim them",
            )
            return
        hs = ctx.handlespace
        for entry in hs.entries_of_home(target):
            hs.rehome(entry, peer.server_id)
            hs.set_timer(entry, TimerKind.EXPIRY, now + entry.registration_life / 1000.0)
        if self.takeovers.pop(target, None) is not None:
            ctx.schedule.cancel(("takeover", target))
        self.drop_peer(target, now, f"taken over by 0x{peer.server_id:08x}")
