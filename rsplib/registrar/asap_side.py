"""The registrar's ASAP side: PEs and PUs talking to it (RFC 5352, rsplib's behaviour).

Registration with validation, Deregistration (only from the registering connection),
Handle Resolution, Endpoint Keep-Alive supervision, Endpoint Unreachable counting, and the
per-connection bookkeeping (PE counts, rate limits). Changes of PEs this registrar owns are
passed to the ENRP side through ``on_pe_added`` / ``on_pe_removed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from rsplib.addressing import ConnId, PeerAddress
from rsplib.handlespace import HandlespaceError, PoolElementEntry, TimerKind
from rsplib.registrar.config import TRANSPORT_SCTP
from rsplib.registrar.context import CoreContext
from rsplib.registrar.fastpath import ResolutionEncoder
from rsplib.registrar.ratelimit import RateLimiter
from rsplib.registrar.scope import parse_host, usable_user_transport
from rsplib.wire.asap import (
    AsapMessage,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
    ServerAnnounce,
    encode_asap,
)
from rsplib.wire.constants import PPID, ErrorCause, TransportUse, cause_name
from rsplib.wire.params import IPAddress, OperationError, SctpTransport, TcpTransport, Transport

PeKey = tuple[bytes, int]
EntryCallback = Callable[[PoolElementEntry, float], None]


@dataclass(slots=True)
class AsapConnection:
    """One PE/PU connection: where it comes from and what it registered."""

    conn: ConnId
    peer: PeerAddress
    peer_ip: IPAddress | None
    transport: str
    #: The other addresses of a multi-homed SCTP peer (its association's other paths).
    other_peer_ips: tuple[IPAddress, ...] = ()
    #: PEs whose entry names this connection (kept in step with the handlespace).
    pe_count: int = 0
    #: PEs that identified themselves on this connection (registration or keep-alive ack);
    #: used to reach a taken-over PE with a Keep-Alive carrying the H flag.
    linked: set[PeKey] = field(default_factory=set)

    @property
    def asap_transport(self) -> Transport | None:
        """The PE's ASAP transport as the registrar sees it: the connection's peer."""
        if self.peer_ip is None:
            return None
        if self.transport == TRANSPORT_SCTP:
            return SctpTransport(self.peer.port, (self.peer_ip,), TransportUse.DATA_ONLY)
        return TcpTransport(self.peer.port, (self.peer_ip,), TransportUse.DATA_ONLY)


def pe_name(pool_handle: bytes, identifier: int) -> str:
    return f"PE 0x{identifier:08x} of pool {pool_handle!r}"


class AsapSide:
    def __init__(self, ctx: CoreContext, on_pe_added: EntryCallback, on_pe_removed: EntryCallback):
        self.ctx = ctx
        self.connections: dict[ConnId, AsapConnection] = {}
        self._on_pe_added = on_pe_added
        self._on_pe_removed = on_pe_removed
        #: Endpoint Unreachable reports per PE (cumulative for the entry's lifetime).
        self._bad_reports: dict[PeKey, int] = {}
        #: Which connection a PE last identified itself on (see AsapConnection.linked).
        self._links: dict[PeKey, ConnId] = {}
        self._encoder = ResolutionEncoder()
        cfg = ctx.config
        self._hr_limiter = RateLimiter(cfg.max_hr_rate) if cfg.max_hr_rate else None
        self._eu_limiter = RateLimiter(cfg.max_eu_rate) if cfg.max_eu_rate else None

    # --- connections -------------------------------------------------------------------

    def opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
        transport: str,
        other_peer_hosts: Sequence[str] = (),
    ) -> bool:
        """Accept a new connection; False (and a close action) when over the limit.

        ``other_peer_hosts``: the other addresses of a multi-homed SCTP peer."""
        ctx = self.ctx
        if len(self.connections) >= ctx.config.max_asap_connections:
            ctx.outbox.close(conn, "too many ASAP connections", abort=True)
            ctx.outbox.log_once(
                "asap-limit",
                "limit",
                logging.WARNING,
                f"refusing ASAP connections beyond {ctx.config.max_asap_connections} "
                f"(first refused: {peer})",
            )
            return False
        others = tuple(ip for ip in map(parse_host, other_peer_hosts) if ip is not None)
        self.connections[conn] = AsapConnection(
            conn, peer, parse_host(peer.host), transport, other_peer_ips=others
        )
        if transport == "tcp-mapping":
            # Greet with our identifier: a PU never gets a keep-alive, and a PE only after
            # the first interval, yet both name their registrar in status reports. (Only on
            # the TCP mapping, which rsplib's SCTP-only components never speak.)
            self.send(conn, ServerAnnounce(ctx.server_id))
        return True

    def lost(self, conn: ConnId, now: float) -> None:
        """The connection is gone: all PEs registered over it are removed."""
        c = self.connections.pop(conn, None)
        if c is None:
            return
        hs = self.ctx.handlespace
        removed = 0
        for entry in hs.entries_of_connection(conn):
            self.remove_entry(entry, now, "its ASAP connection was lost")
            removed += 1
        for key in c.linked:
            if self._links.get(key) == conn:
                del self._links[key]
        for limiter in (self._hr_limiter, self._eu_limiter):
            if limiter is not None:
                limiter.forget(lambda key: isinstance(key, tuple) and key[0] == conn)
        if removed:
            self.ctx.outbox.log(
                logging.INFO, f"ASAP connection from {c.peer} lost: removed {removed} PE(s)"
            )

    # --- entry bookkeeping -------------------------------------------------------------

    def remove_entry(self, entry: PoolElementEntry, now: float, reason: str) -> None:
        """Remove a PE from the handlespace and all side tables; tell peers if we own it."""
        hs = self.ctx.handlespace
        conn = entry.connection
        if not hs.remove(entry):
            return
        if conn is not None:
            self._uncount(conn)
        key = (entry.pool_handle, entry.identifier)
        self._bad_reports.pop(key, None)
        self._unlink(key)
        self._encoder.forget(*key)
        self._on_pe_removed(entry, now)

    def forget_connection_of(self, entry: PoolElementEntry, previous: object) -> None:
        """An update moved ``entry`` away from connection ``previous`` (e.g. to a peer)."""
        if previous is not None and previous != entry.connection:
            self._uncount(previous)

    def connection(self, conn: object) -> AsapConnection | None:
        return self.connections.get(conn) if isinstance(conn, int) else None

    def _uncount(self, conn: object) -> None:
        c = self.connection(conn)
        if c is not None and c.pe_count > 0:
            c.pe_count -= 1

    def _count(self, conn: ConnId) -> None:
        c = self.connections.get(conn)
        if c is not None:
            c.pe_count += 1

    def _link(self, key: PeKey, c: AsapConnection) -> None:
        old = self._links.get(key)
        if old == c.conn:
            return
        if old is not None:
            previous = self.connections.get(old)
            if previous is not None:
                previous.linked.discard(key)
        self._links[key] = c.conn
        c.linked.add(key)

    def _unlink(self, key: PeKey) -> None:
        conn = self._links.pop(key, None)
        if conn is not None:
            c = self.connections.get(conn)
            if c is not None:
                c.linked.discard(key)

    def link_of(self, entry: PoolElementEntry) -> ConnId | None:
        """A live ASAP connection of this PE, if it ever identified itself on one."""
        conn = self._links.get((entry.pool_handle, entry.identifier))
        return conn if conn in self.connections else None

    def bad_report_count(self, pool_handle: bytes, identifier: int) -> int:
        return self._bad_reports.get((pool_handle, identifier), 0)

    # --- sending -----------------------------------------------------------------------

    def send(self, conn: ConnId, msg: AsapMessage) -> None:
        self.ctx.outbox.send(conn, PPID.ASAP, encode_asap(msg))

    def _log_reject(self, c: AsapConnection, what: str, cause: int, detail: str) -> None:
        self.ctx.outbox.log_once(
            ("conn", c.conn),
            f"reject-{what}-{cause}",
            logging.INFO,
            f"{what} from {c.peer} rejected: {cause_name(cause)} ({detail}); "
            "further rejections of this kind on this connection are not logged",
        )

    # --- messages ----------------------------------------------------------------------

    def handle(self, c: AsapConnection, msg: AsapMessage, now: float) -> bool:
        """Process one decoded message; False if the registrar does not take this type."""
        if isinstance(msg, HandleResolution):
            self._handle_resolution(c, msg, now)
        elif isinstance(msg, Registration):
            self._registration(c, msg, now)
        elif isinstance(msg, EndpointKeepAliveAck):
            self._keep_alive_ack(c, msg, now)
        elif isinstance(msg, Deregistration):
            self._deregistration(c, msg, now)
        elif isinstance(msg, EndpointUnreachable):
            self._unreachable(c, msg, now)
        else:
            return False
        return True

    def reject_registration(
        self, c: AsapConnection, pool_handle: bytes, identifier: int, cause: int, detail: str
    ) -> None:
        self.send(c.conn, RegistrationResponse(pool_handle, identifier, OperationError.of(cause)))
        self._log_reject(c, "registration", cause, detail)

    def _registration(self, c: AsapConnection, msg: Registration, now: float) -> None:
        ctx = self.ctx
        cfg = ctx.config
        ph = msg.pool_handle
        pe = msg.pool_element
        ident = pe.identifier
        if not 0 < len(ph) <= cfg.max_pool_handle_length:
            self.reject_registration(
                c, ph, ident, ErrorCause.INVALID_POOL_HANDLE, f"pool handle of {len(ph)} bytes"
            )
            return
        if ident == 0:
            self.reject_registration(c, ph, ident, ErrorCause.INVALID_PE_IDENTIFIER, "id 0")
            return
        if pe.asap_transport is not None:
            # The ASAP transport is what the registrar sees, never what the PE claims.
            self.reject_registration(
                c,
                ph,
                ident,
                ErrorCause.INVALID_REGISTRATOR,
                "registration carries an ASAP transport",
            )
            return
        asap_transport = c.asap_transport
        user = (
            usable_user_transport(
                pe.user_transport, c.peer_ip, cfg.min_address_scope, c.other_peer_ips
            )
            if c.peer_ip is not None
            else None
        )
        if user is None or asap_transport is None:
            self.reject_registration(
                c,
                ph,
                ident,
                ErrorCause.NO_USABLE_USER_ADDRESSES,
                f"user addresses {[str(a) for a in pe.user_transport.addresses]} do not match "
                f"the connection's {c.peer.host} with scope >= {cfg.min_address_scope.value}",
            )
            return
        hs = ctx.handlespace
        existing = hs.get(ph, ident)
        previous_conn = existing.connection if existing is not None else None
        if previous_conn is not None and previous_conn != c.conn:
            other = self.connection(previous_conn)
            if other is not None and other.peer_ip != c.peer_ip:
                # A PE may move to a new connection (it reconnected), but not to another host.
                self.reject_registration(
                    c,
                    ph,
                    ident,
                    ErrorCause.REJECTION_DUE_TO_SECURITY,
                    f"PE is registered from {other.peer.host}",
                )
                return
        if previous_conn != c.conn and c.pe_count >= cfg.max_pes_per_connection:
            self.reject_registration(
                c,
                ph,
                ident,
                ErrorCause.LACK_OF_RESOURCES,
                f"more than {cfg.max_pes_per_connection} PEs on one connection",
            )
            return
        # The entry's home comes from ``home_registrar_id`` below; only a reduced address
        # list needs a new parameter object (replace() is costly on this hot path).
        param = pe if user is pe.user_transport else replace(pe, user_transport=user)
        try:
            result = hs.register(
                ph,
                param,
                home_registrar_id=ctx.server_id,
                now=now,
                connection=c.conn,
                asap_transport=asap_transport,
            )
        except HandlespaceError as exc:
            self.reject_registration(c, ph, ident, exc.cause, exc.message)
            return
        entry = result.entry
        if previous_conn != c.conn:
            self.forget_connection_of(entry, previous_conn)
            self._count(c.conn)
        self._link((ph, ident), c)
        hs.set_timer(entry, TimerKind.KEEPALIVE_TRANSMISSION, now + cfg.endpoint_keepalive_interval)
        self.send(c.conn, RegistrationResponse(ph, ident))
        if result.is_new:
            ctx.outbox.log(logging.DEBUG, f"{pe_name(ph, ident)} registered from {c.peer}")
        self._on_pe_added(entry, now)

    def _deregistration(self, c: AsapConnection, msg: Deregistration, now: float) -> None:
        hs = self.ctx.handlespace
        ph, ident = msg.pool_handle, msg.identifier
        entry = hs.get(ph, ident)
        if entry is not None:
            allowed = entry.connection == c.conn or (
                # A taken-over PE has no connection yet: accept it from its own address.
                entry.connection is None
                and entry.home_registrar_id == self.ctx.server_id
                and c.peer_ip is not None
                and c.peer_ip in entry.user_transport.addresses
            )
            if not allowed:
                self.send(
                    c.conn,
                    DeregistrationResponse(
                        ph, ident, OperationError.of(ErrorCause.REJECTION_DUE_TO_SECURITY)
                    ),
                )
                self._log_reject(
                    c, "deregistration", ErrorCause.REJECTION_DUE_TO_SECURITY, "not the owner"
                )
                return
            self.remove_entry(entry, now, "deregistered")
        # Unknown PEs are answered with success, as rsplib does: the goal state holds.
        self.send(c.conn, DeregistrationResponse(ph, ident))

    def _handle_resolution(self, c: AsapConnection, msg: HandleResolution, now: float) -> None:
        ph = msg.pool_handle
        if self._hr_limiter is not None and not self._hr_limiter.allow((c.conn, ph), now):
            # rsplib answers rate-limited resolutions like an unknown pool.
            self.send(
                c.conn,
                HandleResolutionResponse(
                    ph, error=OperationError.of(ErrorCause.UNKNOWN_POOL_HANDLE)
                ),
            )
            self._log_reject(c, "handle resolution", ErrorCause.UNKNOWN_POOL_HANDLE, "rate limit")
            return
        try:
            entries = self.ctx.handlespace.resolve(ph, msg.items, now)
        except HandlespaceError as exc:
            self.send(c.conn, HandleResolutionResponse(ph, error=OperationError.of(exc.cause)))
            return
        self.ctx.outbox.send(
            c.conn, PPID.ASAP, self._encoder.handle_resolution_response(ph, entries)
        )

    def _keep_alive_ack(self, c: AsapConnection, msg: EndpointKeepAliveAck, now: float) -> None:
        ctx = self.ctx
        hs = ctx.handlespace
        entry = hs.get(msg.pool_handle, msg.identifier)
        if entry is None or entry.home_registrar_id != ctx.server_id:
            return
        if entry.connection is None:
            # A taken-over PE answered our Keep-Alive with the H flag: it now uses this
            # connection, and peers learn its new ASAP transport. Only the connection the
            # Keep-Alive went to (or one from the PE's own address) may claim it.
            transport = c.asap_transport
            if transport is None or not (
                self.link_of(entry) == c.conn or c.peer_ip in entry.user_transport.addresses
            ):
                return
            try:
                hs.register(
                    entry.pool_handle,
                    entry.to_param(True),
                    home_registrar_id=ctx.server_id,
                    now=now,
                    connection=c.conn,
                    asap_transport=transport,
                )
            except HandlespaceError:
                return
            self._count(c.conn)
            self._on_pe_added(entry, now)
        elif entry.connection != c.conn:
            return
        self._link((entry.pool_handle, entry.identifier), c)
        hs.set_timer(
            entry, TimerKind.KEEPALIVE_TRANSMISSION, now + ctx.config.endpoint_keepalive_interval
        )

    def _unreachable(self, c: AsapConnection, msg: EndpointUnreachable, now: float) -> None:
        key = (msg.pool_handle, msg.identifier)
        if self._eu_limiter is not None and not self._eu_limiter.allow((c.conn, *key), now):
            return  # excess reports are ignored silently (rsplib)
        entry = self.ctx.handlespace.get(*key)
        if entry is None:
            return
        count = self._bad_reports.get(key, 0) + 1
        self._bad_reports[key] = count
        if count >= self.ctx.config.max_bad_pe_reports:
            self.ctx.outbox.log(
                logging.INFO,
                f"{pe_name(*key)} removed after {count} Endpoint Unreachable reports",
            )
            self.remove_entry(entry, now, "reported unreachable")

    # --- timers ------------------------------------------------------------------------

    def send_keep_alive(self, entry: PoolElementEntry, now: float, *, home: bool = False) -> bool:
        """Send an Endpoint Keep-Alive (with the PE identifier, as rsplib) and arm the timeout."""
        ctx = self.ctx
        conn = entry.connection if not home else self.link_of(entry)
        if not isinstance(conn, int) or conn not in self.connections:
            return False
        self.send(
            conn, EndpointKeepAlive(ctx.server_id, entry.pool_handle, entry.identifier, home=home)
        )
        ctx.handlespace.set_timer(
            entry, TimerKind.KEEPALIVE_TIMEOUT, now + ctx.config.endpoint_keepalive_timeout
        )
        return True

    def keep_alive_due(self, entry: PoolElementEntry, now: float) -> None:
        if not self.send_keep_alive(entry, now):
            # No connection (a taken-over PE): supervised by its registration life instead.
            self.ctx.handlespace.set_timer(
                entry, TimerKind.EXPIRY, now + entry.registration_life / 1000.0
            )

    def keep_alive_timed_out(self, entry: PoolElementEntry, now: float) -> None:
        self.ctx.outbox.log(
            logging.INFO,
            f"{pe_name(entry.pool_handle, entry.identifier)} did not answer an Endpoint "
            "Keep-Alive: removed",
        )
        self.remove_entry(entry, now, "keep-alive timeout")
