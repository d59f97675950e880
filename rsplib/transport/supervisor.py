"""Per-server bookkeeping shared by all transports: the open channels and their handler tasks."""

from __future__ import annotations

import asyncio
import logging

from rsplib.transport.channel import ChannelClosed, ChannelHandler, MessageChannel

logger = logging.getLogger("rsplib.transport")


class ChannelSupervisor:
    """Runs one handler task per admitted channel (limits are the servers' Admission)."""

    def __init__(self, handler: ChannelHandler) -> None:
        self._handler = handler
        self.channels: set[MessageChannel] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, channel: MessageChannel) -> None:
        """Start the handler for ``channel``."""
        self.channels.add(channel)
        task = asyncio.get_running_loop().create_task(self._run(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
