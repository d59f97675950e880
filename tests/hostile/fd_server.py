"""An echo server on the TCP mapping in a process with few file descriptors.

``python -m tests.hostile.fd_server OPEN_FILES`` lowers its RLIMIT_NOFILE, listens on
127.0.0.1 (ephemeral port, no connection limit of its own), prints ``listening PORT`` and
echoes every message until SIGTERM. The test floods it with connections to see how running
out of descriptors is handled.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys

from rsplib.transport import ChannelClosed, MessageChannel, start_server


async def echo(channel: MessageChannel) -> None:
    try:
        while True:
            ppid, data = await channel.receive()
            await channel.send(ppid, data)
    except ChannelClosed:
        return


async def main() -> None:
    server = await start_server("127.0.0.1", 0, echo, transport="tcp-mapping")
    print(f"listening {server.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    count = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
