"""The registrar's asyncio service: sockets, timers and signals around the sans-IO core.

The service is deliberately thin. It owns the listening endpoints (ASAP and
ENRP, via rsplib.transport), the open channels, the outbound peer connections,
the multicast sockets and one timer; every byte it receives goes straight into
``RegistrarCore`` with ``now=loop.time()``, and after every input it carries
out the core's actions in order (send, close, connect, multicast, log) and
re-arms the timer to ``core.next_deadline()``. All protocol decisions live in
the core.

Resources fit the process: the ASAP and ENRP connection limits are taken from the
open-file limit (RLIMIT_NOFILE) when they would not fit in it, one source host may hold
only part of them, records are at most 64 KiB (ASAP and ENRP messages cannot be longer),
and all connection buffers share one memory budget.

Everything runs in one ``asyncio.TaskGroup``; shutdown (SIGINT/SIGTERM or
:meth:`RegistrarService.stop`) lets the core stop cleanly, closes every
connection, sends a FINAL status report, and cancels the group. Peers notice
the missing Presence; PEs notice the closed connection and hunt for another
registrar.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from rsplib.addressing import PeerAddress
from rsplib.core_driver import DeadlineTimer
from rsplib.registrar.actions import (
    Action,
    CloseConnection,
    ConnectToPeer,
    ConnId,
    LogEvent,
    SendAsapAnnounce,
    SendEnrpPresence,
    SendMessage,
)
from rsplib.registrar.config import RegistrarConfig
from rsplib.registrar.core import RegistrarCore
from rsplib.status import StatusReporter
from rsplib.trace.tracer import TRACER
from rsplib.transport import (
    SCTP,
    TCP_MAPPING,
    BufferBudget,
    ChannelClosed,
    ChannelHandler,
    ChannelServer,
    FlowLimits,
    HeartbeatConfig,
    MessageChannel,
    MulticastSender,
    TcpOptions,
    TlsConfig,
    choose_transport,
    connect,
    default_per_host,
    fd_connection_limit,
    open_multicast_receiver,
    split_connection_limit,
    start_server,
)
from rsplib.wire.constants import PPID
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id
from rsplib.wire.tcpmap import MAX_MESSAGE_RECORD

log = logging.getLogger("rsplib.registrar")

#: rsplib's well-known multicast groups for Server Announces and ENRP Presence.
ASAP_ANNOUNCE_GROUP = PeerAddress("239.0.0.50", 3863)
ENRP_ANNOUNCE_GROUP = PeerAddress("239.0.0.51", 9901)
#: Default listening endpoints (the well-known ports on every interface).
DEFAULT_ASAP_ENDPOINT = PeerAddress("0.0.0.0", 3863)
DEFAULT_ENRP_ENDPOINT = PeerAddress("0.0.0.0", 9901)
#: IP protocol numbers for CSP association entries.
_IPPROTO_TCP = 6
_IPPROTO_SCTP = 132
#: Buffers of a registrar's connections: only ASAP and ENRP (records of at most 64 KiB).
#: A PE or PU connection carries small answers; a peer may get bursts of Handle Updates.
#: 64 KiB take well under a second on any link: an unfinished record is given 5 s. Reads
#: of 16 KiB keep each connection's turn in the loop short. A PE or PU that does not read
#: its answers is neither read nor served beyond 16 KiB of them (plus a 32 KiB kernel send
#: buffer: ASAP answers are small); peers are read regardless, since both sides send much.
ASAP_LIMITS = FlowLimits(
    max_record=MAX_MESSAGE_RECORD,
    send_nowait_limit=1024 * 1024,
    record_deadline=5.0,
    read_size=16 * 1024,
    write_high=16 * 1024,
    write_low=4 * 1024,
)
ASAP_TCP_OPTIONS = TcpOptions(send_buffer=32 * 1024)
ENRP_LIMITS = FlowLimits(
    max_record=MAX_MESSAGE_RECORD,
    send_nowait_limit=16 * 1024 * 1024,
    record_deadline=5.0,
    read_size=16 * 1024,
    pause_reading_while_blocked=False,
)
DEFAULT_TCP_OPTIONS = TcpOptions()
#: Messages handled from one connection before the others get their turn.
FAIR_SHARE = 64
#: Default memory budget of all connection buffers together.
DEFAULT_BUFFER_BUDGET = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServiceOptions:
    """What the service needs beyond the core's configuration (the I/O side)."""

    #: ASAP listening endpoints (port 0 = ephemeral).
    asap: tuple[PeerAddress, ...] = (DEFAULT_ASAP_ENDPOINT,)
    #: ENRP listening endpoint.
    enrp: PeerAddress = DEFAULT_ENRP_ENDPOINT
    #: "auto" (kernel SCTP if available, else the TCP mapping), "tcp" or "sctp".
    transport: str = "auto"
    #: Multicast group for ASAP Server Announces; None = off.
    asap_announce: PeerAddress | None = ASAP_ANNOUNCE_GROUP
    #: Multicast group for ENRP Presence (sent and received); None = off.
    enrp_announce: PeerAddress | None = ENRP_ANNOUNCE_GROUP
    #: Local IPv4 address of the multicast interface; required when multicast is on.
    announce_interface: str | None = None
    announce_ttl: int = 30
    #: Component status monitor; None = no reports.
    csp_server: tuple[str, int] | None = None
    csp_interval: float = 1.0
    #: Application heartbeats on TCP-mapping channels.
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    #: Timeout of an outbound ENRP connection attempt.
    connect_timeout: float = 5.0
    #: ASAP connections one source host may hold; None = a quarter of the limit (>= 16).
    max_connections_per_host: int | None = None
    #: New connections one source host may open per second (twice as many at once).
    connection_rate_per_host: float = 50.0
    #: Bytes all connection buffers (partial records, queues) may hold together.
    buffer_budget: int = DEFAULT_BUFFER_BUDGET
    #: TLS with mutual certificates on every connection (TCP mapping only); None = off.
    tls: TlsConfig | None = None


