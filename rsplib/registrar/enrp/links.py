"""ENRP connections and dialling: who we can talk to, and over which connection.

Unicast ENRP travels over connections the service opens (``ConnectToPeer``) or accepts; a
peer is reachable when one of them is identified as its connection. Addresses to dial come
from ``--peer`` (static, retried with back-off for ever), multicast Presence and List
Responses (given up after a few failures).

Admission rules (see docs/trust-model.md): with an allow-list only listed hosts connect;
the number of ENRP connections and of known peers is bounded; a connection speaks for one
registrar id, and an id whose live connection comes from one host cannot be claimed from
another host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from rsplib.addressing import ConnId, PeerAddress
from rsplib.registrar.actions import ConnectToPeer
from rsplib.registrar.config import TRANSPORT_SCTP
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp.state import Dial, EnrpConnection, Peer
from rsplib.registrar.scope import parse_host
from rsplib.wire.codec import encode_enrp
from rsplib.wire.constants import PPID, TransportUse
from rsplib.wire.enrp import EnrpMessage, Presence
from rsplib.wire.params import SctpTransport, ServerInformation, TcpTransport

#: Non-static addresses are given up after this many failed connection attempts in a row.
LEARNED_DIAL_ATTEMPTS = 3


class Links:
    """The connection table, the peer table and the dialler of the ENRP side."""

    def __init__(self, ctx: CoreContext, on_peer_unreachable: Callable[[int, float], None]):
        self.ctx = ctx
        self.connections: dict[ConnId, EnrpConnection] = {}
        self.peers: dict[int, Peer] = {}
        self.dials: dict[PeerAddress, Dial] = {}
        self._on_peer_unreachable = on_peer_unreachable
        cfg = ctx.config
        endpoint_address = parse_host(cfg.enrp_endpoint.host)
        self._wildcard_endpoint = endpoint_address is not None and endpoint_address.is_unspecified
        allow = cfg.peer_allow_list
        # Statically configured peers are allowed implicitly.
        self._allowed = None if allow is None else set(allow) | {p.host for p in cfg.static_peers}

    # --- sending -----------------------------------------------------------------------

    def allowed(self, host: str) -> bool:
        return self._allowed is None or host in self._allowed

    def send(self, conn: ConnId, msg: EnrpMessage) -> None:
        if isinstance(msg, Presence) and self._wildcard_endpoint:
            # rsplib keeps only the Presence addresses that belong to the association it
            # came on: a wildcard endpoint is named by our end of this connection.
            msg = replace(msg, server_info=self.server_info(conn))
        self.ctx.outbox.send(conn, PPID.ENRP, encode_enrp(msg))

    def send_to_peers(self, build: Callable[[int], EnrpMessage], *, skip: int = 0) -> None:
        for peer in self.peers.values():
            if peer.conn is not None and peer.server_id != skip:
                self.send(peer.conn, build(peer.server_id))

    def server_info(self, conn: ConnId | None = None) -> ServerInformation:
        """Our ENRP endpoint, as the peer on ``conn`` sees it when the endpoint is a
        wildcard address (0.0.0.0 or ::)."""
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

    def presence(self, receiver: int, *, reply_required: bool = False) -> Presence:
        ctx = self.ctx
        return Presence(
            ctx.server_id,
            receiver,
            ctx.handlespace.ownership_checksum(ctx.server_id),
            self.server_info(),
            reply_required,
        )

    @staticmethod
    def endpoint_of(info: ServerInformation, fallback_host: str) -> PeerAddress:
        """A peer's ENRP endpoint: its Server Information, or the source host if wildcard."""
        addresses = [a for a in info.transport.addresses if not a.is_unspecified]
        host = str(addresses[0]) if addresses else fallback_host
        return PeerAddress(host, info.transport.port)

    def status_peers(self) -> list[Peer]:
        return sorted(self.peers.values(), key=lambda p: p.server_id)

    # --- dialling ----------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.ctx.config
        for address in cfg.static_peers:
            self.dials[address] = Dial(address, True, cfg.peer_reconnect_min)
            self._dial(address)

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

    def learned_address(self, address: PeerAddress) -> None:
        """Dial an address learned from multicast or a List Response (if not connected)."""
        if address in self.dials or not self.allowed(address.host):
            return
        if len(self.dials) >= self.ctx.config.max_enrp_peers:
            return  # bounded like the peer table: a Presence flood cannot make us dial out
        for c in self.connections.values():
            if c.address == address or c.outbound_to == address:
                return
        self.dials[address] = Dial(address, False, self.ctx.config.peer_reconnect_min)
        self._dial(address)

    def _retry_later(self, dial: Dial, now: float) -> None:
        cfg = self.ctx.config
        dial.failures += 1
        if not dial.static and dial.failures >= LEARNED_DIAL_ATTEMPTS:
            del self.dials[dial.address]
            return
        self.ctx.schedule.set(("dial", dial.address), now + dial.backoff)
        dial.backoff = min(dial.backoff * 2, cfg.peer_reconnect_max)

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

    # --- connections -------------------------------------------------------------------

    def opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
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
            self.send(conn, self.presence(0, reply_required=True))
        return True

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
                    self._on_peer_unreachable(peer.server_id, now)
        if c.outbound_to is not None:
            dial = self.dials.get(c.outbound_to)
            if dial is not None and dial.conn == conn:
                dial.conn = None
                dial.failures = 0
                self._retry_later(dial, now)

    def close(self, conn: ConnId, reason: str, now: float) -> None:
        self.ctx.outbox.close(conn, reason, abort=True)
        self.lost(conn, now)

    def bind_sender(self, c: EnrpConnection, sender: int) -> bool:
        """Tie the connection to the registrar id it speaks for; False: ignore the message."""
        ctx = self.ctx
        if sender == ctx.server_id or sender == 0:
            ctx.outbox.log_once(
                ("conn", c.conn),
                "bad-sender",
                logging.WARNING,
                f"ENRP message with sender id 0x{sender:08x} from {c.address} ignored",
            )
            return False
        if c.server_id == sender:
            return True
        if c.server_id is not None:
            # One connection speaks for one registrar; anything else is confusion or spoofing.
            ctx.outbox.log_once(
                ("conn", c.conn),
                "sender-changed",
                logging.WARNING,
                f"ENRP connection from {c.address} changed its sender id "
                f"0x{c.server_id:08x} -> 0x{sender:08x}; messages ignored",
            )
            return False
        holder = next(
            (
                o
                for o in self.connections.values()
                if o.server_id == sender and o.address.host != c.address.host
            ),
            None,
        )
        if holder is not None:
            # A registrar's connections all come from its own host; another host claiming
            # the id of a live peer is an impostor (or a restart the old connection hides).
            ctx.outbox.log_once(
                ("conn", c.conn),
                "sender-taken",
                logging.WARNING,
                f"ENRP connection from {c.address} claims id 0x{sender:08x}, which is "
                f"connected from {holder.address.host}; messages ignored",
            )
            return False
        c.server_id = sender
        return True

    # --- peers -------------------------------------------------------------------------

    def add_peer(
        self, server_id: int, address: PeerAddress | None, conn: ConnId | None, now: float
    ) -> Peer | None:
        """A new peer, or None when the peer table is full."""
        ctx = self.ctx
        if len(self.peers) >= ctx.config.max_enrp_peers:
            ctx.outbox.log_once(
                "enrp-peer-limit",
                "limit",
                logging.WARNING,
                f"ignoring new ENRP peers beyond {ctx.config.max_enrp_peers} "
                f"(first ignored: 0x{server_id:08x} at {address})",
            )
            return None
        peer = Peer(server_id, address, conn, now)
        self.peers[server_id] = peer
        ctx.outbox.log(
            logging.INFO,
            f"new ENRP peer 0x{server_id:08x} at {address if address else 'unknown address'}",
        )
        return peer

    def remove_peer(self, server_id: int, now: float, reason: str) -> Peer | None:
        """Forget a peer: its timer, its connections and a learned address to dial."""
        peer = self.peers.pop(server_id, None)
        if peer is None:
            return None
        ctx = self.ctx
        ctx.schedule.cancel(("peer", server_id))
        ctx.outbox.log(logging.INFO, f"ENRP peer 0x{server_id:08x} dropped: {reason}")
        for c in [c for c in self.connections.values() if c.server_id == server_id]:
            self.close(c.conn, f"peer 0x{server_id:08x} dropped", now)
        if peer.address is not None:
            dial = self.dials.get(peer.address)
            if dial is not None and not dial.static and dial.conn is None:
                del self.dials[peer.address]
                ctx.schedule.cancel(("dial", peer.address))
        return peer
