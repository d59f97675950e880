"""Enhanced mode, pool-user side: the asyncio driver of :class:`PuSessionMachine`.

``PoolUserSession.connect(pool_handle, ...)`` resolves the pool handle,
connects to a pool element and then reads and writes like a socket; when the
pool element goes away the session fails over by itself. Every decision --
which PE, when to report one, what a closed connection after a Cookie Echo
means, when to give up -- is the machine's (:mod:`rsplib.session.pu_machine`);
this driver opens and closes connections, moves bytes, feeds the machine with
``now=loop.time()`` and keeps its timer armed.

Data and control share the connection: Cookies from the PE arrive with PPID 11
and are kept by the machine (only the newest); everything else is application
data. Data that was in flight to a PE when it failed is lost; the cookie is
the application's recovery point. A write whose send fails is repeated on the
new PE after the failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from rsplib.asap.actions import Event as AsapEvent
from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, AsapService, RegistrarAddress
from rsplib.core_actions import CloseConnection, LogEvent, SendMessage
from rsplib.core_driver import ActionPump, DeadlineTimer
from rsplib.errors import (
    FailoverError,
    NoPoolElementError,
    NoRegistrarError,
    RserPoolError,
    SessionClosed,
    TransportError,
    TransportUnavailable,
)
from rsplib.session.control import DataMessage, PoolElementIdentity, check_data_ppid
from rsplib.session.pu_machine import (
    Action,
    ConnectFailure,
    DataReceived,
    Event,
    LostReason,
    OpenConnection,
    PuSessionMachine,
    PuState,
    SessionConfig,
    SessionEvent,
    SessionLost,
    describe,
)
from rsplib.session.reporting import (
    ComponentReporter,
    CspOptions,
    registrar_association,
    session_association,
)
from rsplib.transport import (
    AUTO,
    SCTP,
    TCP_MAPPING,
    ChannelClosed,
    HeartbeatConfig,
    MessageChannel,
    TlsConfig,
    connect,
)
from rsplib.wire.constants import PPID
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id
from rsplib.wire.params import SctpTransport, TcpTransport

log = logging.getLogger("rsplib.session")

#: Session heartbeats by default: a stopped PE is noticed within 3 s.
DEFAULT_SESSION_HEARTBEAT = HeartbeatConfig(interval=1.0, misses=3)
#: Application messages waiting for ``read``; the reader stops reading the connection
#: beyond this, so a slow application slows the PE down instead of filling memory.
_RECEIVE_QUEUE = 256
_EVENT_QUEUE_SIZE = 1024

EventCallback = Callable[[SessionEvent], None]


class PoolUserSession:
    """A session with "some PE of the pool" (create it with :meth:`connect`)."""

    def __init__(
        self,
        pool_handle: bytes | str,
        *,
        asap: AsapService,
        own_asap: bool = False,
        heartbeat: HeartbeatConfig = DEFAULT_SESSION_HEARTBEAT,
        connect_timeout: float = 5.0,
        ppid: int = int(PPID.DATA),
        config: SessionConfig | None = None,
        on_event: EventCallback | None = None,
        csp: CspOptions | None = None,
        identifier: int | None = None,
    ) -> None:
        self.pool_handle = pool_handle.encode() if isinstance(pool_handle, str) else pool_handle
        self.asap = asap
        self._own_asap = own_asap
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.ppid = check_data_ppid(ppid)
        self._on_event = on_event
        self._csp = csp
        self.identifier = identifier or random.getrandbits(56) or 1
        self._machine = PuSessionMachine(self.pool_handle, asap.client, config)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._pump: ActionPump[Action] = ActionPump(
            self._machine.pop_actions, self._perform, self._machine.next_deadline, self._timer
        )
        self._channels: dict[int, MessageChannel] = {}
        self._connected_at = 0.0
        self._changed = asyncio.Event()  # set whenever the machine's state may have moved
        self._rx: deque[DataMessage] = deque()
        self._rx_ready = asyncio.Event()
        self._rx_space = asyncio.Event()
        self._rx_space.set()
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue(_EVENT_QUEUE_SIZE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lost: SessionLost | None = None
        self._closing = False
        self._reporter: ComponentReporter | None = None
        self._remove_listener = asap.add_listener(self._on_asap_event)
        self.last_ppid_sent = self.ppid

    # ------------------------------------------------------------------ creation

    @classmethod
    async def connect(
        cls,
        pool_handle: bytes | str,
        *,
        asap: AsapService | None = None,
        registrars: Sequence[RegistrarAddress] = (),
        announce: AnnounceOptions | None = None,
        asap_config: AsapConfig | None = None,
        transport: str = AUTO,
        heartbeat: HeartbeatConfig = DEFAULT_SESSION_HEARTBEAT,
        connect_timeout: float = 5.0,
        timeout: float | None = None,
        ppid: int = int(PPID.DATA),
        config: SessionConfig | None = None,
        on_event: EventCallback | None = None,
        csp: CspOptions | None = None,
        identifier: int | None = None,
        tls: TlsConfig | None = None,
    ) -> PoolUserSession:
        """Resolve ``pool_handle`` and connect to one of its PEs.

        Without ``asap`` the session runs (and later closes) its own ASAP service from
        ``registrars`` / ``announce`` / ``asap_config``. ``timeout`` (seconds) is how long
        to keep trying when the pool has no reachable PE (None: one round of attempts);
        then :class:`NoPoolElementError`. :class:`NoRegistrarError` comes as soon as the
        registrar hunt gives up.
        """
        own = asap is None
        service = asap or AsapService(
            asap_config, registrars=registrars, announce=announce, transport=transport, tls=tls
        )
        await service.start()
        session = cls(
            pool_handle,
            asap=service,
            own_asap=own,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            ppid=ppid,
            config=config,
            on_event=on_event,
            csp=csp,
            identifier=identifier,
        )
        try:
            await session._open(timeout)
        except BaseException:
            await session.close()
            raise
        return session

    async def _open(self, timeout: float | None) -> None:
        self._machine.open(self._now(), timeout)
        self._fed()
        while self._machine.state is not PuState.CONNECTED:
            if self._lost is not None:
                raise self._error_for(self._lost)
            await self._wait_change()
        if self._csp is not None:
            self._reporter = ComponentReporter(
                component_id(ComponentGroup.POOL_USER, self.identifier),
                self._csp,
                status=self.status_text,
                associations=self.csp_associations,
            )
            self._reporter.start()

    # ------------------------------------------------------------------ properties

    @property
    def pool_element(self) -> PoolElementIdentity | None:
        """The PE the session currently uses (None while failing over)."""
        return self._machine.pool_element

    @property
    def cookie(self) -> bytes | None:
        """The newest cookie received from a PE."""
        return self._machine.cookie

    def forget_cookie(self) -> None:
        """Connect the next PE without a Cookie Echo (the application restarts the work)."""
        self._machine.forget_cookie()

    @property
    def state(self) -> PuState:
        return self._machine.state

    @property
    def failovers(self) -> int:
        """Completed failovers."""
        return self._machine.failovers

    @property
    def closed(self) -> bool:
        return self._closing

    # ------------------------------------------------------------------ data

    async def read(self) -> bytes:
        """Next application message's bytes (waits across failovers); ``b""`` after close."""
        try:
            return (await self.read_message()).data
        except SessionClosed:
            return b""

    async def read_message(self) -> DataMessage:
        """Next application message with its PPID.

        Raises :class:`SessionClosed` after :meth:`close` and :class:`FailoverError` if a
        failover gave up.
        """
        while not self._rx:
            self._raise_if_over()
            self._rx_ready.clear()
            await self._rx_ready.wait()
        message = self._rx.popleft()
        if len(self._rx) < _RECEIVE_QUEUE:
            self._rx_space.set()
        return message

    async def write(self, data: bytes, ppid: int | None = None) -> None:
        """Send one application message; a failed send fails over and is repeated."""
        ppid = self.ppid if ppid is None else check_data_ppid(ppid)
        payload = bytes(data)
        while True:
            conn, channel = await self._usable_channel()
            try:
                await channel.send(ppid, payload)
            except ChannelClosed as exc:
                self._machine.send_failed(conn, exc.kind, self._now())
                self._fed()
                continue
            self.last_ppid_sent = ppid
            return

    async def failover(self, *, report_unreachable: bool = False) -> None:
        """Leave the current PE for another one (rsplib ``rsp_forcefailover``).

        ``report_unreachable`` also reports the current PE to the registrar.
        Returns once the session is usable again.
        """
        self._raise_if_over()
        self._machine.request_failover(self._now(), report=report_unreachable)
        self._fed()
        await self._usable_channel()

    # ------------------------------------------------------------------ events

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Session events as they happen; ends when the session closes."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # further iterators end too
                return
            yield event

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """End the session (the PE sees EOF) and stop an ASAP service it owns."""
        if self._closing:
            return
        self._closing = True
        if self._machine.is_open:
            self._machine.close(self._now())
            self._fed()
        self._timer.cancel()
        self._remove_listener()
        self._wake_all()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and not task.get_name().startswith("rsp-session-close"):
                task.cancel()
        others = [t for t in self._tasks if t is not current]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        for channel in self._channels.values():
            channel.abort()
        self._channels.clear()
        _put_latest(self._events, None)
        if self._reporter is not None:
            await self._reporter.stop(final=True)
        if self._own_asap:
            await self.asap.close()

    async def __aenter__(self) -> PoolUserSession:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ status

    def status_text(self) -> str:
        pe = self.pool_element
        if pe is None:
            return "Failing over" if self._machine.failing_over else "Connecting"
        return f"Connected to PE ${pe.identifier:08x}"

    def csp_associations(self) -> list[CspAssociation]:
        entries = registrar_association(self.asap)
        pe = self.pool_element
        if pe is not None:
            transport = SCTP if isinstance(pe.transport, SctpTransport) else TCP_MAPPING
            entries.append(
                session_association(
                    pe.identifier,
                    self._now() - self._connected_at,
                    self.last_ppid_sent,
                    transport,
                )
            )
        return entries

    # ------------------------------------------------------------------ driving the machine

    def _now(self) -> float:
        return self._loop.time()

    def _fed(self) -> None:
        """After every input: carry out the machine's actions, and have the ASAP service
        send what the machine asked of the ASAP core (resolutions, reports)."""
        self._pump.pump()
        self.asap.drain_soon()

    def _on_timer(self) -> None:
        if not self._closing:
            self._machine.handle_timer(self._now())
            self._fed()

    def _on_asap_event(self, event: AsapEvent) -> None:
        if not self._closing:
            self._machine.asap_event(event, self._now())
            self._fed()

    def _perform(self, action: Action) -> None:
        if isinstance(action, OpenConnection):
            self._spawn(self._open_connection(action), "rsp-session-connect")
        elif isinstance(action, SendMessage):
            channel = self._channels.get(action.conn)
            if channel is not None:
                try:
                    channel.send_nowait(action.ppid, action.data)
                except ChannelClosed as exc:
                    self._machine.send_failed(action.conn, exc.kind, self._now())
        elif isinstance(action, CloseConnection):
            channel = self._channels.pop(action.conn, None)
            if channel is not None:
                if action.abort:
                    channel.abort()
                else:
                    self._spawn(channel.close(), "rsp-session-close")
        elif isinstance(action, LogEvent):
            log.log(action.level, "%s", action.message)
        else:
            self._deliver(action)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, DataReceived):
            self._rx.append(event.message)
            self._rx_ready.set()
            if len(self._rx) >= _RECEIVE_QUEUE:
                self._rx_space.clear()
            return
        pool = self.pool_handle.decode(errors="replace")
        log.info("pool %r: %s", pool, describe(event))
        if isinstance(event, SessionLost):
            self._lost = event
            if event.reason is LostReason.FAILOVER_TIMEOUT:
                log.error("pool %r: %s", pool, event.detail)
        self._wake_all()
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("session event callback failed")
        _put_latest(self._events, event)

    async def _open_connection(self, action: OpenConnection) -> None:
        conn, pe = action.conn, action.pe
        channel, failure = await self._connect_to(pe)
        if channel is None:
            if not self._closing:
                log.info("cannot reach %s (%s)", pe, failure.value)
                self._machine.connect_failed(conn, failure, self._now())
                self._fed()
            return
        if self._closing or not self._machine.owns(conn):
            channel.abort()  # the session moved on while we connected
            return
        self._channels[conn] = channel
        self._connected_at = self._now()
        self._machine.connected(conn, self._now())
        self._fed()
        if self._channels.get(conn) is channel:
            await self._read(conn, channel)

    async def _connect_to(
        self, pe: PoolElementIdentity
    ) -> tuple[MessageChannel | None, ConnectFailure]:
        if isinstance(pe.transport, TcpTransport):
            kind = TCP_MAPPING
        elif isinstance(pe.transport, SctpTransport):
            kind = SCTP
        else:
            return None, ConnectFailure.UNSUPPORTED
        failure = ConnectFailure.UNREACHABLE
        for address in pe.addresses or ("127.0.0.1",):
            try:
                channel = await connect(
                    address,
                    pe.port,
                    transport=kind,
                    heartbeat=self.heartbeat,
                    timeout=self.connect_timeout,
                    tls=self.asap.tls,
                )
            except TransportUnavailable:
                failure = ConnectFailure.UNSUPPORTED
            except ConnectionRefusedError:
                failure = ConnectFailure.REFUSED
            except TimeoutError:
                failure = ConnectFailure.TIMEOUT
            except (OSError, TransportError):
                failure = ConnectFailure.UNREACHABLE
            else:
                return channel, failure
        return None, failure

    async def _read(self, conn: int, channel: MessageChannel) -> None:
        try:
            while True:
                if not self._rx_space.is_set():
                    await self._rx_space.wait()
                ppid, payload = await channel.receive()
                self._machine.received(conn, ppid, payload, self._now())
                self._fed()
        except ChannelClosed as exc:
            if self._channels.get(conn) is channel:
                del self._channels[conn]
            if not self._closing:
                self._machine.connection_lost(conn, exc.kind, self._now())
                self._fed()

    async def _usable_channel(self) -> tuple[int, MessageChannel]:
        while True:
            self._raise_if_over()
            conn = self._machine.current_connection
            if conn is not None:
                channel = self._channels.get(conn)
                if channel is not None:
                    return conn, channel
            await self._wait_change()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _wake_all(self) -> None:
        self._changed.set()
        self._rx_ready.set()
        self._rx_space.set()

    def _raise_if_over(self) -> None:
        if self._lost is not None and self._lost.reason is not LostReason.CLOSED:
            raise self._error_for(self._lost)
        if self._closing or self._lost is not None:
            raise SessionClosed("session closed")

    def _error_for(self, lost: SessionLost) -> RserPoolError:
        if lost.reason is LostReason.NO_REGISTRAR:
            return NoRegistrarError(lost.detail)
        if lost.reason is LostReason.NO_POOL_ELEMENT:
            return NoPoolElementError(lost.detail)
        if lost.reason is LostReason.FAILOVER_TIMEOUT:
            return FailoverError(f"failover gave up: {lost.detail}")
        return SessionClosed(lost.detail)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = self._loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _put_latest(queue: asyncio.Queue[Any], item: object) -> None:
    """Queue ``item``, dropping the oldest entry if the queue is full (events)."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)


__all__ = [
    "DEFAULT_SESSION_HEARTBEAT",
    "EventCallback",
    "PoolUserSession",
    "SessionEvent",
]
