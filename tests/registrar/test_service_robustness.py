"""Robustness of a real rsp-registrar process against random and mutated input.

10,000 messages (mutated valid ASAP/ENRP messages, random bytes, wrong PPIDs, broken
TCP-mapping framing) over TCP-mapping connections to its ASAP and ENRP endpoints. The
registrar must stay up, keep a well-behaved PE registered, answer a correct handle
resolution afterwards, keep its log bounded and its memory from growing round after round.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from rsplib.transport import ChannelClosed, HeartbeatConfig, connect
from rsplib.wire.asap import (
    AsapError,
    Cookie,
    Deregistration,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    Registration,
    ServerAnnounce,
    encode_asap,
)
from rsplib.wire.constants import PPID, PolicyType, UpdateAction
from rsplib.wire.enrp import (
    HandleTableRequest,
    HandleUpdate,
    InitTakeover,
    ListRequest,
    Presence,
    encode_enrp,
)
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    ServerInformation,
    TcpTransport,
)
from rsplib.wire.tcpmap import FramingError, check_inner_length
from tests.registrar.service_helpers import (
    AsapClient,
    ProcessPool,
    RegistrarProcess,
    make_pe,
    registrar_args,
)

MESSAGES = 10_000
ROUNDS = 5
GOOD_POOL = b"GoodPool"
GOOD_PE = 0x600D
FUZZ_POOL = b"FuzzPool"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessPool]:
    pool = ProcessPool(tmp_path)
    yield pool
    pool.close()


def _seeds() -> tuple[list[bytes], list[bytes]]:
    """Valid ASAP and ENRP messages to mutate (ids differ from the good PE's)."""
    tcp = TcpTransport(port=9000, addresses=(ipaddress.ip_address("127.0.0.1"),))
    pe = make_pe(0x1234, policy=PolicyParam(PolicyType.LEAST_USED, load=5))
    pe_with_asap = make_pe(0x4321)
    pe_with_asap = type(pe_with_asap)(
        identifier=pe_with_asap.identifier,
        home_registrar_id=0x99,
        registration_life=1000,
        user_transport=pe_with_asap.user_transport,
        policy=pe_with_asap.policy,
        asap_transport=tcp,
    )
    asap = [
        Registration(FUZZ_POOL, pe),
        Registration(GOOD_POOL, make_pe(0x777)),
        HandleResolution(GOOD_POOL, 3),
        HandleResolution(FUZZ_POOL),
        Deregistration(GOOD_POOL, GOOD_PE),  # must be refused: not the registering conn
        Deregistration(FUZZ_POOL, 0x1234),
        EndpointKeepAliveAck(FUZZ_POOL, 0x1234),
        EndpointUnreachable(GOOD_POOL, 0x9999),
        ServerAnnounce(0x55, (tcp,)),
        Cookie(b"c" * 16),
        AsapError(OperationError.of(0x0003, b"x")),
    ]
    info = ServerInformation(0x77, tcp)
    enrp = [
        Presence(0x77, 0, 0xFFFF, info, True),
        HandleTableRequest(0x77, 0, True),
        HandleUpdate(0x77, 0, UpdateAction.ADD_PE, FUZZ_POOL, pe_with_asap),
        ListRequest(0x77, 0),
        InitTakeover(0x77, 0, 0x12345),
    ]
    return [encode_asap(m) for m in asap], [encode_enrp(m) for m in enrp]


def mutate(rng: random.Random, seed: bytes) -> tuple[bytes, bool]:
    """A mutated message and whether its own length field still matches (framing ok)."""
    data = bytearray(seed)
    choice = rng.random()
    if choice < 0.45:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice < 0.6:
        del data[rng.randrange(4, len(data) + 1) :]
    elif choice < 0.7:
        data += rng.randbytes(rng.randint(1, 64))
    elif choice < 0.8:
        struct.pack_into("!H", data, 4, rng.randrange(0x10000))  # first TLV type
    elif choice < 0.9:
        data = bytearray(rng.randbytes(rng.randint(4, 200)))
        data[0] = rng.randrange(1, 16)
    else:
        data[0] = rng.randrange(256)
    if len(data) < 4:
        data += bytes(4 - len(data))
    # Most messages keep a consistent length field so they reach the registrar's decoders;
    # some do not, which is a framing error that closes the connection.
    consistent = rng.random() < 0.995
    if consistent:
        struct.pack_into("!H", data, 2, len(data) & 0xFFFF)
    return bytes(data), consistent or struct.unpack_from("!H", data, 2)[0] == len(data)


def _breaks_framing(ppid: int, data: bytes) -> bool:
    try:
        check_inner_length(ppid, data)
    except FramingError:
        return True
    return False


async def _closed(channel, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not channel.closed:
        assert loop.time() < deadline, "a framing error did not close the connection"
        await asyncio.sleep(0.005)


async def fuzz_round(registrar: RegistrarProcess, rng: random.Random, count: int) -> dict[str, int]:
    asap_seeds, enrp_seeds = _seeds()
    stats = {"sent": 0, "reconnects": 0, "answers": 0}
    channels = {}

    async def channel_for(kind: str):  # type: ignore[no-untyped-def]
        ch = channels.get(kind)
        if ch is None or ch.closed:
            if ch is not None:
                stats["reconnects"] += 1
            address = registrar.asap if kind == "asap" else registrar.enrp
            ch = await connect(*address, transport="tcp-mapping", heartbeat=HeartbeatConfig(1.0, 3))
            channels[kind] = ch
            asyncio.get_running_loop().create_task(drain(ch))
        return ch

    async def drain(ch) -> None:  # type: ignore[no-untyped-def]
        try:
            while True:
                await ch.receive()
                stats["answers"] += 1
        except ChannelClosed:
            pass

    for _ in range(count):
        kind = "asap" if rng.random() < 0.7 else "enrp"
        seeds = asap_seeds if kind == "asap" else enrp_seeds
        data, framed = mutate(rng, rng.choice(seeds))
        ppid = (
            (PPID.ASAP if kind == "asap" else PPID.ENRP)
            if rng.random() < 0.85
            else rng.choice([PPID.ASAP, PPID.ENRP, 0, 32, 1234])
        )
        ch = await channel_for(kind)
        try:
            await ch.send(int(ppid), data)
        except ChannelClosed:
            # The registrar closed it (framing error); the next message opens a new one.
            channels.pop(kind, None)
            stats["reconnects"] += 1
        if not framed and _breaks_framing(int(ppid), data):
            # An ASAP/ENRP record whose message length disagrees is a framing error: the
            # registrar must close the connection. Wait for that, so that the next messages
            # go to a new connection instead of into one that is already being closed (how
            # many would be lost that way depends only on how loaded the machine is).
            await _closed(ch, 2.0)
        else:
            await asyncio.sleep(0)
        stats["sent"] += 1
    await asyncio.sleep(0.3)  # let the answers come back
    for ch in channels.values():
        ch.abort()
    return stats


def test_random_and_mutated_messages_do_not_hurt_the_registrar(procs: ProcessPool) -> None:
    registrar = procs.registrar(registrar_args(0x0F0F, extra=["--loglevel", "info"]))
    registrar.wait_ready()
    rng = random.Random(20240607)

    async def scenario() -> None:
        good = await AsapClient.open(registrar.asap)
        response = await good.register(GOOD_POOL, make_pe(GOOD_PE, port=45000))
        assert not response.rejected
        rss: list[int] = []
        totals = {"sent": 0, "reconnects": 0, "answers": 0}
        for _ in range(ROUNDS):
            stats = await fuzz_round(registrar, rng, MESSAGES // ROUNDS)
            for key, value in stats.items():
                totals[key] += value
            assert registrar.alive(), registrar.log_text()[-3000:]
            rss.append(registrar.rss_kb())
        assert totals["sent"] == MESSAGES
        # The fuzz reached the decoders (answers: errors, responses) and also broke the
        # framing now and then (reconnects).
        assert totals["answers"] > 500, totals
        assert totals["reconnects"] > 10, totals

        # Still serving: the good PE is there and a correct resolution is answered.
        answer = await good.resolve(GOOD_POOL, 0xFFFFFFFF)
        assert answer.error is None
        assert GOOD_PE in {pe.identifier for pe in answer.pool_elements}
        fresh = await AsapClient.open(registrar.asap)
        again = await fresh.resolve(GOOD_POOL)
        assert again.error is None and again.pool_elements
        await fresh.close()
        await good.close()

        # Memory: after the first round (caches, interned objects) it must level off.
        growth_kb = rss[-1] - rss[0]
        assert growth_kb < 12 * 1024, f"RSS per round (kB): {rss}"

    asyncio.run(scenario())
    # Logged once per connection, not once per bad message.
    log_size = registrar.log_path.stat().st_size
    assert log_size < 2_000_000, log_size
    assert registrar.stop() == 0
