"""Per-server bookkeeping shared by all transports: connection limit, handler tasks."""

from __future__ import annotations

import asyncio
import logging

from rsplib.transport.channel import ChannelClosed, ChannelHandler, MessageChannel

logger = logging.getLogger("rsplib.transport")


class ChannelSupervisor:
    """Admits channels up to ``max_connections`` and runs one handler task each."""

    def __init__(self, handler: ChannelHandler, max_connections: int | None) -> None:
        if max_connections is not None and max_connections < 0:
            raise ValueError("max_connections must be >= 0 or None")
        self._handler = handler
        self._max_connections = max_connections
        self.channels: set[MessageChannel] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, channel: MessageChannel) -> bool:
        """Start the handler for ``channel``, or abort it when at the limit."""
        limit = self._max_connections
        if limit is not None and len(self.channels) >= limit:
            logger.warning(
                "refusing %s connection from %s:%d: limit of %d connections reached",
                channel.transport_name,
                *channel.peer_address,
                limit,
            )
            channel.abort()
            return False
        self.channels.add(channel)
        task = asyncio.get_running_loop().create_task(self._run(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def forget(self, channel: MessageChannel) -> None:
        """The connection is gone; it no longer counts against the limit."""
        self.channels.discard(channel)

    def abort_all(self) -> None:
        for channel in list(self.channels):
            channel.abort()
        for task in list(self._tasks):
            task.cancel()

    async def wait_idle(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(self, channel: MessageChannel) -> None:
        try:
            await self._handler(channel)
        except ChannelClosed:
            pass
        except Exception:
            logger.exception("handler for %s:%d failed", *channel.peer_address)
        finally:
            await channel.close()
