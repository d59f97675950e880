"""Sans-IO registrar core: bytes, connection events and timer ticks in; actions out.

The service (``rsplib.registrar.service``) feeds it with ``now`` from its loop clock and
carries out the actions of ``pop_actions()`` in order. Nothing here reads a clock or
touches a socket, so several cores and fake PEs can be wired together in tests with a
fake clock.

Parts: ``asap_side`` (PEs and PUs), ``enrp`` (peers, tables, audit, takeover, trust),
``scope`` (address checks), ``htchunk``, ``schedule``, ``outbox`` (and ``rsplib.ratelimit``).

Design decisions (where RFC 5352/5353 or rsplib leave room, or where we improve on rsplib):

* Deregistration is accepted only from the connection the PE registered over; anything
  else gets a Deregistration Response with cause 0x000A "Rejection due to Security".
  Exception: a taken-over PE that has no connection to us yet may deregister from a
  connection whose peer address is one of its user addresses. Deregistering an unknown PE
  succeeds (as in rsplib). Registration of a PE id that another open connection registered
  is rejected with 0x000A, from any host (rsplib compares the association).
* User transport check: the PE's user addresses must be the connection's peer address
  (the TCP mapping has exactly one) and have at least the configured scope; a wildcard
  address means "the address I connect from". Otherwise reject with 0xF008. The ASAP
  transport comes from the connection (TCP Transport, data only, for the TCP mapping;
  SCTP Transport for SCTP); a Registration that carries one is rejected with 0xF006.
* Keep-alive timeout removes only the PE that did not answer (and tells the peers); the
  connection stays open, because over the TCP mapping one connection may carry many PEs
  and also serves handle resolutions. rsplib aborts the association instead.
* Malformed input is never fatal and is logged once per connection (or multicast source).
  Answers: an unknown message type -> ASAP/ENRP Error "Unrecognized Message"; an
  unrecognized parameter whose action bits ask for a report -> Error "Unrecognized
  Parameter" (for skip-and-report parameters the message is still processed); a broken
  Registration -> Registration Response with the decoder's cause when the pool handle and
  PE id can be salvaged. Everything else is dropped. Errors are never answered with errors.
* Takeover: the service has no action to open an association to a PE's ASAP endpoint (and
  over the TCP mapping a registrar cannot reach a PE at all), so no Keep-Alive with the H
  flag is sent. Taken-over PEs stay owned and resolvable with an expiry timer of their
  registration life; when such a PE hunts for a new registrar and re-registers here, the
  registration refreshes it and re-homes it normally (if it re-registers at another
  registrar, that registrar's Handle Update moves it there).
* What peers may change is decided by ``enrp.trust`` (docs/trust-model.md): a PE registered
  here over its own connection is changed only by that connection.
* Takeover needs acks from all other live peers (those with an open ENRP connection); with
  none it completes at once, so it also works with two registrars (rsplib's never does). A
  required peer that is lost during a takeover is no longer waited for. The lower id wins a
  race; a Presence from the target cancels the takeover.
* Peers: any ENRP message from a known peer counts as "heard". Requests from a registrar
  that has not sent a Presence are rejected (Handle Table / List Response with R). With an
  allow-list, only listed hosts (and the ``--peer`` hosts) are accepted.
* Distances for the DPF policies are not measured (0): the TCP mapping has no SRTT.
"""

from __future__ import annotations

