"""Property tests: every message round-trips; no input makes a decoder raise anything
but ProtocolError (arbitrary bytes, and valid messages with flipped bits, cut ends and
edited length fields).

The normal run checks 21,000 examples; ``--run-slow`` adds longer runs (80,000 examples).
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsplib.wire import asap, codec, enrp
from rsplib.wire.constants import UpdateAction
from rsplib.wire.errors import ProtocolError
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import (
    DccpTransport,
    ErrorCauseItem,
    IPAddress,
    OperationError,
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    ServerInformation,
    TcpTransport,
    Transport,
    UdpLiteTransport,
    UdpTransport,
)
from rsplib.wire.reference import asap as reference_asap
from rsplib.wire.reference import enrp as reference_enrp
from tests.wire.vectors import load_vector, vector_names

U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
PE_ID = st.integers(1, 0xFFFFFFFF)
HANDLES = st.binary(min_size=1, max_size=32)


def _not_mapped(address: IPAddress) -> bool:
    # IPv4-mapped IPv6 addresses are written as IPv4 TLVs, so they come back as IPv4.
    return not (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped)


ADDRESSES: st.SearchStrategy[IPAddress] = st.one_of(
    st.ip_addresses(v=4), st.ip_addresses(v=6).filter(_not_mapped)
)
ONE_ADDRESS = st.tuples(ADDRESSES)

TRANSPORTS: st.SearchStrategy[Transport] = st.one_of(
    st.builds(SctpTransport, U16, st.lists(ADDRESSES, min_size=1, max_size=3).map(tuple), U16),
    st.builds(TcpTransport, U16, ONE_ADDRESS, U16),
    st.builds(UdpTransport, U16, ONE_ADDRESS),
    st.builds(UdpLiteTransport, U16, ONE_ADDRESS),
    st.builds(DccpTransport, U16, ONE_ADDRESS, U32),
)


@st.composite
def policies(draw: st.DrawFn) -> PolicyParam:
    ptype = draw(st.sampled_from(sorted(PolicyParam.POLICY_FIELDS)))
    names = PolicyParam.POLICY_FIELDS[ptype]
    return PolicyParam(ptype, **{name: draw(U32) for name in names})


def pool_elements(*, with_asap: bool | None) -> st.SearchStrategy[PoolElementParam]:
    asap_transport: st.SearchStrategy[Transport | None]
    if with_asap is None:
        asap_transport = st.none() | TRANSPORTS
    else:
        asap_transport = TRANSPORTS if with_asap else st.none()
    return st.builds(PoolElementParam, PE_ID, U32, U32, TRANSPORTS, policies(), asap_transport)


ASAP_PES = st.lists(pool_elements(with_asap=False), max_size=3).map(tuple)
ERRORS = st.builds(
    OperationError,
    st.lists(st.builds(ErrorCauseItem, U16, st.binary(max_size=12)), max_size=3).map(tuple),
)
SERVER_INFOS = st.builds(ServerInformation, U32, TRANSPORTS)

ASAP_MESSAGES: st.SearchStrategy[asap.AsapMessage] = st.one_of(
    st.builds(asap.Registration, HANDLES, pool_elements(with_asap=None)),
    st.builds(asap.RegistrationResponse, HANDLES, U32, st.none() | ERRORS),
    st.builds(asap.Deregistration, HANDLES, U32),
    st.builds(asap.DeregistrationResponse, HANDLES, U32, st.none() | ERRORS),
    st.builds(asap.HandleResolution, HANDLES, st.none() | U32),
    st.builds(asap.HandleResolutionResponse, HANDLES, st.none() | policies(), ASAP_PES),
    st.builds(asap.HandleResolutionResponse, HANDLES, error=ERRORS),
    st.builds(asap.EndpointKeepAlive, U32, HANDLES, st.none() | U32, st.booleans()),
    st.builds(asap.EndpointKeepAliveAck, HANDLES, U32),
    st.builds(asap.EndpointUnreachable, HANDLES, U32),
    st.builds(asap.ServerAnnounce, U32, st.lists(TRANSPORTS, max_size=3).map(tuple)),
    st.builds(asap.Cookie, st.binary(max_size=100)),
    st.builds(asap.CookieEcho, st.binary(max_size=100)),
    st.builds(asap.BusinessCard, HANDLES, st.none() | policies(), ASAP_PES),
    st.builds(asap.AsapError, ERRORS),
)

HT_ENTRIES = st.lists(
    st.tuples(HANDLES, st.lists(pool_elements(with_asap=True), min_size=1, max_size=2).map(tuple)),
    max_size=2,
).map(tuple)

ENRP_MESSAGES: st.SearchStrategy[enrp.EnrpMessage] = st.one_of(
    st.builds(enrp.Presence, U32, U32, U16, SERVER_INFOS, st.booleans()),
    st.builds(enrp.HandleTableRequest, U32, U32, st.booleans()),
    st.builds(enrp.HandleTableResponse, U32, U32, HT_ENTRIES, st.booleans(), st.booleans()),
    st.builds(
        enrp.HandleUpdate,
        U32,
        U32,
        st.sampled_from(UpdateAction),
        HANDLES,
        pool_elements(with_asap=True),
        st.booleans(),
    ),
    st.builds(enrp.ListRequest, U32, U32),
    st.builds(enrp.ListResponse, U32, U32, st.lists(SERVER_INFOS, max_size=3).map(tuple)),
    st.builds(enrp.InitTakeover, U32, U32, U32),
    st.builds(enrp.InitTakeoverAck, U32, U32, U32),
    st.builds(enrp.TakeoverServer, U32, U32, U32),
    st.builds(enrp.EnrpError, U32, U32, ERRORS),
)


def _fast(n: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- round trips


def _round_trip_asap(msg: asap.AsapMessage) -> None:
    data = codec.encode_asap(msg)
    assert len(data) % 4 == 0
    assert int.from_bytes(data[2:4], "big") == len(data)
    assert codec.decode_asap(data) == msg
    assert codec.encode_asap(codec.decode_asap(data)) == data


def _round_trip_enrp(msg: enrp.EnrpMessage) -> None:
    data = codec.encode_enrp(msg)
    assert len(data) % 4 == 0
    assert int.from_bytes(data[2:4], "big") == len(data)
    assert codec.decode_enrp(data) == msg
    assert codec.encode_enrp(codec.decode_enrp(data)) == data


@_fast(1500)
@given(ASAP_MESSAGES)
def test_asap_round_trip(msg: asap.AsapMessage) -> None:
    _round_trip_asap(msg)


@_fast(1500)
@given(ENRP_MESSAGES)
def test_enrp_round_trip(msg: enrp.EnrpMessage) -> None:
    _round_trip_enrp(msg)


# --------------------------------------------------------------------------- robustness

LIMITS = [DecodeLimits(), DecodeLimits(max_parameters=8, max_addresses=2, max_nesting_depth=3)]


DECODERS = (
    codec.decode_asap,
    codec.decode_enrp,
    reference_asap.decode_asap,
    reference_enrp.decode_enrp,
)


def _decode_everything(data: bytes) -> None:
    """Every decoder under both limit sets: anything but ProtocolError fails the test."""
    for limits in LIMITS:
        for decode in DECODERS:
            with contextlib.suppress(ProtocolError):
                decode(data, limits)


def _with_length_field(body: bytes) -> bytes:
    """A plausible message: random type/flags/body with a correct Length field."""
    return body[:2] + (len(body)).to_bytes(2, "big") + body[4:] if len(body) >= 4 else body


@_fast(5000)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    _decode_everything(data)
    _decode_everything(_with_length_field(data))


# Mutations start from the golden vectors: drawing whole messages for every
# example would make generation, not decoding, the cost of this test.
CORPUS = sorted(load_vector(kind, name) for kind in ("asap", "enrp") for name in vector_names(kind))


def mutate(data: bytes, seed: int) -> bytes:
    """``data`` with 1-4 bit flips, cuts, 16-bit field edits or insertions.

    Driven by one seed rather than by many Hypothesis draws: per-draw overhead
    would otherwise dominate and cap the number of examples per second.
    """
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        op = rng.choice(("flip", "cut", "length16", "insert"))
        at = rng.randrange(len(out))
        if op == "flip":
            out[at] ^= 1 << rng.randrange(8)
        elif op == "cut":
            del out[at:]
        elif op == "length16":
            # every TLV length and the message length sit at even offsets
            at &= ~1
            choices = (0, 1, 3, 4, 5, 8, len(out), len(out) + 4, 0xFFFF, rng.randrange(0x10000))
            out[at : at + 2] = rng.choice(choices).to_bytes(2, "big")
        else:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
    if rng.random() < 0.5:
        out = bytearray(_with_length_field(bytes(out)))
    return bytes(out)


SEEDS = st.integers(0, 2**64 - 1)


@_fast(13000)
@given(st.sampled_from(CORPUS), SEEDS)
def test_mutated_messages_raise_only_protocol_errors(base: bytes, seed: int) -> None:
    _decode_everything(mutate(base, seed))


def test_mutation_changes_messages() -> None:
    # guards the property above against a mutator that silently does nothing
    changed = sum(mutate(base, seed) != base for base in CORPUS for seed in range(20))
    assert changed > 0.9 * 20 * len(CORPUS)


ENCODED = st.one_of(ASAP_MESSAGES.map(codec.encode_asap), ENRP_MESSAGES.map(codec.encode_enrp))


# --------------------------------------------------------------------------- long runs


@pytest.mark.slow
@pytest.mark.timeout(3600)
@_fast(20000)
@given(st.one_of(ASAP_MESSAGES.map(lambda m: ("a", m)), ENRP_MESSAGES.map(lambda m: ("e", m))))
def test_round_trip_long(item: tuple[str, Any]) -> None:
    kind, msg = item
    if kind == "a":
        _round_trip_asap(msg)
    else:
        _round_trip_enrp(msg)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@_fast(60000)
@given(st.one_of(st.sampled_from(CORPUS), ENCODED), SEEDS, st.binary(max_size=400))
def test_robustness_long(base: bytes, seed: int, junk: bytes) -> None:
    _decode_everything(mutate(base, seed))
    _decode_everything(junk)
