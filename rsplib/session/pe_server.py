"""Enhanced mode, pool-element side: a server that registers itself and runs sessions.

``PoolElementServer`` listens through :mod:`rsplib.transport`, registers the
listening address with the ASAP service (TCP Transport parameter with
Transport Use "data plus control" for the TCP mapping, SCTP Transport for
kernel SCTP) and hands every accepted connection to ``handler(session)`` as
a :class:`PeSession`.

Before the handler runs, the server waits for the session's first message
(``first_message_timeout`` bounds that wait; 0 hands the session over at
once): if it is a Cookie Echo, the cookie is judged by the server's
:class:`~rsplib.session.cookies.CookiePolicy` (signature, binding to one live
session, freshness, and the application's own state check) and the session
starts restored (``started_with_cookie_echo``, ``cookie`` holds the verified
state). A refused echo is logged and, by default, the session is closed
gracefully before anything is sent: the pool user's signal to drop the cookie
and start over. A Cookie Echo later in the session aborts it.

A session that cannot be served (the server is closing) is reset, never closed
gracefully: a graceful close right after a Cookie Echo would read as a refused
cookie.

Load for adaptive policies follows the session count (sessions /
``max_sessions``) and is re-registered whenever it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import NoReturn

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, AsapService, RegistrarAddress
from rsplib.errors import SessionClosed, SessionProtocolError
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.session.control import (
    DataMessage,
    PeSessionControl,
    PeVerdict,
    check_data_ppid,
    classify,
    encode_cookie,
    pe_input_for,
)
from rsplib.session.cookies import (
    CookieContext,
    CookiePolicy,
    CookieRejection,
    InvalidCookie,
    SessionCookies,
)
from rsplib.session.reporting import ComponentReporter, CspOptions, registrar_association
from rsplib.status import default_location
from rsplib.trace.tracer import TRACER
from rsplib.transport import (
    AUTO,
    SCTP,
    ChannelClosed,
    ChannelServer,
    HeartbeatConfig,
    MessageChannel,
    TlsConfig,
    choose_transport,
    start_server,
)
from rsplib.wire.asap import CookieEcho
from rsplib.wire.constants import FRACTION_MAX, PPID, PolicyType
from rsplib.wire.csp import ComponentGroup, component_id
from rsplib.wire.params import PolicyParam, SctpTransport, TcpTransport, Transport, ip

log = logging.getLogger("rsplib.session")

SessionHandler = Callable[["PeSession"], Awaitable[None]]


def policy_has_load(policy: PolicyParam) -> bool:
    """Does this policy carry a load value (the adaptive, "least used" family)?"""
    return "load" in PolicyParam.POLICY_FIELDS.get(policy.policy_type, ())


def policy_with_load(policy: PolicyParam, load: float) -> PolicyParam:
    """``policy`` with its load set to the fraction ``load`` (clamped to 0..1)."""
    value = round(min(1.0, max(0.0, load)) * FRACTION_MAX)
    return replace(policy, load=value)


class PeSession:
    """One pool user's session at this pool element."""

    def __init__(
        self,
        server: PoolElementServer,
        channel: MessageChannel,
        number: int,
        now: float,
    ) -> None:
        self._server = server
        self._channel = channel
        self.number = number
        self.started_at = now
        self.peer_address = channel.peer_address
        self.started_with_cookie_echo = False
        #: The echoed cookie's state, verified by the server's cookie policy; None without one.
        self.cookie: bytes | None = None
        #: Why the Cookie Echo was refused, if it was.
        self.cookie_rejected: str | None = None
        self._cookie_context: CookieContext | None = None
        #: Free text for status reports (a PE with exactly one session reports it).
        self.status_text = ""
        self.last_ppid_sent = int(PPID.ASAP)
        self._control = PeSessionControl()
        self._pending: list[DataMessage] = []
        self._closed_reason: str | None = None

    # ------------------------------------------------------------------ application API

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None or self._channel.closed

    async def read(self) -> bytes:
        """Next application message's bytes; ``b""`` once the session is over."""
        try:
            return (await self.read_message()).data
        except SessionClosed:
            return b""

    async def read_message(self) -> DataMessage:
        """Next application message with its PPID; raises :class:`SessionClosed` at the end."""
        if self._pending:
            return self._pending.pop(0)
        while True:
            message = await self._next_data()
            if message is not None:
                return message

    async def write(self, data: bytes, ppid: int | None = None) -> None:
        """Send one application message (``ppid`` defaults to the server's; never 11)."""
        ppid = self._server.ppid if ppid is None else check_data_ppid(ppid)
        await self._send(ppid, bytes(data))

    async def send_cookie(self, state: bytes) -> None:
        """Hand the pool user a state cookie (ASAP Cookie, PPID 11) for a later failover.

        The server's cookie policy seals it (signed, maybe encrypted) when it has a key.
        """
        cookie = self._server.cookies.seal(self._context(), bytes(state))
        await self._send(int(PPID.ASAP), encode_cookie(cookie))

    def abort(self) -> None:
        """Drop the session at once (the pool user fails over)."""
        self._closed_reason = self._closed_reason or "aborted locally"
        self._channel.abort()

    async def close(self) -> None:
        """End the session gracefully (the pool user sees EOF)."""
        self._closed_reason = self._closed_reason or "closed locally"
        await self._channel.close()

    # ------------------------------------------------------------------ internals

    async def _send(self, ppid: int, payload: bytes) -> None:
        if self._closed_reason is not None:
            raise SessionClosed(self._closed_reason)
        try:
            await self._channel.send(ppid, payload)
        except ChannelClosed as exc:
            raise SessionClosed(exc.reason) from exc
        self.last_ppid_sent = ppid

    async def _await_first(self, timeout: float | None) -> None:
        """Read the first message before the handler starts (it may be a Cookie Echo)."""
        if timeout is not None and timeout <= 0:
            return
        try:
            message = await asyncio.wait_for(self._next_data(), timeout)
        except (TimeoutError, SessionClosed):
            return
        if message is not None:
            self._pending.append(message)

    async def _next_data(self) -> DataMessage | None:
        """Receive one message; data comes back, control is handled (None)."""
        if self._closed_reason is not None:
            raise SessionClosed(self._closed_reason)
        try:
            ppid, payload = await self._channel.receive()
        except ChannelClosed as exc:
            self._control.close()
            raise SessionClosed(exc.reason) from None
        try:
            message = classify(ppid, payload)
            verdict = self._control.on_input(pe_input_for(message))
        except SessionProtocolError as exc:
            self._protocol_violation(str(exc))
        if verdict is PeVerdict.DELIVER:
            assert isinstance(message, DataMessage)
            return message
        if verdict is PeVerdict.RESTORE:
            assert isinstance(message, CookieEcho)
            self._restore(message.cookie)
        elif verdict is PeVerdict.ABORT:
            what = type(message).__name__
            self._protocol_violation(f"{what} not allowed here (a Cookie Echo must come first)")
        return None

    def _protocol_violation(self, why: str) -> NoReturn:
        log.warning("session %d from %s:%d aborted: %s", self.number, *self.peer_address, why)
        self._closed_reason = why
        self._channel.abort()
        raise SessionClosed(why)

    def _restore(self, cookie: bytes) -> None:
        self.started_with_cookie_echo = True
        cookies = self._server.cookies
        try:
            self.cookie, self._cookie_context = cookies.open_echo(self, cookie)
        except InvalidCookie as exc:
            self.cookie_rejected = exc.reason
            cookies.rejected += 1
            refuse = cookies.policy.on_rejection is CookieRejection.CLOSE
            log.warning(
                "session %d from %s:%d: Cookie Echo rejected: %s; %s",
                self.number,
                *self.peer_address,
                exc.reason,
                "closing the session" if refuse else "starting a fresh session",
            )

    def _context(self) -> CookieContext:
        if self._cookie_context is None:
            self._cookie_context = self._server.cookies.start(self)
        return self._cookie_context


