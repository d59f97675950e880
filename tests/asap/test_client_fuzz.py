"""Whatever a registrar or the announce socket sends, the client core does not raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rsplib.addressing import PeerAddress
from rsplib.asap import AsapConfig, ResolutionResult
from rsplib.wire.asap import (
    EndpointKeepAlive,
    HandleResolutionResponse,
    RegistrationResponse,
    ServerAnnounce,
)
from rsplib.wire.codec import encode_asap
from rsplib.wire.constants import PPID
from tests.asap.harness import POOL, RR, World, user_transport

VALID = [
    encode_asap(RegistrationResponse(POOL, 0x100)),
    encode_asap(HandleResolutionResponse(POOL, RR, ())),
    encode_asap(EndpointKeepAlive(5, POOL, None, True)),
    encode_asap(ServerAnnounce(5)),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= draw(st.integers(1, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=64), mutated()), max_size=6))
def test_arbitrary_input_never_raises(messages: list[bytes]) -> None:
    world = World(AsapConfig())
    registrar = world.add_registrar(3863, 0x11)
    world.client.register(POOL, 0x100, user_transport(), RR, world.now)
    world.client.resolve(POOL, 1, world.now)
    world.settle()
    conn = next(iter(registrar.conns))
    for data in messages:
        world.client.receive(conn, PPID.ASAP, data, world.now)
        world.client.receive_announce(data, PeerAddress("127.0.0.1", 4000), world.now)
        world.settle()
    world.advance(40.0)
    # Still working: a new request is answered by whichever registrar is home now.
    request = world.client.resolve(POOL, 1, world.now)
    world.advance(10.0)
    answered = {e.request_id for e in world.events_of(ResolutionResult)}
    assert request in answered
