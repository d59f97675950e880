"""The cheap constructors of rsplib.wire.fastvalues make ordinary, immutable values."""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsplib.wire.asap import EndpointKeepAlive, HandleResolutionResponse, Registration
from rsplib.wire.enrp import HandleUpdate
from rsplib.wire.fastvalues import address_int, frozen_builder, ipv4_from_int, ipv6_from_int
from rsplib.wire.params import (
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    TcpTransport,
    ip,
)

SCTP = SctpTransport(4711, (ip("10.0.0.1"), ip("fe80::1")), 0)
POLICY = PolicyParam(0x00000005, 0, 0, 7, 9, 0, 0, 0)
PE = PoolElementParam(0x1234, 0x99, 30_000, SCTP, POLICY, None)

CASES: list[tuple[type[Any], tuple[Any, ...]]] = [
    (SctpTransport, (4711, (ip("10.0.0.1"), ip("fe80::1")), 0)),
    (TcpTransport, (80, (ip("127.0.0.1"),), 1)),
    (PolicyParam, (0x00000005, 0, 0, 7, 9, 0, 0, 0)),
    (PoolElementParam, (0x1234, 0x99, 30_000, SCTP, POLICY, None)),
    (Registration, (b"pool", PE, ())),
    (HandleResolutionResponse, (b"pool", POLICY, (PE,), None, ())),
    (EndpointKeepAlive, (7, b"pool", 0x1234, True, ())),
    (HandleUpdate, (1, 2, 0, b"pool", PE, False, ())),
]


@pytest.mark.parametrize(("cls", "args"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_built_value_is_an_ordinary_instance(cls: type[Any], args: tuple[Any, ...]) -> None:
    built = frozen_builder(cls)(*args)
    reference = cls(*args)
    assert type(built) is cls
    assert built == reference and hash(built) == hash(reference)
    assert repr(built) == repr(reference)
    assert dataclasses.astuple(built) == dataclasses.astuple(reference)
    assert pickle.loads(pickle.dumps(built)) == reference
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, first, None)
    assert dataclasses.replace(built) == reference


def test_builder_refuses_what_it_cannot_build() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        x: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    for cls in (Mutable, Unslotted, Factory):
        with pytest.raises(TypeError):
            frozen_builder(cls)


@given(st.integers(0, 0xFFFFFFFF))
def test_ipv4_from_int_matches_the_constructor(value: int) -> None:
    fast, slow = ipv4_from_int(value), ipaddress.IPv4Address(value)
    assert type(fast) is ipaddress.IPv4Address
    assert fast == slow and hash(fast) == hash(slow) and str(fast) == str(slow)
    assert fast.packed == slow.packed and address_int(fast) == value
    assert {fast: 1}[slow] == 1


@given(st.integers(0, (1 << 128) - 1))
def test_ipv6_from_int_matches_the_constructor(value: int) -> None:
    fast, slow = ipv6_from_int(value), ipaddress.IPv6Address(value)
    assert type(fast) is ipaddress.IPv6Address
    assert fast == slow and hash(fast) == hash(slow) and str(fast) == str(slow)
    assert fast.scope_id is None and fast.ipv4_mapped == slow.ipv4_mapped
    assert address_int(fast) == value
