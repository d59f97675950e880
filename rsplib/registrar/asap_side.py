"""The registrar's ASAP side: PEs and PUs talking to it (RFC 5352, rsplib's behaviour).

Registration with validation, Deregistration (only from the registering connection),
Handle Resolution, Endpoint Keep-Alive supervision, Endpoint Unreachable handling, and the
per-connection bookkeeping (PE counts, rate limits). Changes of PEs this registrar owns are
passed to the ENRP side through ``on_pe_added`` / ``on_pe_removed``.

A PE's identity is bound to its connection: while the connection it registered over is open,
no other connection may register (or deregister) its identifier (rsplib compares the
association; RFC 5352 leaves it to the implementation).

Endpoint Unreachable (RFC 5352's unreachable endpoints, rsplib's MaxBadPEReports) must not let one
pool user remove a healthy PE. A report is counted once per reporting connection; a PE we
own and can reach is then probed with an immediate Endpoint Keep-Alive and removed only if
it does not answer within the keep-alive timeout. Other PEs are removed (here only) after
reports from ``max_bad_pe_reports`` different connections. The optional rate limit
(``max_eu_rate``) applies from the first report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rsplib.addressing import ConnId, PeerAddress
from rsplib.handlespace import HandlespaceError, PoolElementEntry, TimerKind
from rsplib.handlespace.entry import PeKey
from rsplib.ratelimit import RateLimiter
from rsplib.registrar.config import TRANSPORT_SCTP
from rsplib.registrar.context import CoreContext
from rsplib.registrar.fastpath import ResolutionEncoder
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
        #: Connections that reported a PE unreachable (for the entry's lifetime, or until
        #: the PE answers a probe); at most ``max_bad_pe_reports`` each.
        self._reporters: dict[PeKey, set[ConnId]] = {}
        #: When a PE was last probed because of a report (one probe per keep-alive interval,
        #: so reports cannot turn the registrar into a keep-alive flood).
        self._probed_at: dict[PeKey, float] = {}
        #: Endpoint Unreachable reports taken into account (past the rate limit), ever.
        self.unreachable_reports = 0
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
        self._reporters.pop(key, None)
        self._probed_at.pop(key, None)
        self._encoder.forget(*key)
        self._on_pe_removed(entry, now)

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

    def bad_report_count(self, pool_handle: bytes, identifier: int) -> int:
        """How many different connections reported this PE unreachable (and still count)."""
        return len(self._reporters.get((pool_handle, identifier), ()))

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
            # The identifier belongs to another open connection (entries of a lost connection
            # are removed at once): a second process cannot take it over, not even from the
            # same host. A PE that reconnected registers again once its old connection is
            # gone (the TCP mapping's heartbeats close it within seconds).
            other = self.connection(previous_conn)
            where = other.peer if other is not None else "another connection"
            self.reject_registration(
                c,
                ph,
                ident,
                ErrorCause.REJECTION_DUE_TO_SECURITY,
                f"PE is registered over another connection (from {where})",
            )
            return
        if existing is None and len(hs) >= cfg.max_pool_elements:
            self.reject_registration(
                c,
                ph,
                ident,
                ErrorCause.LACK_OF_RESOURCES,
                f"the handlespace holds {cfg.max_pool_elements} PEs",
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
            self._count(c.conn)
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
        if entry is None or entry.connection != c.conn:
            return  # only the PE's own connection speaks for it
        # Alive: reports made before this answer are settled.
        self._reporters.pop((entry.pool_handle, entry.identifier), None)
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
        self.unreachable_reports += 1
        reporters = self._reporters.setdefault(key, set())
        threshold = self.ctx.config.max_bad_pe_reports
        if c.conn in reporters or len(reporters) >= threshold:
            return  # one vote per connection; a decision is already under way
        reporters.add(c.conn)
        if self._probe(entry, now):
            return
        if len(reporters) >= threshold:
            self.ctx.outbox.log(
                logging.INFO,
                f"{pe_name(*key)} removed after Endpoint Unreachable reports from "
                f"{len(reporters)} connections",
            )
            self.remove_entry(entry, now, "reported unreachable")

    def _probe(self, entry: PoolElementEntry, now: float) -> bool:
        """Ask a PE we supervise whether it is alive (an immediate Endpoint Keep-Alive);
        False if we cannot reach it. Its silence removes it at the keep-alive timeout."""
        if not isinstance(entry.connection, int) or entry.connection not in self.connections:
            return False
        key = (entry.pool_handle, entry.identifier)
        last = self._probed_at.get(key)
        interval = self.ctx.config.endpoint_keepalive_interval
        if entry.timer_kind != TimerKind.KEEPALIVE_TIMEOUT and (
            last is None or now - last >= interval
        ):
            self._probed_at[key] = now
            self.send_keep_alive(entry, now)
        return True

    # --- timers ------------------------------------------------------------------------

    def send_keep_alive(self, entry: PoolElementEntry, now: float) -> bool:
        """Send an Endpoint Keep-Alive (with the PE identifier, as rsplib) and arm the timeout."""
        ctx = self.ctx
        conn = entry.connection
        if not isinstance(conn, int) or conn not in self.connections:
            return False
        self.send(conn, EndpointKeepAlive(ctx.server_id, entry.pool_handle, entry.identifier))
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