def _transport_for(requested: str) -> str:
    """``auto|tcp|sctp`` (CLI words) -> the transport the channels use."""
    return choose_transport(TCP_MAPPING if requested == "tcp" else requested)


def _format(address: tuple[str, int] | PeerAddress) -> str:
    if isinstance(address, PeerAddress):
        return str(address)
    return str(PeerAddress(address[0], address[1]))


class RegistrarService:
    """One registrar process: ``await RegistrarService(config, server_id).run()``."""

    def __init__(
        self,
        config: RegistrarConfig,
        server_id: int,
        options: ServiceOptions | None = None,
        *,
        rng: random.Random | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        self.options = options or ServiceOptions()
        self.server_id = server_id
        self._config = config
        self._rng = rng or random.Random()
        self._install_signals = install_signal_handlers
        self.core: RegistrarCore | None = None
        self.transport_name = ""
        self.asap_addresses: list[tuple[str, int]] = []
        self.enrp_address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._servers: list[ChannelServer] = []
        self._channels: dict[ConnId, MessageChannel] = {}
        # Set once the core exists: the listeners are bound (and may accept) a moment before.
        self._core_created = asyncio.Event()
        self._next_conn: ConnId = 1
        self._timer: DeadlineTimer | None = None
        self._drain_scheduled = False
        self._stop = asyncio.Event()
        self._asap_sender: MulticastSender | None = None
        self._enrp_sender: MulticastSender | None = None
        self._reporter: StatusReporter | None = None
        self._ready = asyncio.Event()
        self._stopped = False
        self._budget = BufferBudget(self.options.buffer_budget)

    # ------------------------------------------------------------------ public control

    async def wait_ready(self) -> None:
        """Returns once the service listens and serves (used by in-process tests)."""
        await self._ready.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to shut down cleanly (what SIGINT/SIGTERM do)."""
        self._stop.set()

    # ------------------------------------------------------------------ main

    async def run(self) -> None:
        """Serve until stopped. Binding errors (OSError) propagate before anything runs."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timer = DeadlineTimer(loop, self._on_timer)
        TRACER.identify(component_id(ComponentGroup.REGISTRAR, self.server_id))
        self.transport_name = _transport_for(self.options.transport)
        self._fit_connection_limits()
        await self._bind()
        try:
            self._open_multicast_senders()
            config = dataclasses.replace(
                self._config,
                asap_endpoints=tuple(PeerAddress(h, p) for h, p in self.asap_addresses),
                enrp_endpoint=PeerAddress(*self.enrp_address)
                if self.enrp_address
                else self._config.enrp_endpoint,
                transport=self.transport_name,
                asap_announce=self._asap_sender is not None,
                enrp_announce=self._enrp_sender is not None,
            )
            self.core = RegistrarCore(config, self.server_id, self._rng, loop.time())
            self._core_created.set()
            if self._install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, self.stop)
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                if self.options.enrp_announce is not None:
                    self._spawn(self._multicast_receive_loop(), "rsp-enrp-multicast")
                if self.options.csp_server is not None:
                    self._reporter = self._make_reporter()
                    self._spawn(self._reporter.run(), "rsp-csp-reporter")
                self._drain()
                self._log_ready()
                self._ready.set()
                await self._stop.wait()
                await self._shutdown()
                # Whatever still runs (readers, connects, reporter) ends with the group.
                for task in list(self._background):
                    task.cancel()
        finally:
            self._close_everything()
            if self._install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(Exception):
                        loop.remove_signal_handler(sig)

    def _fit_connection_limits(self) -> None:
        """Lower the connection limits to what the open-file limit allows."""
        config = self._config
        asap, enrp = split_connection_limit(fd_connection_limit(), config.max_enrp_connections)
        asap = min(asap, config.max_asap_connections)
        enrp = min(enrp, config.max_enrp_connections)
        if (asap, enrp) != (config.max_asap_connections, config.max_enrp_connections):
            log.info(
                "connection limits lowered to fit the open-file limit (RLIMIT_NOFILE): "
                "%d ASAP, %d ENRP",
                asap,
                enrp,
            )
            self._config = dataclasses.replace(
                config, max_asap_connections=asap, max_enrp_connections=enrp
            )

    async def _bind(self) -> None:
        opts = self.options

        async def listen(
            endpoint: PeerAddress,
            handler: ChannelHandler,
            max_connections: int,
            max_per_host: int,
            limits: FlowLimits,
            tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
            shared_port: bool = False,
        ) -> list[tuple[str, int]]:
            server = await start_server(
                endpoint.host,
                endpoint.port,
                handler,
                transport=self.transport_name,
                heartbeat=opts.heartbeat,
                max_connections=max_connections,
                max_per_host=max_per_host,
                max_rate_per_host=opts.connection_rate_per_host,
                limits=limits,
                tcp_options=tcp_options,
                tls=opts.tls,
                budget=self._budget,
                shared_port=shared_port,
            )
            self._servers.append(server)
            return server.addresses

        config = self._config
        asap_limit = config.max_asap_connections
        per_host = opts.max_connections_per_host or default_per_host(asap_limit)
        # A registrar has at most two connections with each peer; several may share a host.
        enrp_per_host = max(2, config.max_enrp_connections // 8)
        try:
            for endpoint in opts.asap:
                self.asap_addresses.extend(
                    await listen(
                        endpoint,
                        self._asap_handler,
                        asap_limit,
                        per_host,
                        ASAP_LIMITS,
                        ASAP_TCP_OPTIONS,
                    )
                )
            # Over SCTP our ENRP associations to peers leave from the ENRP port (as
            # rsplib's do): rsplib accepts a Presence only from the port it names.
            enrp = await listen(
                opts.enrp,
                self._enrp_handler,
                config.max_enrp_connections,
                enrp_per_host,
                ENRP_LIMITS,
                shared_port=self.transport_name == SCTP,
            )
            self.enrp_address = enrp[0]
        except BaseException:
            self._close_servers()
            raise

    def _open_multicast_senders(self) -> None:
        opts = self.options
        if opts.asap_announce is None and opts.enrp_announce is None:
            return
        if opts.announce_interface is None:
            raise ValueError("multicast announces need an explicit interface address")
        if opts.asap_announce is not None:
            # rsplib binds the announce socket to its ASAP port number so that receivers can
            # take the registrar's port from the datagram's source port (rsplib's announces
            # carry no transport parameter).
            bind_port = self.asap_addresses[0][1] if self.asap_addresses else 0
            try:
                self._asap_sender = MulticastSender(
                    opts.asap_announce.host,
                    opts.asap_announce.port,
                    opts.announce_interface,
                    ttl=opts.announce_ttl,
                    bind_port=bind_port,
                )
            except OSError as exc:
                log.warning(
                    "cannot bind the announce socket to UDP port %d (%s); "
                    "announcing from an ephemeral port",
                    bind_port,
                    exc,
                )
                self._asap_sender = MulticastSender(
                    opts.asap_announce.host,
                    opts.asap_announce.port,
                    opts.announce_interface,
                    ttl=opts.announce_ttl,
                )
        if opts.enrp_announce is not None:
            self._enrp_sender = MulticastSender(
                opts.enrp_announce.host,
                opts.enrp_announce.port,
                opts.announce_interface,
                ttl=opts.announce_ttl,
            )

    def _log_ready(self) -> None:
        asap = ", ".join(_format(a) for a in self.asap_addresses)
        enrp = _format(self.enrp_address) if self.enrp_address else "-"
        extras = []
        if self.options.asap_announce is not None:
            extras.append(f"announces to {self.options.asap_announce}")
        if self.options.enrp_announce is not None:
            extras.append(f"presence to {self.options.enrp_announce}")
        if self.options.announce_interface is not None and extras:
            extras.append(f"via {self.options.announce_interface}")
        log.info(
            "rsp-registrar 0x%08x ready: ASAP on %s (%s), ENRP on %s (%s)%s",
            self.server_id,
            asap,
            self.transport_name,
            enrp,
            self.transport_name,
            "; " + " ".join(extras) if extras else "",
        )

    # ------------------------------------------------------------------ connections

    def _new_conn(self, channel: MessageChannel) -> ConnId:
        conn = self._next_conn
        self._next_conn += 1
        self._channels[conn] = channel
        return conn

    async def _asap_handler(self, channel: MessageChannel) -> None:
        await self._core_created.wait()
        core = self._require_core()
        if self._stopped:
            channel.abort()
            return
        conn = self._new_conn(channel)
        peer = PeerAddress(*channel.peer_address[:2])
        core.asap_connection_opened(
            conn, peer, channel.transport_name, self._now(), _other_peer_hosts(channel)
        )
        self._drain()
        await self._read_loop(conn, channel, serve_only_readers=True)

    async def _enrp_handler(self, channel: MessageChannel) -> None:
        await self._core_created.wait()
        core = self._require_core()
        if self._stopped:
            channel.abort()
            return
        conn = self._new_conn(channel)
        peer = PeerAddress(*channel.peer_address[:2])
        local = PeerAddress(*channel.local_address[:2])
        core.enrp_connection_opened(conn, peer, self._now(), local=local)
        self._drain()
        await self._read_loop(conn, channel, serve_only_readers=False)

    async def _connect_peer(self, peer: PeerAddress) -> None:
        core = self._require_core()
        sctp = self.transport_name == SCTP and self.enrp_address is not None
        try:
            channel = await connect(
                peer.host,
                peer.port,
                transport=self.transport_name,
                heartbeat=self.options.heartbeat,
                timeout=self.options.connect_timeout,
                limits=ENRP_LIMITS,
                tls=self.options.tls,
                local_address=self.enrp_address if sctp else None,
                shared_port=sctp,
            )
        except (OSError, ChannelClosed, TimeoutError) as exc:
            if self._stopped:
                return
            log.debug("ENRP connection to %s failed: %s", peer, exc)
            core.peer_connect_failed(peer, self._now())
            self._drain()
            return
        if self._stopped:
            channel.abort()
            return
        conn = self._new_conn(channel)
        local = PeerAddress(*channel.local_address[:2])
        core.enrp_connection_opened(conn, peer, self._now(), outbound_to=peer, local=local)
        self._drain()
        await self._read_loop(conn, channel, serve_only_readers=False)

    async def _read_loop(
        self, conn: ConnId, channel: MessageChannel, *, serve_only_readers: bool
    ) -> None:
        """Feed the core every message of ``conn``. ``serve_only_readers``: a PE or PU that
        does not read its answers gets no further work (not for peers: they both send)."""
        core = self._require_core()
        handled = 0
        try:
            while True:
                ppid, data = await channel.receive()
                if conn not in self._channels:
                    return  # the core closed it meanwhile
                core.receive(conn, ppid, data, self._now())
                # Messages that arrived together are all handled before the actions run.
                self._drain_soon()
                handled += 1
                if handled % FAIR_SHARE == 0:
                    # receive() does not yield while messages are queued: one connection
                    # pipelining thousands of requests must not hold the loop for all of
                    # them. Its answers so far go out with this turn.
                    self._drain()
                    if serve_only_readers:
                        await channel.wait_writable()
                    await asyncio.sleep(0)
        except ChannelClosed as exc:
            if self._channels.pop(conn, None) is not None and not self._stopped:
                log.debug("connection %d closed: %s", conn, exc.reason)
                core.connection_lost(conn, self._now())
                self._drain()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never fatal: a bug triggered by one peer must not stop the registrar.
            log.exception("unexpected error on connection %d; closing it", conn)
            if self._channels.pop(conn, None) is not None:
                channel.abort()
                if not self._stopped:
                    core.connection_lost(conn, self._now())
                    self._drain()

    async def _multicast_receive_loop(self) -> None:
        opts = self.options
        assert opts.enrp_announce is not None and opts.announce_interface is not None
        core = self._require_core()
        receiver = await open_multicast_receiver(
            opts.enrp_announce.host, opts.enrp_announce.port, opts.announce_interface
        )
        try:
            async for data, (host, port) in receiver:
                if TRACER.on:
                    TRACER.message(
                        "rx", int(PPID.ENRP), data, (receiver.group, receiver.port), (host, port)
                    )
                try:
                    core.receive_multicast(
                        int(PPID.ENRP), data, PeerAddress(host, port), self._now()
                    )
                except Exception:
                    log.exception("unexpected error handling multicast from %s:%d", host, port)
                self._drain()
        finally:
            receiver.close()

    # ------------------------------------------------------------------ actions and timer

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _require_core(self) -> RegistrarCore:
        if self.core is None:
            raise RuntimeError("registrar core not started")
        return self.core

    def _drain(self) -> None:
        """Carry out everything the core asked for, then re-arm the timer."""
        core = self.core
        if core is None:
            return
        for action in core.pop_actions():
            self._perform(action)
        if not self._stopped:
            self._rearm(core.next_deadline())

    def _drain_soon(self) -> None:
        """Drain once at the next loop iteration instead of after every message.

        A pipelined burst then costs one ``pop_actions``/``next_deadline`` round; the
        actions still run in the core's order, and since the channels write out at the end
        of an iteration anyway, no answer leaves later than it would have.
        """
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            self._loop.call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self._drain()

    def _perform(self, action: Action) -> None:
        if isinstance(action, SendMessage):
            channel = self._channels.get(action.conn)
            if channel is None:
                return
            try:  # noqa: SIM105 - hot path; suppress() costs a context manager per message
                channel.send_nowait(action.ppid, action.data)
            except ChannelClosed:
                # The reader task sees the closure too and reports it to the core.
                pass
        elif isinstance(action, CloseConnection):
            channel = self._channels.pop(action.conn, None)
            if channel is not None:
                log.debug("closing connection %d: %s", action.conn, action.reason)
                if action.abort or self._tasks is None:
                    channel.abort()
                else:
                    # Not a cancellable background task: a close must run (it flushes what
                    # the core queued last, e.g. an error answer) and bounds its own time.
                    self._tasks.create_task(self._guard(channel.close()), name="rsp-close")
        elif isinstance(action, ConnectToPeer):
            if not self._stopped:
                self._spawn(self._connect_peer(action.peer), "rsp-connect")
        elif isinstance(action, SendAsapAnnounce):
            self._multicast(self._asap_sender, int(PPID.ASAP), action.data)
        elif isinstance(action, SendEnrpPresence):
            self._multicast(self._enrp_sender, int(PPID.ENRP), action.data)
        elif isinstance(action, LogEvent):
            log.log(action.level, "%s", action.message)

    def _multicast(self, sender: MulticastSender | None, ppid: int, data: bytes) -> None:
        if sender is None:
            return
        try:
            sender.send(data)
        except OSError as exc:
            log.debug("multicast send failed: %s", exc)
            return
        if TRACER.on:
            TRACER.message("tx", ppid, data, sender.local_address, (sender.group, sender.port))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._tasks is None:
            # Outside run() (cannot happen in normal use): nothing to attach it to.
            coro.close()
            return
        task = self._tasks.create_task(self._guard(coro), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _guard(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed")

    def _rearm(self, deadline: float | None) -> None:
        if self._timer is not None:
            self._timer.rearm(deadline)

    def _on_timer(self) -> None:
        core = self.core
        if core is None or self._stopped:
            return
        try:
            core.handle_timer(self._now())
        except Exception:
            log.exception("unexpected error in the registrar's timer handling")
        self._drain()

    # ------------------------------------------------------------------ status reports

    def _make_reporter(self) -> StatusReporter:
        assert self.options.csp_server is not None
        core = self._require_core()
        protocol = _IPPROTO_SCTP if self.transport_name == "sctp" else _IPPROTO_TCP
        addresses = " ".join(_format(a) for a in self.asap_addresses)

        def status() -> str:
            s = core.status()
            return (
                f"{s.pe_count}[{s.owned_pe_count}] PEs in {s.pool_count} Pool(s), "
                f"{len(s.peers)} Peer(s)"
            )

        def associations() -> list[CspAssociation]:
            return [
                CspAssociation(
                    receiver_id=component_id(ComponentGroup.REGISTRAR, peer.server_id),
                    duration_us=None,
                    ppid=int(PPID.ENRP),
                    protocol_id=protocol,
                )
                for peer in core.status().peers
                if peer.server_id != 0
            ]

        from rsplib.status import default_location

        location = f"{default_location()}: {addresses}"
        return StatusReporter(
            component_id(ComponentGroup.REGISTRAR, self.server_id),
            server=self.options.csp_server,
            interval=self.options.csp_interval,
            status=status,
            location=location,
            associations=associations,
        )

    # ------------------------------------------------------------------ shutdown

    async def _shutdown(self) -> None:
        log.info("registrar 0x%08x shutting down", self.server_id)
        core = self._require_core()
        try:
            core.shutdown(self._now())
        except Exception:
            log.exception("error in the core's shutdown")
        # Send what the core still wants sent (e.g. final messages), then stop.
        self._drain()
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for server in self._servers:
            server.close()
        channels = list(self._channels.values())
        self._channels.clear()
        if channels:
            closers = [asyncio.ensure_future(ch.close()) for ch in channels]
            _done, pending = await asyncio.wait(closers, timeout=1.0)
            for fut in pending:
                fut.cancel()
            for channel in channels:
                if not channel.closed:
                    channel.abort()
        if self._reporter is not None:
            await self._reporter.close()

    def _close_servers(self) -> None:
        for server in self._servers:
            with contextlib.suppress(Exception):
                server.close()
        self._servers.clear()

    def _close_everything(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for channel in self._channels.values():
            with contextlib.suppress(Exception):
                channel.abort()
        self._channels.clear()
        self._close_servers()
        for sender in (self._asap_sender, self._enrp_sender):
            if sender is not None:
                with contextlib.suppress(Exception):
                    sender.close()


__all__ = [
    "ASAP_ANNOUNCE_GROUP",
    "ENRP_ANNOUNCE_GROUP",
    "RegistrarService",
    "ServiceOptions",
]


def _other_peer_hosts(channel: MessageChannel) -> list[str]:
    """The further addresses of a multi-homed SCTP peer (the TCP mapping has none)."""
    primary = channel.peer_address[0]
    return [host for host, _port in channel.peer_addresses() if host != primary]