import logging
import random
import struct
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from rsplib.addressing import PeerAddress
from rsplib.handlespace import Handlespace, PoolElementEntry, TimerKind
from rsplib.registrar.actions import Action, ConnId, SendAsapAnnounce
from rsplib.registrar.asap_side import AsapConnection, AsapSide
from rsplib.registrar.config import TRANSPORT_SCTP, RegistrarConfig
from rsplib.registrar.context import CoreContext
from rsplib.registrar.enrp import EnrpSide
from rsplib.registrar.outbox import Outbox
from rsplib.registrar.schedule import Schedule
from rsplib.registrar.scope import parse_host
from rsplib.wire.asap import AsapError, AsapMessage, ServerAnnounce
from rsplib.wire.codec import decode_asap, decode_enrp, encode_asap
from rsplib.wire.constants import (
    PARAM_CODE_MASK,
    PPID,
    AsapType,
    EnrpType,
    ErrorCause,
    ParamType,
    TransportUse,
    UpdateAction,
)
from rsplib.wire.enrp import EnrpError, Presence
from rsplib.wire.errors import ProtocolError, UnknownMessageError, UnrecognizedParameterError
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
from rsplib.wire.params import (
    ErrorCauseItem,
    OperationError,
    SctpTransport,
    TcpTransport,
    Transport,
)

#: Bytes of an offending message or TLV echoed back in an error cause, at most.
_MAX_CAUSE_INFO = 256
_TLV_HEADER = struct.Struct("!HH")
_HANDLE_UPDATE = bytes([EnrpType.HANDLE_UPDATE])


