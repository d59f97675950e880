"""A small blocking facade over the async API, for scripts.

``BlockingRserPool`` runs an asyncio event loop in a background thread and
forwards calls to it; every method blocks until the result is there::

    with BlockingRserPool(registrars=["127.0.0.1:3863"]) as pool:
        print(pool.resolve("EchoPool"))
        with pool.connect_session("EchoPool") as session:
            session.write(b"hello")
            print(session.read(timeout=5))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from rsplib.api import (
    PoolElementIdentity,
    as_policy,
    pool_handle_bytes,
    resolve,
)
from rsplib.asap.config import AsapConfig
from rsplib.asap.service import AnnounceOptions, AsapService, RegistrarAddress
from rsplib.session.pu_session import PoolUserSession
from rsplib.transport import AUTO
from rsplib.wire.params import PolicyParam, Transport

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rsplib-blocking", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self.loop.close()


class BlockingPoolElement:
    """A registered PE (basic mode); :meth:`deregister` or ``with`` ends it."""

    def __init__(self, owner: BlockingRserPool, pool_handle: bytes, identifier: int) -> None:
        self._owner = owner
        self.pool_handle = pool_handle
        self.identifier = identifier
        self.policy: PolicyParam | None = None

    def set_policy(self, policy: PolicyParam | str) -> None:
        param = self.policy = as_policy(policy)
        asap, handle, pe_id = self._owner.asap, self.pool_handle, self.identifier
        self._owner.run(_sync(lambda: asap.update_policy(handle, pe_id, param)))

    def deregister(self, timeout: float = 2.0) -> None:
        self._owner.run(self._owner.asap.deregister(self.pool_handle, self.identifier, timeout))

    def __enter__(self) -> BlockingPoolElement:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.deregister()


class BlockingSession:
    """A :class:`PoolUserSession` driven from a plain thread."""

    def __init__(self, owner: BlockingRserPool, session: PoolUserSession) -> None:
        self._owner = owner
        self.session = session

    @property
    def pool_element(self) -> PoolElementIdentity | None:
        return self.session.pool_element

    @property
    def cookie(self) -> bytes | None:
        return self.session.cookie

    def read(self, timeout: float | None = None) -> bytes:
        """Next message (``b""`` after close); ``TimeoutError`` after ``timeout`` seconds."""
        return self._owner.run(self.session.read(), timeout)

    def write(self, data: bytes, ppid: int | None = None) -> None:
        self._owner.run(self.session.write(data, ppid))

    def failover(self, *, report_unreachable: bool = False) -> None:
        self._owner.run(self.session.failover(report_unreachable=report_unreachable))

    def close(self) -> None:
        self._owner.run(self.session.close())

    def __enter__(self) -> BlockingSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


async def _sync(function: Callable[[], None]) -> None:
    """Run a plain function on the loop thread (the ASAP service is not thread-safe)."""
    function()


class BlockingRserPool:
    """One ASAP service in a background event loop, used through blocking calls."""

    def __init__(
        self,
        *,
        registrars: Sequence[RegistrarAddress] = (),
        announce: AnnounceOptions | None = None,
        config: AsapConfig | None = None,
        transport: str = AUTO,
    ) -> None:
        self._thread = _LoopThread()
        self.asap = AsapService(
            config, registrars=registrars, announce=announce, transport=transport
        )
        try:
            self.run(self.asap.start())
        except BaseException:
            self._thread.stop()
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the background loop and wait for its result."""
        return self._thread.call(coro, timeout)

    def resolve(self, pool_handle: bytes | str, items: int = 3) -> list[PoolElementIdentity]:
        return self.run(resolve(pool_handle, items=items, asap=self.asap))

    def report_unreachable(self, pool_handle: bytes | str, identifier: int) -> None:
        handle = pool_handle_bytes(pool_handle)
        asap = self.asap
        self.run(_sync(lambda: asap.report_unreachable(handle, identifier)))

    def register(
        self,
        pool_handle: bytes | str,
        user_transport: Transport,
        *,
        policy: PolicyParam | str = "RoundRobin",
        identifier: int | None = None,
        timeout: float | None = 10.0,
    ) -> BlockingPoolElement:
        """Register a PE (kept registered until deregistered); waits for the confirmation."""
        handle = pool_handle_bytes(pool_handle)
        param = as_policy(policy)
        asap = self.asap

        async def register() -> int:
            pe_id = asap.register(handle, user_transport, param, identifier)
            await asap.wait_registered(handle, pe_id, timeout)
            return pe_id

        element = BlockingPoolElement(self, handle, self.run(register()))
        element.policy = param
        return element

    def connect_session(self, pool_handle: bytes | str, **options: Any) -> BlockingSession:
        """:meth:`PoolUserSession.connect` sharing this object's ASAP service."""
        session = self.run(PoolUserSession.connect(pool_handle, asap=self.asap, **options))
        return BlockingSession(self, session)

    def close(self) -> None:
        try:
            self.run(self.asap.close(), timeout=10.0)
        finally:
            self._thread.stop()

    def __enter__(self) -> BlockingRserPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
