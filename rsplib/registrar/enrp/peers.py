"""Peer presence: Presence in and out, peer supervision, and peer lists (RFC 5353,
sections 3.1 and 3.2, with rsplib's timers).

Every Presence (and every other message of a known peer) counts as "heard". A peer silent
for ``peer_max_time_last_heard`` is probed with a Presence asking for a reply; no answer
within ``peer_max_time_no_response`` makes it dead: the takeover machine takes over its PEs,
or the peer is just dropped when it owns none.
"""

from __future__ import annotations

from collections.abc import Callable

from rsplib.addressing import PeerAddress
from rsplib.registrar.actions import SendEnrpPresence
from rsplib.registrar.config import TRANSPORT_SCTP
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.links import Links
from rsplib.registrar.enrp.state import EnrpConnection, Peer
from rsplib.registrar.htchunk import server_info_size
from rsplib.registrar.scope import parse_host
from rsplib.wire.constants import TransportUse
from rsplib.wire.enrp import ListResponse, Presence, encode_enrp
from rsplib.wire.params import SctpTransport, ServerInformation, TcpTransport


class PeerPresence:
    def __init__(
        self,
        ctx: CoreContext,
        links: Links,
        *,
        peer_dead: Callable[[int, float], None],
        peer_alive: Callable[[int], None],
    ) -> None:
        self.ctx = ctx
        self.links = links
        self._peer_dead = peer_dead
        self._peer_alive = peer_alive

    def heard(self, peer: Peer, now: float) -> None:
        peer.last_heard = now
        peer.probing = False
        self.ctx.schedule.set(
            ("peer", peer.server_id), now + self.ctx.config.peer_max_time_last_heard
        )

    def recently_heard(self, server_id: int, now: float) -> bool:
        """Is ``server_id`` a live peer: heard within the time a silent peer is allowed?"""
        peer = self.links.peers.get(server_id)
        return (
            peer is not None
            and not peer.probing
            and now - peer.last_heard < self.ctx.config.peer_max_time_last_heard
        )

    def send_presences(self, now: float) -> None:
        """Periodic Presence: unicast to every peer (and unidentified outbound connections)
        and by multicast."""
        ctx = self.ctx
        links = self.links
        sent_to = set()
        for peer in links.peers.values():
            if peer.conn is not None:
                links.send(peer.conn, links.presence(peer.server_id))
                sent_to.add(peer.conn)
        for c in links.connections.values():
            if c.server_id is None and c.outbound_to is not None and c.conn not in sent_to:
                links.send(c.conn, links.presence(0, reply_required=True))
        if ctx.config.enrp_announce:
            ctx.outbox.actions.append(SendEnrpPresence(encode_enrp(links.presence(0))))
        ctx.schedule.set(("presence",), now + ctx.jittered(ctx.config.peer_heartbeat_cycle))

    def announce_alive(self) -> None:
        """Tell everyone at once that we are alive (we were named as a takeover target)."""
        links = self.links
        links.send_to_peers(lambda receiver: links.presence(receiver))
        if self.ctx.config.enrp_announce:
            self.ctx.outbox.actions.append(SendEnrpPresence(encode_enrp(links.presence(0))))

    def peer_timer(self, server_id: int, now: float) -> None:
        """Peer supervision: silent for max-time-last-heard -> probe; no answer -> dead."""
        peer = self.links.peers.get(server_id)
        if peer is None:
            return
        cfg = self.ctx.config
        if not peer.probing:
            peer.probing = True
            if peer.conn is not None:
                self.links.send(peer.conn, self.links.presence(server_id, reply_required=True))
            self.ctx.schedule.set(("peer", server_id), now + cfg.peer_max_time_no_response)
            return
        self._peer_dead(server_id, now)

    def presence_unicast(self, c: EnrpConnection, msg: Presence, now: float) -> Peer | None:
        """A Presence over a connection: the peer is (re)learned and answered if asked."""
        links = self.links
        sid = msg.sender_server_id
        address = links.endpoint_of(msg.server_info, c.address.host)
        peer = links.peers.get(sid)
        if peer is None:
            peer = links.add_peer(sid, address, c.conn, now)
            if peer is None:
                return None
        else:
            peer.address = address
            if peer.conn is None or peer.conn not in links.connections:
                peer.conn = c.conn
        self.heard(peer, now)
        self._peer_alive(sid)
        if msg.reply_required:
            links.send(c.conn, links.presence(sid))
        return peer

    def presence_multicast(self, msg: Presence, source: PeerAddress, now: float) -> None:
        """Multicast Presence only maintains the peer list (no checksum comparison)."""
        links = self.links
        sid = msg.sender_server_id
        if sid == self.ctx.server_id or sid == 0 or not links.allowed(source.host):
            return
        address = PeerAddress(source.host, msg.server_info.transport.port)
        peer = links.peers.get(sid)
        if peer is None:
            peer = links.add_peer(sid, address, None, now)
            if peer is None:
                return
        self.heard(peer, now)
        self._peer_alive(sid)
        if peer.conn is None:
            links.learned_address(address)

    # --- peer lists --------------------------------------------------------------------

    def list_request(self, peer: Peer, c: EnrpConnection) -> None:
        budget = self.ctx.config.max_ht_response_bytes - 12
        servers: list[ServerInformation] = []
        for other in self.links.status_peers():
            if other.server_id == peer.server_id or other.address is None:
                continue
            info = self._peer_info(other.server_id, other.address)
            if info is None:
                continue
            size = server_info_size(info)
            if size > budget:
                break  # a partial list, like rsplib's
            budget -= size
            servers.append(info)
        self.links.send(c.conn, ListResponse(self.ctx.server_id, peer.server_id, tuple(servers)))

    def _peer_info(self, server_id: int, address: PeerAddress) -> ServerInformation | None:
        host = parse_host(address.host)
        if host is None:
            return None
        kind = SctpTransport if self.ctx.config.transport == TRANSPORT_SCTP else TcpTransport
        return ServerInformation(server_id, kind(address.port, (host,), TransportUse.DATA_ONLY))

    def list_response(self, c: EnrpConnection, msg: ListResponse) -> None:
        if msg.reject:
            return
        links = self.links
        for info in msg.servers:
            sid = info.server_id
            if sid in (0, self.ctx.server_id) or sid in links.peers:
                continue
            links.learned_address(links.endpoint_of(info, c.address.host))
