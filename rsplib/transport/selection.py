"""Picking a transport ("auto", "sctp", "tcp-mapping") and the two entry points."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rsplib.transport import sctp_kernel
from rsplib.transport.budget import BufferBudget
from rsplib.transport.channel import (
    AUTO,
    DEFAULT_HEARTBEAT,
    DEFAULT_LIMITS,
    DEFAULT_TCP_OPTIONS,
    SCTP,
    TCP_MAPPING,
    TRANSPORT_CHOICES,
    ChannelHandler,
    ChannelServer,
    FlowLimits,
    HeartbeatConfig,
    MessageChannel,
    TcpOptions,
    TransportUnavailable,
)
from rsplib.transport.sctp_kernel import SctpServer, connect_sctp
from rsplib.transport.tcp_mapping import TcpMappingServer, connect_tcp_mapping
from rsplib.transport.tls import TlsConfig

logger = logging.getLogger("rsplib.transport")

_fallback_logged = False


def sctp_available() -> bool:
    """Is kernel SCTP usable here? (Probed once per process.)"""
    return sctp_kernel.sctp_available()


def _no_tls_over_sctp(tls: TlsConfig | None) -> None:
    if tls is not None:
        raise TransportUnavailable(
            "TLS is available over the TCP mapping only (choose transport 'tcp')"
        )


def choose_transport(requested: str) -> str:
    """Resolve ``requested`` to "sctp" or "tcp-mapping".

    "auto" takes kernel SCTP when the kernel has it, else the TCP mapping (and
    says so once per process); "sctp" without kernel support is an error.
    """
    global _fallback_logged
    if requested not in TRANSPORT_CHOICES:
        choices = ", ".join(TRANSPORT_CHOICES)
        raise ValueError(f"unknown transport {requested!r} (choose one of {choices})")
    if requested == TCP_MAPPING:
        return TCP_MAPPING
    if sctp_available():
        return SCTP
    if requested == SCTP:
        raise TransportUnavailable(
            "kernel SCTP is not available on this machine (socket(AF_INET, SOCK_STREAM, "
            "IPPROTO_SCTP) fails; is the sctp kernel module loaded?); "
            "use transport 'tcp-mapping' or 'auto'"
        )
    if not _fallback_logged:
        _fallback_logged = True
        logger.info("kernel SCTP is unavailable; using the TCP mapping")
    return TCP_MAPPING


async def connect(
    host: str,
    port: int,
    *,
    transport: str = AUTO,
    heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
    timeout: float = 5.0,
    local_address: tuple[str, int] | None = None,
    tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
    limits: FlowLimits = DEFAULT_LIMITS,
    tls: TlsConfig | None = None,
    shared_port: bool = False,
) -> MessageChannel:
    """Open a message channel to ``host:port``.

    ``shared_port`` (SCTP only): ``local_address`` is the port of our own listener
    started with ``shared_port=True``; the association then comes from that port.

    Raises ``OSError`` (``TimeoutError`` after ``timeout`` seconds,
    ``ConnectionRefusedError``, ``ssl.SSLError`` when the peer's certificate is not
    acceptable, ...) when the peer cannot be reached, and ``TransportUnavailable`` for
    "sctp" on a kernel without SCTP or TLS over SCTP.
    """
    if choose_transport(transport) == SCTP:
        _no_tls_over_sctp(tls)
        return await connect_sctp(
            host,
            port,
            heartbeat=heartbeat,
            limits=limits,
            timeout=timeout,
            local_address=local_address,
            shared_port=shared_port,
        )
    return await connect_tcp_mapping(
        host,
        port,
        heartbeat=heartbeat,
        tcp_options=tcp_options,
        limits=limits,
        timeout=timeout,
        local_address=local_address,
        tls=tls,
    )


async def start_server(
    host: str | Sequence[str] | None,
    port: int,
    handler: ChannelHandler,
    *,
    transport: str = AUTO,
    heartbeat: HeartbeatConfig = DEFAULT_HEARTBEAT,
    max_connections: int | None = None,
    max_per_host: int | None = None,
    max_rate_per_host: float | None = None,
    tcp_options: TcpOptions = DEFAULT_TCP_OPTIONS,
    limits: FlowLimits = DEFAULT_LIMITS,
    tls: TlsConfig | None = None,
    budget: BufferBudget | None = None,
    shared_port: bool = False,
) -> ChannelServer:
    """Listen on ``host:port`` (port 0: ephemeral) and run ``handler`` per channel.

    ``host`` may list several addresses: over SCTP they form one multi-homed endpoint
    (the port is shared; peers get every address as a path); the TCP mapping listens
    on each of them and needs a fixed port for that.

    The handler's channel is closed when the handler returns. Connections
    beyond ``max_connections``, beyond ``max_per_host`` from one host, or
    beyond ``max_rate_per_host`` new ones per second from one host, are reset
    right after being accepted. ``tls`` requires every peer to present a
    certificate of the configured CA (TCP mapping only); ``budget`` bounds the
    buffers of all channels sharing it. ``shared_port`` (SCTP only): outbound
    associations may use this port too.
    """
    server: TcpMappingServer | SctpServer
    if choose_transport(transport) == SCTP:
        _no_tls_over_sctp(tls)
        server = SctpServer(
            handler,
            heartbeat=heartbeat,
            limits=limits,
            max_connections=max_connections,
            max_per_host=max_per_host,
            max_rate_per_host=max_rate_per_host,
            shared_port=shared_port,
        )
    else:
        server = TcpMappingServer(
            handler,
            heartbeat=heartbeat,
            tcp_options=tcp_options,
            limits=limits,
            max_connections=max_connections,
            max_per_host=max_per_host,
            max_rate_per_host=max_rate_per_host,
            tls=tls,
            budget=budget,
        )
    await server.start(host, port)
    return server