#: ASAP messages worth remembering decoded (see ``RegistrarCore._decode_asap``).
_MEMO_TYPES = frozenset({int(AsapType.HANDLE_RESOLUTION), int(AsapType.REGISTRATION)})
_MEMO_MAX_MESSAGE = 512
_MEMO_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One known ENRP peer as shown in status reports."""

    server_id: int
    address: PeerAddress | None
    connected: bool


@dataclass(frozen=True, slots=True)
class RegistrarStatus:
    """Read-only summary for status reports (CSP) and tests."""

    server_id: int
    pe_count: int
    owned_pe_count: int
    pool_count: int
    peers: tuple[PeerStatus, ...]
    ready: bool


class RegistrarCore:
    """The registrar's protocol logic: bytes and timer ticks in, actions out."""

    handlespace: Handlespace

    def __init__(
        self, config: RegistrarConfig, server_id: int, rng: random.Random, now: float
    ) -> None:
        if not 0 < server_id <= 0xFFFFFFFF:
            raise ValueError("server_id must be a non-zero 32-bit value")
        self.config = config
        self.server_id = server_id
        self.handlespace = Handlespace(
            max_increment=config.max_increment, max_hr_items=config.max_hr_items, rng=rng
        )
        self._ctx = CoreContext(config, server_id, self.handlespace, Outbox(), Schedule(), rng)
        self._limits = DecodeLimits(
            max_pool_handle=max(config.max_pool_handle_length, DEFAULT_LIMITS.max_pool_handle)
        )
        #: Decoded ASAP messages that repeat byte for byte (see ``_decode_asap``).
        self._asap_memo: dict[bytes, AsapMessage] = {}
        self.asap = AsapSide(self._ctx, self._pe_added, self._pe_removed)
        self.enrp = EnrpSide(
            self._ctx,
            remove_entry=self.asap.remove_entry,
            adopt_taken_over=self._adopt_taken_over,
            on_ready=self._ready,
        )
        self.ready = False
        self.stopped = False
        self.enrp.start(now)

    # --- connections -------------------------------------------------------------------

    def asap_connection_opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
        transport: str,
        now: float,
        other_peer_hosts: Sequence[str] = (),
    ) -> None:
        """A PE or PU connected; ``other_peer_hosts`` are the further addresses of a
        multi-homed SCTP peer (the association's other paths)."""
        if not self.stopped:
            self.asap.opened(conn, peer, transport, other_peer_hosts)

    def enrp_connection_opened(
        self,
        conn: ConnId,
        peer: PeerAddress,
        now: float,
        outbound_to: PeerAddress | None = None,
        local: PeerAddress | None = None,
    ) -> None:
        """``local``: our end of the connection (named in the Presence sent on it when
        the ENRP endpoint is a wildcard address)."""
        if not self.stopped:
            self.enrp.opened(conn, peer, now, outbound_to, local)

    def peer_connect_failed(self, peer: PeerAddress, now: float) -> None:
        if not self.stopped:
            self.enrp.connect_failed(peer, now)

    def connection_lost(self, conn: ConnId, now: float) -> None:
        if self.stopped:
            return
        if conn in self.asap.connections:
            self.asap.lost(conn, now)
        else:
            self.enrp.lost(conn, now)
        self._ctx.outbox.forget(("conn", conn))

    # --- input -------------------------------------------------------------------------

    def receive(self, conn: ConnId, ppid: int, data: bytes, now: float) -> None:
        """One complete message from a connection."""
        if self.stopped:
            return
        try:
            asap_conn = self.asap.connections.get(conn)
            if asap_conn is not None:
                self._receive_asap(asap_conn, ppid, data, now)
                return
            enrp_conn = self.enrp.connections.get(conn)
            if enrp_conn is not None:
                self._receive_enrp(conn, ppid, data, now)
        except Exception as exc:  # never fatal: one bad message must not stop the registrar
            self._internal_error(("conn", conn), exc)

    def receive_multicast(self, ppid: int, data: bytes, source: PeerAddress, now: float) -> None:
        """One datagram from a multicast group (ENRP Presence; ASAP announces are ignored)."""
        if self.stopped or ppid != PPID.ENRP:
            return
        outbox = self._ctx.outbox
        try:
            msg = decode_enrp(data, self._limits)
        except ProtocolError as exc:
            outbox.log_once(
                ("mcast", source.host),
                "malformed",
                logging.WARNING,
                f"malformed multicast ENRP datagram from {source}: {exc}; further problems "
                "from this source are not logged",
            )
            return
        try:
            if isinstance(msg, Presence):
                self.enrp.presence_multicast(msg, source, now)
        except Exception as exc:
            self._internal_error(("mcast", source.host), exc)

    def _receive_asap(self, c: AsapConnection, ppid: int, data: bytes, now: float) -> None:
        outbox = self._ctx.outbox
        if ppid != PPID.ASAP:
            outbox.log_once(
                ("conn", c.conn),
                "ppid",
                logging.WARNING,
                f"message with PPID {ppid} on the ASAP connection from {c.peer} dropped",
            )
            return
        try:
            msg = self._decode_asap(data)
        except ProtocolError as exc:
            self._malformed_asap(c, data, exc)
            return
        if msg.unrecognized:
            self.asap.send(c.conn, AsapError(_unrecognized_error(msg.unrecognized)))
        if not self.asap.handle(c, msg, now):
            outbox.log_once(
                ("conn", c.conn),
                f"unexpected-{msg.TYPE.name}",
                logging.INFO,
                f"ASAP {msg.TYPE.name} from {c.peer} is not for a registrar: ignored",
            )

    def _decode_asap(self, data: bytes) -> AsapMessage:
        """Decode, remembering Handle Resolutions and Registrations by their bytes.

        A pool user asks the same question again and again, and a PE re-registers with the
        very same message, so most of them are decoded once. Decoded messages are frozen,
        hence shareable; the memo is bounded (cleared when full), so a peer varying its
        bytes costs no more than decoding does anyway.
        """
        if not data or len(data) > _MEMO_MAX_MESSAGE or data[0] not in _MEMO_TYPES:
            return decode_asap(data, self._limits)
        memo = self._asap_memo
        msg = memo.get(data)
        if msg is None:
            msg = decode_asap(data, self._limits)
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            memo[data] = msg
        return msg

    def _receive_enrp(self, conn: ConnId, ppid: int, data: bytes, now: float) -> None:
        c = self.enrp.connections[conn]
        outbox = self._ctx.outbox
        if ppid != PPID.ENRP:
            outbox.log_once(
                ("conn", conn),
                "ppid",
                logging.WARNING,
                f"message with PPID {ppid} on the ENRP connection from {c.address} dropped",
            )
            return
        if data[:1] == _HANDLE_UPDATE and not self.enrp.admit_update(c, now):
            return  # over the peer's budget of PE changes (logged once by the trust rules)
        try:
            msg = decode_enrp(data, self._limits)
        except ProtocolError as exc:
            outbox.log_once(
                ("conn", conn),
                "malformed",
                logging.WARNING,
                f"malformed ENRP message from {c.address}: {exc}; further problems on this "
                "connection are not logged",
            )
            error = _error_answer(exc, data, EnrpType.ERROR)
            if error is not None:
                receiver = c.server_id or 0
                self.enrp.send(conn, EnrpError(self.server_id, receiver, error))
            return
        if msg.unrecognized:
            self.enrp.send(
                conn,
                EnrpError(
                    self.server_id, msg.sender_server_id, _unrecognized_error(msg.unrecognized)
                ),
            )
        self.enrp.handle(c, msg, now)

    def _malformed_asap(self, c: AsapConnection, data: bytes, exc: ProtocolError) -> None:
        self._ctx.outbox.log_once(
            ("conn", c.conn),
            "malformed",
            logging.WARNING,
            f"malformed ASAP message from {c.peer}: {exc}; further problems on this "
            "connection are not logged",
        )
        if data[:1] == bytes([AsapType.REGISTRATION]) and not (
            isinstance(exc, UnrecognizedParameterError) and not exc.report
        ):
            salvaged = _salvage_registration(data)
            if salvaged is not None:
                pool_handle, identifier = salvaged
                self.asap.reject_registration(c, pool_handle, identifier, exc.cause, str(exc))
                return
        error = _error_answer(exc, data, AsapType.ERROR)
        if error is not None:
            self.asap.send(c.conn, AsapError(error))

    def _internal_error(self, source: object, exc: Exception) -> None:
        where = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._ctx.outbox.log_once(
            source,
            "internal",
            logging.ERROR,
            f"internal error while handling input from {source}: {where}\n"
            + "".join(traceback.format_tb(exc.__traceback__)[-3:]),
        )

    # --- timers ------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        if self.stopped:
            return
        ctx = self._ctx
        for key in ctx.schedule.pop_due(now):
            assert isinstance(key, tuple)
            kind = key[0]
            if kind == "presence":
                self.enrp.send_presences(now)
            elif kind == "announce":
                self._announce(now)
            elif kind == "peer":
                self.enrp.peer_timer(key[1], now)
            elif kind == "takeover":
                self.enrp.takeover_expired(key[1], now)
            elif kind == "dial":
                self.enrp.dial_due(key[1], now)
            elif kind == "mentor":
                self.enrp.end_startup(now, "mentor discovery timeout")
        hs = self.handlespace
        for timer, entry in hs.pop_expired(now):
            if timer == TimerKind.KEEPALIVE_TRANSMISSION:
                self.asap.keep_alive_due(entry, now)
            elif timer == TimerKind.KEEPALIVE_TIMEOUT:
                self.asap.keep_alive_timed_out(entry, now)
            else:
                self.asap.remove_entry(entry, now, "registration life expired")

    def next_deadline(self) -> float | None:
        if self.stopped:
            return None
        times = [t for t in (self._ctx.schedule.next_time(), self.handlespace.next_timer_time())]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def _ready(self, now: float) -> None:
        self.ready = True
        if self.config.asap_announce:
            self._ctx.schedule.set(("announce",), now)

    def _announce(self, now: float) -> None:
        ctx = self._ctx
        msg = ServerAnnounce(self.server_id, self._announce_transports())
        ctx.outbox.actions.append(SendAsapAnnounce(encode_asap(msg)))
        ctx.schedule.set(("announce",), now + ctx.jittered(self.config.server_announce_cycle))

    def _announce_transports(self) -> tuple[Transport, ...]:
        """Where PEs and PUs reach us; wildcard endpoints are left out (then receivers use
        the datagram's source address and port, as with rsplib's announces)."""
        transports: list[Transport] = []
        for endpoint in self.config.asap_endpoints:
            address = parse_host(endpoint.host)
            if address is None or address.is_unspecified:
                continue
            if self.config.transport == TRANSPORT_SCTP:
                transports.append(SctpTransport(endpoint.port, (address,), TransportUse.DATA_ONLY))
            else:
                transports.append(TcpTransport(endpoint.port, (address,), TransportUse.DATA_ONLY))
        return tuple(transports)

    # --- links between the two sides ---------------------------------------------------

    def _pe_added(self, entry: PoolElementEntry, now: float) -> None:
        self.enrp.broadcast_update(UpdateAction.ADD_PE, entry)

    def _pe_removed(self, entry: PoolElementEntry, now: float) -> None:
        if entry.home_registrar_id == self.server_id:
            self.enrp.broadcast_update(UpdateAction.DEL_PE, entry)

    def _adopt_taken_over(self, entry: PoolElementEntry, now: float) -> None:
        # Supervised by its registration life until the PE registers with us again.
        self.handlespace.set_timer(entry, TimerKind.EXPIRY, now + entry.registration_life / 1000.0)

    # --- output and views --------------------------------------------------------------

    def pop_actions(self) -> list[Action]:
        return self._ctx.outbox.drain()

    def shutdown(self, now: float) -> None:
        """Clean stop: close every connection; peers notice the missing Presence."""
        if self.stopped:
            return
        outbox = self._ctx.outbox
        for conn in list(self.asap.connections) + list(self.enrp.connections):
            outbox.close(conn, "registrar shutting down")
        self.asap.connections.clear()
        self.enrp.connections.clear()
        self._ctx.schedule.clear()
        self.stopped = True
        outbox.log(logging.INFO, f"registrar 0x{self.server_id:08x} stopped")

    def status(self) -> RegistrarStatus:
        hs = self.handlespace
        peers = tuple(
            PeerStatus(p.server_id, p.address, p.conn is not None) for p in self.enrp.status_peers()
        )
        return RegistrarStatus(
            self.server_id,
            len(hs),
            len(hs.entries_of_home(self.server_id)),
            len(hs.pools()),
            peers,
            self.ready,
        )


