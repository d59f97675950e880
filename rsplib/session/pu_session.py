"""Enhanced mode, pool-user side: a session to a pool that fails over by itself.

``PoolUserSession.connect(pool_handle, ...)`` resolves the pool handle,
connects to a pool element and then reads and writes like a socket. When the
pool element goes away -- EOF, reset, heartbeat timeout of the session
channel, a failed send -- or when the application calls :meth:`failover`, the
session runs the sequence of protocol-facts 8.1:

1. the application is told (:class:`FailoverStarted`);
2. the old PE is reported to the registrar (Endpoint Unreachable) only if a
   send to it failed (a silent or closed PE is not reported, trap 23);
3. the old connection is aborted;
4. another PE is picked -- from the PU cache if it is enabled, else from the
   registrar; the failed PE is skipped while others exist;
5. a connection to it is opened; a PE that cannot be reached is reported and
   the next one tried (after ``retry_delay`` when no PE is left);
6. if the session holds a cookie, it is sent as a Cookie Echo, the very first
   message on the new connection (trap 22);
7. the application is told (:class:`FailoverCompleted`, with the old and new
   PE and whether a cookie was echoed).

Data and control share the connection: Cookies from the PE arrive with PPID
11 and are kept (only the newest); everything else is application data.
Data that was in flight to a PE when it failed is lost; the cookie is the
application's recovery point. A write whose send fails is repeated on the
new PE after the failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import (
    AnnounceOptions,
    AsapService,
    NoRegistrarError,
    RegistrarAddress,
    RserPoolError,
)
from rsplib.session.control import (
    DataMessage,
    PoolElementIdentity,
    PuInput,
    PuSessionControl,
    PuState,
    PuVerdict,
    SessionProtocolError,
    check_data_ppid,
    choose_pool_element,
    classify,
    encode_cookie_echo,
)
from rsplib.session.pe_server import SessionClosed
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
    TransportError,
    connect,
)
from rsplib.wire.asap import Cookie, CookieEcho
from rsplib.wire.constants import PPID
from rsplib.wire.csp import ComponentGroup, CspAssociation, component_id
from rsplib.wire.params import SctpTransport, TcpTransport

log = logging.getLogger("rsplib.session")

#: Session heartbeats by default: a stopped PE is noticed within 3 s.
DEFAULT_SESSION_HEARTBEAT = HeartbeatConfig(interval=1.0, misses=3)
_EVENT_QUEUE_SIZE = 1024


class NoPoolElementError(RserPoolError):
    """The pool has no reachable pool element (within the given time)."""


class FailoverError(RserPoolError):
    """The session could not find a new pool element within ``failover_timeout``."""


@dataclass(frozen=True, slots=True)
class FailoverStarted:
    """The session lost (or left) ``old_pe`` and looks for another one."""

    old_pe: PoolElementIdentity | None
    reason: str


@dataclass(frozen=True, slots=True)
class FailoverCompleted:
    """The session continues on ``new_pe``; ``had_cookie``: a Cookie Echo went first."""

    old_pe: PoolElementIdentity | None
    new_pe: PoolElementIdentity
    had_cookie: bool


SessionEvent = FailoverStarted | FailoverCompleted
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
        items: int = 3,
        retry_delay: float = 0.25,
        failover_timeout: float | None = None,
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
        self.items = max(1, items)
        self.retry_delay = retry_delay
        self.failover_timeout = failover_timeout
        self._on_event = on_event
        self._csp = csp
        self.identifier = identifier or random.getrandbits(56) or 1
        self._control = PuSessionControl()
        self._channel: MessageChannel | None = None
        self._generation = 0
        self._pe: PoolElementIdentity | None = None
        self._connected_at = 0.0
        self._ready = asyncio.Event()
        self._rx: asyncio.Queue[DataMessage | None] = asyncio.Queue(maxsize=256)
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue(_EVENT_QUEUE_SIZE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: RserPoolError | None = None
        self._closing = False
        self._reporter: ComponentReporter | None = None
        #: Completed failovers.
        self.failovers = 0
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
        items: int = 3,
        retry_delay: float = 0.25,
        failover_timeout: float | None = None,
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
        session = cls(
            pool_handle,
            asap=service,
            own_asap=own,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            ppid=ppid,
            items=items,
            retry_delay=retry_delay,
            failover_timeout=failover_timeout,
            on_event=on_event,
            csp=csp,
            identifier=identifier,
        )
        try:
            await service.start()
            await session._open(timeout)
        except BaseException:
            await session.close()
            raise
        return session

    async def _open(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or 0.0)
        await self._establish(set(), deadline, initial=True)
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
        return self._pe if self._ready.is_set() else None

    @property
    def cookie(self) -> bytes | None:
        """The newest cookie received from a PE."""
        return self._control.cookie

    def forget_cookie(self) -> None:
        """Connect the next PE without a Cookie Echo (the application restarts the work)."""
        self._control.forget_cookie()

    @property
    def state(self) -> PuState:
        return self._control.state

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
        if self._rx.empty():
            self._raise_if_over()
        item = await self._rx.get()
        if item is None:
            _put_if_room(self._rx, None)  # wake the next reader too
            self._raise_if_over()
            raise SessionClosed("session closed")
        return item

    async def write(self, data: bytes, ppid: int | None = None) -> None:
        """Send one application message; a failed send fails over and is repeated."""
        ppid = self.ppid if ppid is None else check_data_ppid(ppid)
        payload = bytes(data)
        while True:
            await self._wait_ready()
            channel, generation = self._channel, self._generation
            assert channel is not None
            try:
                await channel.send(ppid, payload)
            except ChannelClosed as exc:
                self._trigger(PuInput.SEND_FAILED, f"send failed: {exc.reason}", generation)
                continue
            self.last_ppid_sent = ppid
            return

    async def failover(self, *, report_unreachable: bool = False) -> None:
        """Leave the current PE for another one (rsplib ``rsp_forcefailover``).

        ``report_unreachable`` also reports the current PE to the registrar.
        Returns once the session is usable again.
        """
        if report_unreachable:
            self._control.send_failed = True
        self._trigger(PuInput.FORCE_FAILOVER, "requested by the application", self._generation)
        await self._wait_ready()

    # ------------------------------------------------------------------ events

    async def events(self) -> AsyncIterator[SessionEvent]:
        """Failover events as they happen; ends when the session closes."""
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
        with contextlib.suppress(SessionProtocolError):
            self._control.on_input(PuInput.CLOSE)
        self._ready.set()  # wake writers; they see the session is over
        channel, self._channel = self._channel, None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()
        others = [t for t in self._tasks if t is not current]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        _put_if_room(self._rx, None)
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
            return "Failing over" if self.failovers or self._pe else "Connecting"
        return f"Connected to PE ${pe.identifier:08x}"

    def csp_associations(self) -> list[CspAssociation]:
        entries = registrar_association(self.asap)
        pe = self.pool_element
        if pe is not None:
            loop = asyncio.get_running_loop()
            transport = SCTP if isinstance(pe.transport, SctpTransport) else TCP_MAPPING
            entries.append(
                session_association(
                    pe.identifier,
                    loop.time() - self._connected_at,
                    self.last_ppid_sent,
                    transport,
                )
            )
        return entries

    # ------------------------------------------------------------------ internals

    def _raise_if_over(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise SessionClosed("session closed")

    async def _wait_ready(self) -> None:
        while True:
            self._raise_if_over()
            if self._ready.is_set() and self._channel is not None:
                return
            await self._ready.wait()

    def _emit(self, event: SessionEvent) -> None:
        log.info("pool %r: %s", self.pool_handle.decode(errors="replace"), _describe(event))
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("session event callback failed")
        _put_latest(self._events, event)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _trigger(self, event: PuInput, reason: str, generation: int) -> None:
        """A failover trigger observed on connection ``generation``."""
        if self._closing or generation != self._generation:
            return  # an old connection's news; the session moved on already
        verdict = self._control.on_input(event)
        if verdict is PuVerdict.START_FAILOVER:
            self._ready.clear()
            self._spawn(self._failover(reason), "rsp-session-failover")

    async def _failover(self, reason: str) -> None:
        old = self._pe
        report = self._control.take_report_flag()
        self._emit(FailoverStarted(old, reason))
        if report and old is not None:
            self.asap.report_unreachable(self.pool_handle, old.identifier)
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.abort()
        loop = asyncio.get_running_loop()
        deadline = None if self.failover_timeout is None else loop.time() + self.failover_timeout
        avoid = {old.identifier} if old is not None else set()
        try:
            new_pe, had_cookie = await self._establish(avoid, deadline, initial=False)
        except RserPoolError as exc:
            self._failure = FailoverError(f"failover gave up: {exc}")
            log.error("pool %r: %s", self.pool_handle.decode(errors="replace"), self._failure)
            self._ready.set()
            _put_if_room(self._rx, None)
            return
        self.failovers += 1
        self._emit(FailoverCompleted(old, new_pe, had_cookie))

    async def _establish(
        self, avoid: set[int], deadline: float | None, *, initial: bool
    ) -> tuple[PoolElementIdentity, bool]:
        """Steps 4-6 of the failover: pick, connect, echo the cookie; install the channel."""
        loop = asyncio.get_running_loop()
        while True:
            if self._closing:
                raise SessionClosed("session closed")
            try:
                found = await self.asap.resolve(self.pool_handle, self.items)
            except NoRegistrarError:
                if initial:
                    raise
                log.warning("failover: no registrar reachable; retrying")
                found = ()
            except RserPoolError as exc:
                if initial:
                    raise
                log.warning("failover: handle resolution failed: %s; retrying", exc)
                found = ()
            candidates = [PoolElementIdentity.from_param(p) for p in found]
            chosen = choose_pool_element(candidates, avoid)
            if chosen is not None:
                channel = await self._try_connect(chosen)
                if channel is not None:
                    return self._install(channel, chosen)
                avoid.add(chosen.identifier)
                if any(c.identifier not in avoid for c in candidates):
                    continue  # another candidate of this answer is left
            if deadline is not None and loop.time() >= deadline:
                what = "no pool element of pool " + repr(self.pool_handle.decode(errors="replace"))
                error = f"{what} could be reached" if candidates else f"{what} is registered"
                raise NoPoolElementError(error)
            await asyncio.sleep(self.retry_delay)

    async def _try_connect(self, pe: PoolElementIdentity) -> MessageChannel | None:
        """Connect and send the Cookie Echo first; None (PE reported) if that fails."""
        if isinstance(pe.transport, TcpTransport):
            kind = TCP_MAPPING
        elif isinstance(pe.transport, SctpTransport):
            kind = SCTP
        else:
            log.warning("%s offers an unsupported transport; skipped", pe)
            return None
        failure: Exception | None = None
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
            except (OSError, TransportError) as exc:
                failure = exc
                continue
            cookie = self._control.cookie
            if cookie is not None:
                try:
                    channel.send_nowait(int(PPID.ASAP), encode_cookie_echo(cookie))
                except ChannelClosed as exc:
                    failure = exc
                    continue
            return channel
        log.info("cannot reach %s (%s); reporting it", pe, failure)
        self.asap.report_unreachable(self.pool_handle, pe.identifier)
        return None

    def _install(
        self, channel: MessageChannel, pe: PoolElementIdentity
    ) -> tuple[PoolElementIdentity, bool]:
        if self._closing:
            channel.abort()
            raise SessionClosed("session closed")
        self._generation += 1
        self._channel = channel
        self._pe = pe
        self._connected_at = asyncio.get_running_loop().time()
        self._control.on_input(PuInput.CONNECTED)
        self._spawn(self._reader(channel, self._generation), "rsp-session-reader")
        self._ready.set()
        return pe, self._control.cookie is not None

    async def _reader(self, channel: MessageChannel, generation: int) -> None:
        try:
            while True:
                ppid, payload = await channel.receive()
                try:
                    message = classify(ppid, payload)
                except SessionProtocolError as exc:
                    log.warning("ignoring a bad control message from the PE: %s", exc)
                    continue
                if isinstance(message, DataMessage):
                    await self._rx.put(message)
                elif isinstance(message, Cookie):
                    self._control.store_cookie(message.cookie)
                elif isinstance(message, CookieEcho):
                    log.warning("ignoring a Cookie Echo from a PE (only pool users send them)")
                # Business Cards are ignored, as rsplib does.
        except ChannelClosed as exc:
            self._trigger(PuInput.PEER_LOST, exc.reason, generation)


def _put_latest(queue: asyncio.Queue[Any], item: object) -> None:
    """Queue ``item``, dropping the oldest entry if the queue is full (events)."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)


def _put_if_room(queue: asyncio.Queue[Any], item: object) -> None:
    """Queue an end marker unless full (a full data queue is drained before readers wait)."""
    if not queue.full():
        queue.put_nowait(item)


def _describe(event: SessionEvent) -> str:
    if isinstance(event, FailoverStarted):
        return f"failover from {event.old_pe or 'no PE'} started: {event.reason}"
    cookie = "with Cookie Echo" if event.had_cookie else "without cookie"
    return f"failover from {event.old_pe or 'no PE'} to {event.new_pe} completed ({cookie})"
