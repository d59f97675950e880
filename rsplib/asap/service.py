"""The asyncio driver of :class:`~rsplib.asap.client.AsapClient`.

The service is thin on purpose: it opens registrar connections through
:mod:`rsplib.transport`, feeds every received message, connection event and
Server Announce into the core with ``now=loop.time()``, carries out the
core's actions in order and keeps one timer armed at the core's next
deadline. Events come out as awaited results (registration, resolution,
deregistration) and as callbacks for whoever listens.

One service per process (or component) is the intended use: pool elements
and pool users of that process share its home-registrar connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rsplib.addressing import PeerAddress
from rsplib.asap.actions import (
    Action,
    AsapErrorReceived,
    CloseConnection,
    ConnectToRegistrar,
    ConnId,
    Deregistered,
    Event,
    HomeRegistrarChanged,
    LogEvent,
    NoRegistrar,
    RegistrationFailed,
    RegistrationSucceeded,
    RequestTimedOut,
    ResolutionResult,
    SendMessage,
)
from rsplib.asap.client import AsapClient
from rsplib.asap.config import TRANSPORT_SCTP, TRANSPORT_TCP_MAPPING, AsapConfig
from rsplib.core_driver import ActionPump, DeadlineTimer, Listeners
from rsplib.errors import (
    NoRegistrarError,
    RegistrationError,
    RequestTimeoutError,
    ResolutionError,
    RserPoolError,
    TimeoutReason,
)
from rsplib.trace.tracer import TRACER
from rsplib.transport import (
    AUTO,
    ChannelClosed,
    HeartbeatConfig,
    MessageChannel,
    MulticastReceiver,
    TlsConfig,
    TransportError,
    choose_transport,
    connect,
    open_multicast_receiver,
)
from rsplib.wire.constants import PPID, ErrorCause, cause_name
from rsplib.wire.params import PolicyParam, PoolElementParam, Transport

log = logging.getLogger("rsplib.asap")

#: rsplib's Server Announce group and port (docs/protocol-notes.md#ports).
ANNOUNCE_GROUP = "239.0.0.50"
ANNOUNCE_PORT = 3863

EventListener = Callable[[Event], None]


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class AnnounceOptions:
    """Listen for Server Announces on ``group:port`` via the interface with ``interface``.

    The interface is required: multicast without an explicit interface leaves
    the machine by the default route (see rsplib.transport.multicast).
    """

    interface: str
    group: str = ANNOUNCE_GROUP
    port: int = ANNOUNCE_PORT


def parse_registrar(text: str) -> PeerAddress:
    """``ADDR:PORT`` (IPv6 as ``[ADDR]:PORT``) -> PeerAddress; ValueError if malformed."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected ADDR:PORT, got {text!r}")
    port = int(port_text)
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port out of range in {text!r}")
    return PeerAddress(host.strip("[]"), port)


def _as_peer(address: PeerAddress | tuple[str, int] | str) -> PeerAddress:
    if isinstance(address, PeerAddress):
        return address
    if isinstance(address, str):
        return parse_registrar(address)
    return PeerAddress(address[0], int(address[1]))


RegistrarAddress = PeerAddress | tuple[str, int] | str


# --------------------------------------------------------------------------- the service