class PoolElementServer:
    """An enhanced-mode pool element: listens, registers, runs ``handler`` per session.

    Use ``async with PoolElementServer(...) as server:`` or :meth:`start` /
    :meth:`close`. Without ``asap`` the server runs its own
    :class:`~rsplib.asap.service.AsapService` from ``registrars`` / ``announce`` /
    ``asap_config``.
    """

    def __init__(
        self,
        pool_handle: bytes | str,
        handler: SessionHandler,
        *,
        policy: PolicyParam | str | None = None,
        identifier: int | None = None,
        max_sessions: int | None = None,
        cookies: CookiePolicy | None = None,
        local_address: str = "127.0.0.1",
        port: int = 0,
        advertise: Sequence[str] = (),
        asap: AsapService | None = None,
        registrars: Sequence[RegistrarAddress] = (),
        announce: AnnounceOptions | None = None,
        asap_config: AsapConfig | None = None,
        transport: str = AUTO,
        heartbeat: HeartbeatConfig | None = None,
        ppid: int = int(PPID.DATA),
        first_message_timeout: float | None = None,
        auto_load: bool = True,
        csp: CspOptions | None = None,
        rng: random.Random | None = None,
        tls: TlsConfig | None = None,
    ) -> None:
        self.pool_handle = pool_handle.encode() if isinstance(pool_handle, str) else pool_handle
        if not self.pool_handle:
            raise ValueError("pool handle must not be empty")
        if max_sessions is not None and max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self._handler = handler
        if isinstance(policy, str):
            policy = parse_policy(policy)
        self.policy = policy or PolicyParam(PolicyType.ROUND_ROBIN)
        self._rng = rng or random.Random()
        self.identifier = identifier or self._rng.randint(1, 0xFFFFFFFF)
        self.max_sessions = max_sessions
        self.cookies = SessionCookies(cookies or CookiePolicy())
        self.ppid = check_data_ppid(ppid)
        self._local_address = local_address
        self._port = port
        self._advertise = tuple(advertise)
        self._own_asap = asap is None
        self.asap = asap or AsapService(
            asap_config,
            registrars=registrars,
            announce=announce,
            transport=transport,
            rng=rng,
            tls=tls,
        )
        self._transport_request = transport
        self._heartbeat = heartbeat or HeartbeatConfig()
        self.first_message_timeout = first_message_timeout
        self._auto_load = auto_load and policy_has_load(self.policy) and max_sessions is not None
        if self._auto_load:
            self.policy = policy_with_load(self.policy, 0.0)
        self._csp = csp
        self._reporter: ComponentReporter | None = None
        self._server: ChannelServer | None = None
        self.sessions: set[PeSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_numbers = 0
        self.transport_name = ""
        self.address: tuple[str, int] = ("", 0)
        self.user_transport: Transport | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen, start the ASAP service if it is ours, and begin registering."""
        if self._server is not None:
            return
        TRACER.identify(component_id(ComponentGroup.POOL_ELEMENT, self.identifier))
        await self.asap.start()
        self.transport_name = choose_transport(self._transport_request)
        self._server = await start_server(
            self._local_address,
            self._port,
            self._on_channel,
            transport=self.transport_name,
            heartbeat=self._heartbeat,
            max_connections=self.max_sessions,
            tls=self.asap.tls,
        )
        self.address = self._server.addresses[0]
        self.user_transport = self._make_transport()
        self.asap.register(self.pool_handle, self.user_transport, self.policy, self.identifier)
        log.info(
            "pool element 0x%08x of pool %r listening on %s:%d (%s)",
            self.identifier,
            self.pool_handle.decode(errors="replace"),
            *self.address,
            self.transport_name,
        )
        if self._csp is not None:
            self._reporter = ComponentReporter(
                component_id(ComponentGroup.POOL_ELEMENT, self.identifier),
                self._csp,
                status=self.status_text,
                associations=lambda: registrar_association(self.asap),
                workload=self.workload,
                location=f"{default_location()}: {self.address[0]}:{self.address[1]}",
            )
            self._reporter.start()

    async def wait_registered(self, timeout: float | None = None) -> None:
        """Wait for the registrar's confirmation (see AsapService.wait_registered)."""
        await self.asap.wait_registered(self.pool_handle, self.identifier, timeout)

    async def close(self, *, deregister_timeout: float = 2.0) -> None:
        """Deregister, end every session, send the FINAL status report, stop."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None and not self.asap.closed:
            with contextlib.suppress(Exception):
                await self.asap.deregister(
                    self.pool_handle, self.identifier, timeout=deregister_timeout
                )
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._reporter is not None:
            await self._reporter.stop(final=True)
        if self._own_asap:
            await self.asap.close()

    async def __aenter__(self) -> PoolElementServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ load and status

    def set_load(self, load: float) -> None:
        """Set the policy's load (0..1) by hand; only for policies that carry a load."""
        if not policy_has_load(self.policy):
            raise ValueError("this pool policy carries no load value")
        self._auto_load = False
        self._update_policy(policy_with_load(self.policy, load))

    def workload(self) -> float | None:
        """Sessions / max_sessions for adaptive policies; None (unknown) otherwise."""
        if not policy_has_load(self.policy) or not self.max_sessions:
            return None
        return min(1.0, len(self.sessions) / self.max_sessions)

    def status_text(self) -> str:
        """rsplib's PE status: the session's own text if exactly one session, else a count."""
        if len(self.sessions) == 1:
            only = next(iter(self.sessions))
            if only.status_text:
                return only.status_text
        return f"{len(self.sessions)} Sessions"

    def _update_policy(self, policy: PolicyParam) -> None:
        if policy == self.policy:
            return
        self.policy = policy
        if not self._closed and self.user_transport is not None:
            self.asap.update_policy(self.pool_handle, self.identifier, policy)

    def _session_count_changed(self) -> None:
        load = self.workload()
        if self._auto_load and load is not None:
            self._update_policy(policy_with_load(self.policy, load))

    # ------------------------------------------------------------------ sessions

    def _make_transport(self) -> Transport:
        host, port = self.address
        if self._advertise:
            addresses = tuple(ip(a) for a in self._advertise)
        else:
            address = ipaddress.ip_address(host)
            if address.is_unspecified:
                raise ValueError(
                    f"listening on {host}: give the addresses to advertise (advertise=...)"
                )
            addresses = (address,)
        if self.transport_name == SCTP:
            return SctpTransport(port, addresses)
        return TcpTransport(port, addresses)

    async def _on_channel(self, channel: MessageChannel) -> None:
        self._session_numbers += 1
        loop = asyncio.get_running_loop()
        session = PeSession(self, channel, self._session_numbers, loop.time())
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.sessions.add(session)
        self._session_count_changed()
        try:
            await session._await_first(self.first_message_timeout)
            if session.cookie_rejected is not None:
                if self.cookies.policy.on_rejection is CookieRejection.CLOSE:
                    await session.close()  # the explicit refusal: EOF before any message
                    return
                session.started_with_cookie_echo = False
            if self._closed:
                session.abort()  # a reset, so the pool user keeps its cookie
                return
            session._context()
            if not session.closed or session._pending:
                await self._handler(session)
        except SessionClosed:
            pass
        except Exception:
            log.exception("session handler failed for %s:%d", *session.peer_address)
            session.abort()
        finally:
            self.cookies.ended(session)
            self.sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)
            if not self._closed:
                self._session_count_changed()
