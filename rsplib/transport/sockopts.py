"""Socket options for fast detection of lost TCP peers."""

from __future__ import annotations

import socket
import struct
from typing import Protocol

from rsplib.transport.channel import TcpOptions

# Linux value; the socket module exports it on Linux only.
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


class _OptionSocket(Protocol):
    def setsockopt(self, level: int, optname: int, value: int | bytes, /) -> None: ...


def apply_tcp_options(sock: _OptionSocket, options: TcpOptions) -> None:
    """Keep-alive, TCP_USER_TIMEOUT and TCP_NODELAY on a connected TCP socket."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, options.keepalive_idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, options.keepalive_interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, options.keepalive_count)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, options.user_timeout_ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if options.nodelay else 0)
    if options.send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.send_buffer)


def set_reset_on_close(sock: _OptionSocket) -> None:
    """SO_LINGER with timeout 0: close() then sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