# --- error answers ---------------------------------------------------------------------


def _unrecognized_error(tlvs: tuple[bytes, ...]) -> OperationError:
    return OperationError(
        tuple(
            ErrorCauseItem(ErrorCause.UNRECOGNIZED_PARAMETER, tlv[:_MAX_CAUSE_INFO]) for tlv in tlvs
        )
    )


def _error_answer(exc: ProtocolError, data: bytes, error_type: int) -> OperationError | None:
    """The Operation Error to answer a message the decoder refused with, or None (drop)."""
    if data[:1] == bytes([error_type]):
        return None  # never answer an error with an error
    if isinstance(exc, UnrecognizedParameterError):
        if not exc.report:
            return None
        return OperationError.of(ErrorCause.UNRECOGNIZED_PARAMETER, exc.offending[:_MAX_CAUSE_INFO])
    if isinstance(exc, UnknownMessageError):
        return OperationError.of(ErrorCause.UNRECOGNIZED_MESSAGE, data[:4])
    return None


def _salvage_registration(data: bytes) -> tuple[bytes, int] | None:
    """Pool handle and PE id of a Registration the decoder refused, if readable."""
    if len(data) < 8:
        return None
    ptype, plen = _TLV_HEADER.unpack_from(data, 4)
    if ptype & PARAM_CODE_MASK != ParamType.POOL_HANDLE or not 4 < plen <= len(data) - 4:
        return None
    pool_handle = data[8 : 4 + plen]
    pe_at = 4 + plen + (-plen % 4)
    if pe_at + 8 > len(data):
        return None
    ptype, plen = _TLV_HEADER.unpack_from(data, pe_at)
    if ptype & PARAM_CODE_MASK != ParamType.POOL_ELEMENT or plen < 8:
        return None
    (identifier,) = struct.unpack_from("!I", data, pe_at + 4)
    return pool_handle, identifier
