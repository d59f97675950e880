"""Asyncio transports: TCP mapping, kernel SCTP, UDP multicast/unicast.

The only package in rsplib that touches sockets. Protocol code uses
:func:`connect` / :func:`start_server` and the :class:`MessageChannel` they
hand out; which transport carries the messages is chosen here.
"""

from rsplib.transport.acceptor import default_per_host, fd_connection_limit, split_connection_limit
from rsplib.transport.budget import BufferBudget
from rsplib.transport.channel import (
    AUTO,
    SCTP,
    TCP_MAPPING,
    ChannelClosed,
    ChannelHandler,
    ChannelServer,
    CloseKind,
    FlowLimits,
    HeartbeatConfig,
    MessageChannel,
    TcpOptions,
    TransportError,
    TransportUnavailable,
)
from rsplib.transport.multicast import (
    MulticastReceiver,
    MulticastSender,
    UdpSender,
    open_multicast_receiver,
)
from rsplib.transport.selection import choose_transport, connect, sctp_available, start_server
from rsplib.transport.tls import TlsConfig, TlsSetupError, tls_config

__all__ = [
    "AUTO",
    "SCTP",
    "TCP_MAPPING",
    "BufferBudget",
    "ChannelClosed",
    "ChannelHandler",
    "ChannelServer",
    "CloseKind",
    "FlowLimits",
    "HeartbeatConfig",
    "MessageChannel",
    "MulticastReceiver",
    "MulticastSender",
    "TcpOptions",
    "TlsConfig",
    "TlsSetupError",
    "TransportError",
    "TransportUnavailable",
    "UdpSender",
    "choose_transport",
    "connect",
    "default_per_host",
    "fd_connection_limit",
    "open_multicast_receiver",
    "sctp_available",
    "split_connection_limit",
    "start_server",
    "tls_config",
]
