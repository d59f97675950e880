"""Accepting connections with limits that fit the process.

* The connection limit defaults to what the process's open-file limit (RLIMIT_NOFILE)
  allows, minus headroom for everything else the process opens.
* One source host may hold only part of the slots (``max_per_host``), so a single
  misbehaving host cannot lock everyone else out.
* When accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) accepting
  pauses for a second, said once per episode in the log, instead of retrying at once and
  logging a traceback per attempt.

Refused connections are reset at once (the client sees a refusal rather than a hang);
refusals are logged once per host and minute (``peerlog``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
from collections.abc import Callable, Sequence

from rsplib.ratelimit import RateLimiter
from rsplib.transport.peerlog import peer_problem
from rsplib.transport.sockopts import set_reset_on_close

logger = logging.getLogger("rsplib.transport")

#: accept() failures that mean "no resources now", not "this connection went wrong".
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: How long accepting pauses after such a failure.
ACCEPT_PAUSE = 1.0
#: Connections taken per readiness event (others wait for the next loop iteration).
ACCEPT_BATCH = 64
#: File descriptors kept free for everything that is not an accepted connection
#: (listening and multicast sockets, outbound connections, log files, imports).
FD_HEADROOM = 64
#: Bound of the "refusal already logged" memory.
_MAX_LOGGED_HOSTS = 4096


def fd_connection_limit(reserve: int = FD_HEADROOM) -> int:
    """Connections the process can accept within its soft RLIMIT_NOFILE, keeping ``reserve``."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(2, soft - reserve)


def split_connection_limit(usable: int, wanted_minor: int) -> tuple[int, int]:
    """Share ``usable`` descriptors between a main and a minor kind of connection.

    The minor kind (a registrar's ENRP peers) gets what it asks for, but at most an eighth;
    the main kind (its PEs and PUs) the rest. Both get at least one.
    """
    minor = max(1, min(wanted_minor, usable // 8))
    return max(1, usable - minor), minor


def default_per_host(limit: int) -> int:
    """Default per-source-host share of ``limit``: a quarter, but at least 16."""
    return min(limit, max(16, limit // 4))


class Admission:
    """Connection limits of one listening endpoint: in total and per source host, and how
    fast one host may open new connections (a connect-and-close flood costs us more than
    the flooder)."""

    def __init__(
        self,
        max_connections: int | None,
        max_per_host: int | None,
        max_rate_per_host: float | None = None,
    ) -> None:
        for name, value in (("max_connections", max_connections), ("max_per_host", max_per_host)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or None")
        self.max_connections = max_connections
        self.max_per_host = max_per_host
        self._rate = (
            None
            if max_rate_per_host is None
            else RateLimiter(max_rate_per_host, burst=max(1.0, 2 * max_rate_per_host))
        )
        self.count = 0
        self._per_host: dict[str, int] = {}
        #: Connections refused so far (for status and tests).
        self.refused = 0

    def admit(self, host: str, kind: str, now: float = 0.0) -> bool:
        """Count a new connection from ``host``; False (and logged once per host) if over."""
        if self.max_connections is not None and self.count >= self.max_connections:
            self._refuse(host, kind, f"limit of {self.max_connections} connections reached")
            return False
        held = self._per_host.get(host, 0)
        if self.max_per_host is not None and held >= self.max_per_host:
            self._refuse(host, kind, f"{self.max_per_host} connections from this host")
            return False
        if self._rate is not None and not self._rate.allow(host, now):
            self._refuse(host, kind, f"more than {self._rate.max_rate:g} new connections/s")
            return False
        self._per_host[host] = held + 1
        self.count += 1
        return True

    def release(self, host: str) -> None:
        held = self._per_host.get(host, 0)
        if held <= 1:
            self._per_host.pop(host, None)
        else:
            self._per_host[host] = held - 1
        self.count = max(0, self.count - 1)

    def _refuse(self, host: str, kind: str, why: str) -> None:
        self.refused += 1
        peer_problem(
            logging.WARNING, host, "refused", "refusing %s connections from %s: %s", kind, host, why
        )


class TcpAcceptor:
    """Accepts on a listening socket and hands each admitted connection to ``on_accept``."""

    def __init__(
        self,
        listener: socket.socket,
        admission: Admission,
        on_accept: Callable[[socket.socket, str], None],
        kind: str,
    ) -> None:
        self._listener = listener
        self._admission = admission
        self._on_accept = on_accept
        self._kind = kind
        self._loop = asyncio.get_running_loop()
        self._paused: asyncio.TimerHandle | None = None
        self._pause_logged = False
        self._closed = False
        listener.setblocking(False)
        self._loop.add_reader(listener.fileno(), self._ready)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        else:
            self._loop.remove_reader(self._listener.fileno())
        self._listener.close()

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in RESOURCE_ERRNOS:
                    self._pause(exc)
                    return
                # The connection died between SYN and accept (ECONNABORTED...): next one.
                logger.debug("accept failed: %s", exc)
                continue
            if self._pause_logged:
                self._pause_logged = False
                logger.info("accepting %s connections again", self._kind)
            host = str(address[0])
            if not self._admission.admit(host, self._kind, self._loop.time()):
                with contextlib.suppress(OSError):
                    set_reset_on_close(conn)
                conn.close()
                continue
            conn.setblocking(False)
            self._on_accept(conn, host)

    def _pause(self, exc: OSError) -> None:
        self._loop.remove_reader(self._listener.fileno())
        self._paused = self._loop.call_later(ACCEPT_PAUSE, self._resume)
        if not self._pause_logged:
            self._pause_logged = True
            logger.warning(
                "cannot accept %s connections: %s (%d open); accepting pauses and retries "
                "every %.0f s",
                self._kind,
                exc.strerror or exc,
                self._admission.count,
                ACCEPT_PAUSE,
            )

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self._loop.add_reader(self._listener.fileno(), self._ready)


async def open_listeners(
    host: str | Sequence[str] | None, port: int, backlog: int = 128
) -> list[socket.socket]:
    """Listening TCP sockets for ``host:port`` (or each of several hosts) as asyncio's
    create_server would make them."""
    loop = asyncio.get_running_loop()
    hosts = [host] if host is None or isinstance(host, str) else list(host)
    infos = []
    for one in hosts:
        infos += await loop.getaddrinfo(one, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _canon, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners
