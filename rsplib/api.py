"""The public PE/PU API of rsplib, async-first.

Basic mode (the application keeps its own sockets)::

    async with AsapService(registrars=["127.0.0.1:3863"]) as asap:
        async with register_pool_element("EchoPool", TcpTransport(7, (ip("10.0.0.1"),)),
                                         policy="LeastUsed", asap=asap) as pe:
            pe.set_load(0.5)
            ...
        pes = await resolve("EchoPool", items=3, asap=asap)
        await report_unreachable("EchoPool", pes[0].identifier, asap=asap)

Enhanced mode (sessions with state cookies and failover)::

    async with PoolElementServer("EchoPool", handler, registrars=[...]) as server: ...
    session = await PoolUserSession.connect("EchoPool", registrars=[...])

Every call takes either an ``asap`` service (shared by the process; the
registrar connection stays up) or the options to make a temporary one
(``registrars``, ``announce``, ``config``, ``transport``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from rsplib.asap.config import AsapConfig
from rsplib.asap.service import (
    AnnounceOptions,
    AsapService,
    RegistrarAddress,
    parse_registrar,
)
from rsplib.errors import (
    FailoverError,
    LocalProtocolError,
    NoPoolElementError,
    NoRegistrarError,
    RegistrationError,
    RemoteProtocolError,
    RequestTimeoutError,
    ResolutionError,
    RserPoolError,
    SessionClosed,
)
from rsplib.handlespace.policy_parser import parse_policy
from rsplib.session.control import PoolElementIdentity
from rsplib.session.cookies import (
    CookiePolicy,
    CookieRejection,
    CookieSealer,
    InvalidCookie,
    load_cookie_key,
)
from rsplib.session.pe_server import (
    PeSession,
    PoolElementServer,
    policy_has_load,
    policy_with_load,
)
from rsplib.session.pu_machine import (
    CookieAbandoned,
    CookieEchoed,
    CookieRejected,
    FailoverCompleted,
    FailoverReason,
    FailoverStarted,
    SessionConfig,
    SessionEvent,
    SessionLost,
)
from rsplib.session.pu_session import PoolUserSession
from rsplib.session.reporting import CspOptions
from rsplib.transport import AUTO, HeartbeatConfig
from rsplib.wire.params import PolicyParam, Transport


def pool_handle_bytes(pool_handle: bytes | str) -> bytes:
    """Pool handles are bytes on the wire; text is taken as UTF-8."""
    handle = pool_handle.encode("utf-8") if isinstance(pool_handle, str) else bytes(pool_handle)
    if not handle:
        raise ValueError("pool handle must not be empty")
    return handle


def as_policy(policy: PolicyParam | str) -> PolicyParam:
    """A Policy parameter, or an rsplib policy string such as ``LeastUsedDegradation:0.25``."""
    return parse_policy(policy) if isinstance(policy, str) else policy


@contextlib.asynccontextmanager
async def _service(
    asap: AsapService | None,
    registrars: Sequence[RegistrarAddress],
    announce: AnnounceOptions | None,
    config: AsapConfig | None,
    transport: str,
) -> AsyncIterator[AsapService]:
    if asap is not None:
        yield asap
        return
    async with AsapService(
        config, registrars=registrars, announce=announce, transport=transport
    ) as temporary:
        yield temporary


async def resolve(
    pool_handle: bytes | str,
    *,
    items: int = 3,
    asap: AsapService | None = None,
    registrars: Sequence[RegistrarAddress] = (),
    announce: AnnounceOptions | None = None,
    config: AsapConfig | None = None,
    transport: str = AUTO,
) -> list[PoolElementIdentity]:
    """Handle resolution: up to ``items`` PEs of the pool, in policy order (maybe none).

    Raises :class:`NoRegistrarError` when no registrar can be reached within the
    configured hunt timeout, :class:`RequestTimeoutError` or :class:`ResolutionError`.
    """
    handle = pool_handle_bytes(pool_handle)
    async with _service(asap, registrars, announce, config, transport) as service:
        found = await service.resolve(handle, items)
    return [PoolElementIdentity.from_param(param) for param in found]


async def report_unreachable(
    pool_handle: bytes | str,
    identifier: int,
    *,
    asap: AsapService | None = None,
    registrars: Sequence[RegistrarAddress] = (),
    announce: AnnounceOptions | None = None,
    config: AsapConfig | None = None,
    transport: str = AUTO,
) -> None:
    """Report a PE as unreachable (Endpoint Unreachable; no answer is expected).

    With a temporary service this waits until the report has been handed to a
    registrar connection (or the hunt failed: :class:`NoRegistrarError`).
    """
    handle = pool_handle_bytes(pool_handle)
    async with _service(asap, registrars, announce, config, transport) as service:
        service.report_unreachable(handle, identifier)
        if asap is None:
            limit = service.config.registrar_connect_timeout * (
                service.config.registrar_connect_max_trials
            )
            if not await service.flush(limit + 1.0):
                raise NoRegistrarError(f"could not report PE 0x{identifier:08x}: no registrar")


class RegisteredPoolElement:
    """A PE kept registered by :func:`register_pool_element` until the block ends."""

    def __init__(
        self, asap: AsapService, pool_handle: bytes, identifier: int, policy: PolicyParam
    ) -> None:
        self.asap = asap
        self.pool_handle = pool_handle
        self.identifier = identifier
        self.policy = policy
        self._active = True

    @property
    def registered(self) -> bool:
        """Confirmed by the current home registrar."""
        return self._active and self.asap.is_registered(self.pool_handle, self.identifier)

    def set_load(self, load: float) -> None:
        """New load (0..1) for adaptive policies; re-registers at once when it changed."""
        if not policy_has_load(self.policy):
            raise ValueError("this pool policy carries no load value")
        self.set_policy(policy_with_load(self.policy, load))

    def set_policy(self, policy: PolicyParam | str) -> None:
        self.policy = as_policy(policy)
        if self._active:
            self.asap.update_policy(self.pool_handle, self.identifier, self.policy)

    async def deregister(self, timeout: float = 2.0) -> None:
        if self._active:
            self._active = False
            await self.asap.deregister(self.pool_handle, self.identifier, timeout)


@contextlib.asynccontextmanager
async def register_pool_element(
    pool_handle: bytes | str,
    user_transport: Transport,
    *,
    policy: PolicyParam | str = "RoundRobin",
    identifier: int | None = None,
    timeout: float | None = 10.0,
    asap: AsapService | None = None,
    registrars: Sequence[RegistrarAddress] = (),
    announce: AnnounceOptions | None = None,
    config: AsapConfig | None = None,
    transport: str = AUTO,
) -> AsyncIterator[RegisteredPoolElement]:
    """Register a PE and keep it registered (re-registration, new homes) until the block ends.

    Waits for the first confirmation: :class:`RegistrationError` if refused,
    :class:`NoRegistrarError` if no registrar answers, ``TimeoutError`` after ``timeout``.
    On exit the PE is deregistered.
    """
    handle = pool_handle_bytes(pool_handle)
    param = as_policy(policy)
    async with _service(asap, registrars, announce, config, transport) as service:
        pe_id = service.register(handle, user_transport, param, identifier)
        element = RegisteredPoolElement(service, handle, pe_id, param)
        try:
            await service.wait_registered(handle, pe_id, timeout)
        except BaseException:
            await element.deregister(timeout=0.5)  # stop keeping it registered
            raise
        try:
            yield element
        finally:
            await element.deregister()


__all__ = [
    "AnnounceOptions",
    "AsapConfig",
    "AsapService",
    "CookieAbandoned",
    "CookieEchoed",
    "CookiePolicy",
    "CookieRejected",
    "CookieRejection",
    "CookieSealer",
    "CspOptions",
    "FailoverCompleted",
    "FailoverError",
    "FailoverReason",
    "FailoverStarted",
    "HeartbeatConfig",
    "InvalidCookie",
    "LocalProtocolError",
    "NoPoolElementError",
    "NoRegistrarError",
    "PeSession",
    "PoolElementIdentity",
    "PoolElementServer",
    "PoolUserSession",
    "RegisteredPoolElement",
    "RegistrationError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResolutionError",
    "RserPoolError",
    "SessionClosed",
    "SessionConfig",
    "SessionEvent",
    "SessionLost",
    "as_policy",
    "load_cookie_key",
    "parse_registrar",
    "pool_handle_bytes",
    "register_pool_element",
    "report_unreachable",
    "resolve",
]