class AsapService:
    """Registrar hunt, registrations and resolutions of one process, on asyncio.

    Use ``async with AsapService(...) as asap:`` or :meth:`start` / :meth:`close`.
    ``transport`` is "auto" (kernel SCTP when available, else the TCP mapping),
    "sctp" or "tcp-mapping".
    """

    def __init__(
        self,
        config: AsapConfig | None = None,
        *,
        registrars: Sequence[RegistrarAddress] = (),
        announce: AnnounceOptions | None = None,
        transport: str = AUTO,
        heartbeat: HeartbeatConfig | None = None,
        rng: random.Random | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        #: TLS for every connection of this process's ASAP users (None: plain TCP mapping).
        self.tls = tls
        self._requested_transport = transport
        self.transport = ""
        self._base_config = config or AsapConfig()
        self.config = self._base_config
        self._registrars = [_as_peer(a) for a in registrars]
        self._announce = announce
        self._heartbeat = heartbeat or HeartbeatConfig()
        self._rng = rng or random.Random()
        self._client: AsapClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channels: dict[ConnId, MessageChannel] = {}
        self._connected_at: dict[ConnId, float] = {}
        self._next_conn: ConnId = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: DeadlineTimer | None = None
        self._pump: ActionPump[Action] | None = None
        self._drain_scheduled = False
        self._receiver: MulticastReceiver | None = None
        self._resolutions: dict[int, asyncio.Future[tuple[PoolElementParam, ...]]] = {}
        self._registration_waiters: list[tuple[tuple[bytes, int], asyncio.Future[None]]] = []
        self._deregistration_waiters: list[tuple[tuple[bytes, int], asyncio.Future[None]]] = []
        self._registered: set[tuple[bytes, int]] = set()
        self._listeners: Listeners[Event] = Listeners("ASAP event")
        self._last_no_registrar = ""
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._client is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.transport = choose_transport(self._requested_transport)
        kind = TRANSPORT_SCTP if self.transport == "sctp" else TRANSPORT_TCP_MAPPING
        if kind != self._base_config.transport:
            self.config = replace(self._base_config, transport=kind)
        self._client = AsapClient(self.config, self._rng, loop.time())
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._pump = ActionPump(
            self._client.pop_actions, self._perform, self._client.next_deadline, self._timer
        )
        for address in self._registrars:
            self._client.add_static_registrar(address)
        if self._announce is not None:
            opts = self._announce
            self._receiver = await open_multicast_receiver(opts.group, opts.port, opts.interface)
            self._spawn(self._announce_loop(self._receiver), "rsp-asap-announces")
        self._drain()

    async def close(self) -> None:
        """Close every registrar connection and stop; pending requests fail."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._receiver is not None:
            self._receiver.close()
        channels = list(self._channels.values())
        self._channels.clear()
        if channels:
            # Closing (not aborting) lets queued messages such as a last Endpoint
            # Unreachable or Deregistration reach the registrar.
            closers = {asyncio.ensure_future(channel.close()): channel for channel in channels}
            _done, pending = await asyncio.wait(closers, timeout=1.0)
            for closer in pending:
                closer.cancel()
                closers[closer].abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        error = RserPoolError("the ASAP service was closed")
        for resolution in self._resolutions.values():
            if not resolution.done():
                resolution.set_exception(error)
        for _key, waiter in self._registration_waiters + self._deregistration_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._resolutions.clear()
        self._registration_waiters.clear()
        self._deregistration_waiters.clear()

    async def __aenter__(self) -> AsapService:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def client(self) -> AsapClient:
        """The sans-IO core (read-only use: home registrar, cache, registrar table)."""
        if self._client is None:
            raise RuntimeError("AsapService not started")
        return self._client

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener(event)`` for every core event; returns a function that removes it."""
        return self._listeners.add(listener)

    def drain_soon(self) -> None:
        """Carry out the core's actions in the next loop iteration.

        For layers that call the core directly (the pool-user session machine asks it
        for resolutions): the answers then come through the listeners, never inside the
        call that made the request.
        """
        if not self._drain_scheduled and self._loop is not None and not self._closed:
            self._drain_scheduled = True
            self._loop.call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self._drain_scheduled = False
        self._drain()

    def add_registrar(self, address: RegistrarAddress) -> None:
        self.client.add_static_registrar(_as_peer(address))
        self._drain()

    def registrar_link(self) -> tuple[int, float] | None:
        """(server id or 0, seconds connected) of the home registrar connection, if any."""
        client = self._client
        if client is None or self._loop is None:
            return None
        home = client.home_registrar
        conn = client.home_connection
        if home is None or conn is None:
            return None
        since = self._connected_at.get(conn, self._loop.time())
        return home[1], self._loop.time() - since

    # ------------------------------------------------------------------ PE API

    def register(
        self,
        pool_handle: bytes,
        user_transport: Transport,
        policy: PolicyParam,
        identifier: int | None = None,
    ) -> int:
        """Start keeping a PE registered; returns its identifier (see :meth:`wait_registered`)."""
        client = self._require_running()
        identifier = client.register(pool_handle, identifier, user_transport, policy, self._now())
        self._drain()
        return identifier

    async def wait_registered(
        self, pool_handle: bytes, identifier: int, timeout: float | None = None
    ) -> None:
        """Wait until the registrar confirmed the PE.

        Raises :class:`RegistrationError` if refused, :class:`NoRegistrarError` if a hunt
        for a registrar failed meanwhile, ``TimeoutError`` after ``timeout`` seconds.
        """
        key = (bytes(pool_handle), identifier)
        if key in self._registered:
            return
        fut = self._require_loop().create_future()
        entry = (key, fut)
        self._registration_waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._registration_waiters.remove(entry)

    def is_registered(self, pool_handle: bytes, identifier: int) -> bool:
        return (bytes(pool_handle), identifier) in self._registered

    def update_policy(self, pool_handle: bytes, identifier: int, policy: PolicyParam) -> None:
        """New policy information (e.g. load): re-registers at once if it changed."""
        self._require_running().update_policy(pool_handle, identifier, policy, self._now())
        self._drain()

    async def deregister(
        self, pool_handle: bytes, identifier: int, timeout: float | None = None
    ) -> None:
        """Deregister a PE and wait for the answer (errors are logged, not raised).

        Without a registrar connection this waits for the hunt; ``timeout`` bounds it.
        """
        client = self._require_running()
        key = (bytes(pool_handle), identifier)
        self._registered.discard(key)
        fut = self._require_loop().create_future()
        entry = (key, fut)
        self._deregistration_waiters.append(entry)
        client.deregister(key[0], identifier, self._now())
        self._drain()
        try:
            await asyncio.wait_for(fut, timeout)
        except (TimeoutError, RserPoolError) as exc:
            log.info("deregistration of PE 0x%08x not confirmed: %s", identifier, exc)
        finally:
            with contextlib.suppress(ValueError):
                self._deregistration_waiters.remove(entry)

    # ------------------------------------------------------------------ PU API

    async def resolve(self, pool_handle: bytes, items: int = 0) -> tuple[PoolElementParam, ...]:
        """PEs of a pool (possibly none); the PU cache answers first if enabled.

        ``items`` 0 asks for the registrar's default. Raises :class:`NoRegistrarError`,
        :class:`RequestTimeoutError` or :class:`ResolutionError`; an unknown pool handle
        is an empty answer, not an error.
        """
        client = self._require_running()
        fut: asyncio.Future[tuple[PoolElementParam, ...]] = self._require_loop().create_future()
        request_id = client.resolve(bytes(pool_handle), items, self._now())
        self._resolutions[request_id] = fut
        self._drain()
        try:
            return await fut
        finally:
            self._resolutions.pop(request_id, None)

    def report_unreachable(self, pool_handle: bytes, identifier: int) -> None:
        """Tell the registrar a PE failed (Endpoint Unreachable); drops it from the cache."""
        self._require_running().report_unreachable(bytes(pool_handle), identifier, self._now())
        self._drain()

    async def flush(self, timeout: float = 1.0) -> bool:
        """Wait until no request waits for a connection or an answer; False on timeout."""
        loop = self._require_loop()
        deadline = loop.time() + timeout
        while self._client is not None and self._client.pending_requests():
            if self._closed or loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # ------------------------------------------------------------------ internals

    def _require_running(self) -> AsapClient:
        if self._closed:
            raise RserPoolError("the ASAP service is closed")
        return self.client

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("AsapService not started")
        return self._loop

    def _now(self) -> float:
        return self._require_loop().time()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = self._require_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ASAP service task %s failed", task.get_name(), exc_info=task.exception())

    def _drain(self) -> None:
        """Carry out the core's actions, then re-arm the timer."""
        if self._pump is not None and not self._closed:
            self._pump.pump()

    def _perform(self, action: Action) -> None:
        if isinstance(action, SendMessage):
            channel = self._channels.get(action.conn)
            if channel is not None:
                # A failed send shows up as ChannelClosed in the reader, which tells the core.
                with contextlib.suppress(ChannelClosed):
                    channel.send_nowait(action.ppid, action.data)
        elif isinstance(action, ConnectToRegistrar):
            for address in action.addresses:
                self._spawn(self._connect(address), f"rsp-asap-connect-{address}")
        elif isinstance(action, CloseConnection):
            channel = self._channels.pop(action.conn, None)
            self._connected_at.pop(action.conn, None)
            if channel is not None:
                log.debug("closing registrar connection %d: %s", action.conn, action.reason)
                channel.abort()
        elif isinstance(action, LogEvent):
            log.log(action.level, "%s", action.message)
        else:
            self._dispatch(action)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, ResolutionResult):
            fut = self._resolutions.get(event.request_id)
            if fut is not None and not fut.done():
                if event.error is None or event.error == ErrorCause.UNKNOWN_POOL_HANDLE:
                    fut.set_result(event.pool_elements)
                else:
                    fut.set_exception(
                        ResolutionError(
                            f"handle resolution for {event.pool_handle!r} failed: "
                            f"{cause_name(event.error)}",
                            event.error,
                        )
                    )
        elif isinstance(event, RequestTimedOut):
            fut = self._resolutions.get(event.request_id)
            if fut is not None and not fut.done():
                fut.set_exception(self._timeout_error(event))
        elif isinstance(event, RegistrationSucceeded):
            key = (event.pool_handle, event.identifier)
            self._registered.add(key)
            self._settle(self._registration_waiters, key, None)
        elif isinstance(event, RegistrationFailed):
            key = (event.pool_handle, event.identifier)
            self._registered.discard(key)
            error = RegistrationError(
                f"registration of PE 0x{event.identifier:08x} in pool {event.pool_handle!r} "
                f"refused: {event.text}",
                event.cause,
            )
            self._settle(self._registration_waiters, key, error)
        elif isinstance(event, Deregistered):
            key = (event.pool_handle, event.identifier)
            failure = None if event.error is None else RserPoolError(event.error)
            self._settle(self._deregistration_waiters, key, failure)
        elif isinstance(event, NoRegistrar):
            self._last_no_registrar = event.reason
            no_registrar = NoRegistrarError(event.reason)
            for _key, waiter in list(self._registration_waiters):
                if not waiter.done():
                    waiter.set_exception(no_registrar)
        elif isinstance(event, HomeRegistrarChanged):
            if event.address is not None:
                log.debug(
                    "home registrar %s (0x%08x): %s",
                    event.address,
                    event.new_registrar_id,
                    event.reason,
                )
        elif isinstance(event, AsapErrorReceived):
            pass  # the core has logged it
        self._listeners.emit(event)

    def _timeout_error(self, event: RequestTimedOut) -> RserPoolError:
        if event.reason is TimeoutReason.NO_REGISTRAR:
            return NoRegistrarError(self._last_no_registrar or event.what)
        return RequestTimeoutError(event.what)

    @staticmethod
    def _settle(
        waiters: list[tuple[tuple[bytes, int], asyncio.Future[None]]],
        key: tuple[bytes, int],
        error: Exception | None,
    ) -> None:
        for waiter_key, fut in list(waiters):
            if waiter_key == key and not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

    def _on_timer(self) -> None:
        if self._client is None or self._closed:
            return
        try:
            self._client.handle_timer(self._now())
        except Exception:
            log.exception("error in the ASAP client's timer handling")
        self._drain()

    async def _connect(self, address: PeerAddress) -> None:
        client = self.client
        try:
            channel = await connect(
                address.host,
                address.port,
                transport=self.transport,
                heartbeat=self._heartbeat,
                timeout=self.config.registrar_connect_timeout,
                tls=self.tls,
            )
        except (OSError, TransportError) as exc:
            log.debug("registrar %s: connect failed: %s", address, exc)
            if not self._closed:
                client.connect_failed(address, self._now())
                self._drain()
            return
        if self._closed:
            channel.abort()
            return
        conn = self._next_conn
        self._next_conn += 1
        self._channels[conn] = channel
        self._connected_at[conn] = self._now()
        client.connected(conn, address, self._now())
        self._drain()
        if conn in self._channels:
            await self._read(conn, channel)

    async def _read(self, conn: ConnId, channel: MessageChannel) -> None:
        client = self.client
        try:
            while True:
                ppid, data = await channel.receive()
                if self._channels.get(conn) is not channel:
                    return
                client.receive(conn, ppid, data, self._now())
                self._drain()
        except ChannelClosed as exc:
            if self._channels.pop(conn, None) is not None and not self._closed:
                self._connected_at.pop(conn, None)
                log.debug("registrar connection %d closed: %s", conn, exc.reason)
                client.connection_lost(conn, self._now())
                self._drain()

    async def _announce_loop(self, receiver: MulticastReceiver) -> None:
        client = self.client
        async for data, source in receiver:
            if self._closed:
                return
            if TRACER.on:
                TRACER.message("rx", int(PPID.ASAP), data, (receiver.group, receiver.port), source)
            client.receive_announce(data, PeerAddress(source[0], source[1]), self._now())
            self._drain()


__all__ = [
    "ANNOUNCE_GROUP",
    "ANNOUNCE_PORT",
    "AnnounceOptions",
    "AsapService",
    "parse_registrar",
]
