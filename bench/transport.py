"""TCP-mapping benchmark: record decoder and loopback channels.

Figures (median over ``--runs`` runs):
  decode_small_rec_s   records/s decoding 100-byte DATA records fed in 64 KiB chunks
  decode_large_mb_s    MB/s decoding 1 MB DATA records fed in 64 KiB chunks
  rtt_small_us         round-trip time of one 100-byte message (send, echo, receive)
  bulk_small_msg_s     one-way messages/s, 100-byte messages, pipelined
  bulk_large_mb_s      one-way MB/s, 1 MB messages

Usage: python bench/transport.py [--json] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsplib.transport import MessageChannel, connect, start_server
from rsplib.wire.tcpmap import MAX_PAYLOAD, RecordDecoder, data_record, encode_record

HOST = "127.0.0.1"
SMALL = b"\x21" * 100
LARGE = b"\x42" * MAX_PAYLOAD
CHUNK = 65536


def bench_decode(payload: bytes, count: int) -> float:
    stream = encode_record(data_record(33, payload)) * count
    decoder = RecordDecoder()
    start = time.perf_counter()
    decoded = 0
    for i in range(0, len(stream), CHUNK):
        decoded += len(decoder.feed(stream[i : i + CHUNK]))
    elapsed = time.perf_counter() - start
    assert decoded == count
    return elapsed


async def echo(channel: MessageChannel) -> None:
    while True:
        ppid, payload = await channel.receive()
        await channel.send(ppid, payload)


async def sink(channel: MessageChannel, expected: int, done: asyncio.Future[float]) -> None:
    for _ in range(expected):
        await channel.receive()
    done.set_result(time.perf_counter())


async def bench_channels() -> dict[str, float]:
    figures: dict[str, float] = {}
    server = await start_server(HOST, 0, echo, transport="tcp-mapping")
    channel = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        await channel.send(33, SMALL)
        await channel.receive()
    figures["rtt_small_us"] = (time.perf_counter() - start) / rounds * 1e6
    await channel.close()
    server.close()
    await server.wait_closed()

    for name, payload, count in (
        ("bulk_small_msg_s", SMALL, 50_000),
        ("bulk_large_mb_s", LARGE, 200),
    ):
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        server = await start_server(
            HOST, 0, functools.partial(sink, expected=count, done=done), transport="tcp-mapping"
        )
        channel = await connect(HOST, server.addresses[0][1], transport="tcp-mapping")
        start = time.perf_counter()
        for _ in range(count):
            await channel.send(33, payload)
        end = await done
        elapsed = end - start
        if name == "bulk_small_msg_s":
            figures[name] = count / elapsed
        else:
            figures[name] = count * len(payload) / elapsed / 1e6
        await channel.close()
        server.close()
        await server.wait_closed()
    return figures


def one_run() -> dict[str, float]:
    figures = {
        "decode_small_rec_s": 200_000 / bench_decode(SMALL, 200_000),
        "decode_large_mb_s": 100 * len(LARGE) / bench_decode(LARGE, 100) / 1e6,
    }
    figures.update(asyncio.run(bench_channels()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    if args.json:
        print(json.dumps({"runs": args.runs, "median": medians}))
        return
    for key, value in medians.items():
        print(f"{key:22s} {value:14,.1f}")


if __name__ == "__main__":
    main()
