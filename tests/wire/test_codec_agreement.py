"""The codec rsplib runs (rsplib.wire.codec) against the reference codec (rsplib.wire.reference).

For every message type and every parameter: the same bytes when encoding, the same
values (and skipped-to-report TLVs) or the same error (class, cause, text, offending
bytes) when decoding, with cold and warm caches and under several limit sets; on
valid messages, on mutated ones and on arbitrary bytes. Then the fast paths'
own promises: the usual shapes take them, and a message they turn down is built
by nobody but the reference, once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsplib.wire import codec, fastdecode, fastencode, layouts
from rsplib.wire.asap import (
    AsapMessage,
    Deregistration,
    DeregistrationResponse,
    EndpointKeepAlive,
    EndpointKeepAliveAck,
    EndpointUnreachable,
    HandleResolution,
    HandleResolutionResponse,
    Registration,
    RegistrationResponse,
)
from rsplib.wire.constants import AsapType, EnrpType, ParamType, PolicyType, UpdateAction
from rsplib.wire.enrp import EnrpMessage, HandleTableResponse, HandleUpdate
from rsplib.wire.errors import ProtocolError
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import (
    OperationError,
    PolicyParam,
    PoolElementParam,
    SctpTransport,
    TcpTransport,
    Transport,
    UdpTransport,
    ip,
)
from rsplib.wire.reference import asap as reference_asap
from rsplib.wire.reference import enrp as reference_enrp
from rsplib.wire.reference import tlv as reference_tlv
from tests.wire.test_properties import (
    ASAP_MESSAGES,
    ENRP_MESSAGES,
    HANDLES,
    SEEDS,
    TRANSPORTS,
    U16,
    U32,
    mutate,
    policies,
    pool_elements,
)
from tests.wire.vectors import load_vector, vector_names

LIMITS = [
    DecodeLimits(),
    DecodeLimits(max_parameters=8, max_addresses=2, max_nesting_depth=3),
    DecodeLimits(max_pool_elements=1, max_pool_handle=4, max_nesting_depth=2),
    DecodeLimits(max_addresses=1, max_pool_elements=0, max_message_size=64),
    DecodeLimits(max_parameters=1, max_nesting_depth=1),
]

Decode = Callable[[bytes, DecodeLimits], Any]
PAIRS: dict[str, tuple[Decode, Decode]] = {
    "asap": (codec.decode_asap, reference_asap.decode_asap),
    "enrp": (codec.decode_enrp, reference_enrp.decode_enrp),
}


def _outcome(decode: Decode, data: bytes, limits: DecodeLimits) -> object:
    """The decoded value with its skipped TLVs, or everything about the error."""
    try:
        value = decode(data, limits)
    except ProtocolError as exc:
        return (type(exc), exc.cause, str(exc), exc.offending, getattr(exc, "report", None))
    return value, value.unrecognized


def _agree(data: bytes) -> None:
    """Both protocols' decoders agree on ``data`` under every limit set, with caches
    cold and warmed under the same or other limits (both orders)."""
    for fast, reference in PAIRS.values():
        for order in (LIMITS, LIMITS[::-1]):
            codec.clear_caches()
            for limits in order:
                expected = _outcome(reference, data, limits)
                for _ in range(2):
                    assert _outcome(fast, data, limits) == expected


Encode = Callable[[Any], bytes]


def _encoded_alike(encode: Encode, reference: Encode, value: Any) -> bytes | None:
    """Both encoders give the same bytes, or both refuse with the same exception class."""
    try:
        expected: bytes | type[Exception] = reference(value)
    except (ValueError, TypeError) as exc:
        expected = type(exc)
    for _ in range(2):  # cold, then warm caches
        try:
            got: bytes | type[Exception] = encode(value)
        except (ValueError, TypeError) as exc:
            got = type(exc)
        assert got == expected
    return expected if isinstance(expected, bytes) else None


RR = PolicyParam(PolicyType.ROUND_ROBIN)
USUAL_PE = PoolElementParam(5, 6, 7, SctpTransport(3863, (ip("10.0.0.1"), ip("fd00::1"))), RR)
LOOPBACK_TCP = TcpTransport(1, (ip("::1"),))

_SETTINGS = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- coverage


def _nested_codes(data: bytes) -> Iterator[int]:
    """Parameter codes in a TLV region, descending into the parameters that nest others."""
    nested = {ParamType.POOL_ELEMENT: 12, ParamType.SERVER_INFORMATION: 4}
    for param in reference_tlv.iter_raw_params(data):
        yield param.code
        if param.code in reference_tlv.TRANSPORT_CODES:
            yield from _nested_codes(
                param.value[8 if param.code == ParamType.DCCP_TRANSPORT else 4 :]
            )
        elif param.code in nested:
            yield from _nested_codes(param.value[nested[param.code] :])


#: Bytes of fixed fields between the header and the parameters, per message type.
FIXED_FIELDS: dict[str, dict[int, int]] = {
    "asap": {AsapType.ENDPOINT_KEEP_ALIVE: 4, AsapType.SERVER_ANNOUNCE: 4},
    "enrp": {
        **{t: 8 for t in EnrpType},
        EnrpType.HANDLE_UPDATE: 12,
        EnrpType.INIT_TAKEOVER: 12,
        EnrpType.INIT_TAKEOVER_ACK: 12,
        EnrpType.TAKEOVER_SERVER: 12,
    },
}


def _server_announce(transport_vector: str) -> bytes:
    """A Server Announce carrying one of the transport parameter vectors."""
    body = (1).to_bytes(4, "big") + load_vector("params", transport_vector)
    return bytes([AsapType.SERVER_ANNOUNCE, 0]) + (4 + len(body)).to_bytes(2, "big") + body


#: The golden message vectors, plus a message for each transport vector (the message
#: vectors carry no DCCP or UDP-Lite transport).
SAMPLES: list[tuple[str, bytes]] = sorted(
    [(kind, load_vector(kind, name)) for kind in ("asap", "enrp") for name in vector_names(kind)]
    + [("asap", _server_announce(n)) for n in vector_names("params") if n.endswith("_transport")]
)


def test_the_samples_cover_every_message_type_and_parameter() -> None:
    """The samples, which the tests below start from, hold every message type of both
    protocols and every parameter type (the strategies draw all of them too)."""
    types: dict[str, set[int]] = {"asap": set(), "enrp": set()}
    codes: set[int] = set()
    for kind, data in SAMPLES:
        types[kind].add(data[0])
        codes.update(_nested_codes(data[4 + FIXED_FIELDS[kind].get(data[0], 0) :]))
    assert types["asap"] == set(AsapType)
    assert types["enrp"] == set(EnrpType)
    assert codes == set(ParamType)


def test_every_sample_decodes_alike() -> None:
    for _, data in SAMPLES:
        _agree(data)


def test_every_sample_decodes_alike_with_any_one_flag_set() -> None:
    """Flags change what a message means (R, H, M, T...): each bit, on and off."""
    for _, data in SAMPLES:
        for bit in range(8):
            _agree(data[:1] + bytes([data[1] ^ 1 << bit]) + data[2:])


# --------------------------------------------------------------------------- messages


@_SETTINGS
@given(ASAP_MESSAGES)
def test_asap_messages_encode_and_decode_alike(msg: AsapMessage) -> None:
    codec.clear_caches()
    data = _encoded_alike(codec.encode_asap, reference_asap.encode_asap, msg)
    assert data is not None
    _agree(data)


@_SETTINGS
@given(ENRP_MESSAGES)
def test_enrp_messages_encode_and_decode_alike(msg: EnrpMessage) -> None:
    codec.clear_caches()
    data = _encoded_alike(codec.encode_enrp, reference_enrp.encode_enrp, msg)
    assert data is not None
    _agree(data)


@_SETTINGS
@given(st.one_of(ASAP_MESSAGES.map(codec.encode_asap), ENRP_MESSAGES.map(codec.encode_enrp)), SEEDS)
def test_mutated_messages_decode_alike(data: bytes, seed: int) -> None:
    _agree(mutate(data, seed))


@_SETTINGS
@given(st.sampled_from([data for _, data in SAMPLES]), SEEDS)
def test_mutated_samples_decode_alike(data: bytes, seed: int) -> None:
    _agree(mutate(data, seed))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_decode_alike(data: bytes) -> None:
    _agree(data)
    _agree(data[:2] + len(data).to_bytes(2, "big") + data[4:] if len(data) >= 4 else data)


# Fields out of range: both encoders refuse (ValueError), for every message the codec
# encodes itself.
def _pe(
    transport: Transport = LOOPBACK_TCP, policy: PolicyParam = RR, pe_id: int = 1
) -> PoolElementParam:
    return PoolElementParam(pe_id, 0, 0, transport, policy)


OUT_OF_RANGE: list[AsapMessage | EnrpMessage] = [
    Registration(b"p", _pe(pe_id=1 << 32)),
    Registration(b"p", _pe(TcpTransport(1 << 16, (ip("::1"),)))),
    Registration(b"p", _pe(TcpTransport(1, (ip("::1"), ip("::2"))))),
    Registration(b"p", _pe(SctpTransport(1, ()))),
    Registration(b"p", _pe(policy=PolicyParam(7))),
    Registration(b"p", _pe(policy=PolicyParam(PolicyType.WEIGHTED_ROUND_ROBIN, weight=-1))),
    Registration(bytes(70000), _pe()),
    EndpointKeepAlive(1 << 32, b"p"),
    EndpointKeepAlive(1, b"p", identifier=-1),
    HandleResolutionResponse(b"p", RR, (USUAL_PE,), error=OperationError.of(1)),
    HandleUpdate(1, 1 << 32, UpdateAction.ADD_PE, b"p", _pe(UdpTransport(1, (ip("::1"),)))),
    HandleTableResponse(1, 2, ((b"p", ()),)),
]


@pytest.mark.parametrize("msg", OUT_OF_RANGE, ids=lambda m: type(m).__name__)
def test_encoders_refuse_alike(msg: AsapMessage | EnrpMessage) -> None:
    codec.clear_caches()
    if isinstance(msg, HandleUpdate | HandleTableResponse):
        _encoded_alike(codec.encode_enrp, reference_enrp.encode_enrp, msg)
    else:
        _encoded_alike(codec.encode_asap, reference_asap.encode_asap, msg)


# --------------------------------------------------------------------------- parameters

FAST_ENCODERS: list[
    tuple[Callable[[Any], bytes], Callable[[Any], bytes], st.SearchStrategy[Any]]
] = [
    (fastencode.encode_pool_handle, reference_tlv.encode_pool_handle, st.binary(max_size=40)),
    (fastencode.encode_pe_identifier, reference_tlv.encode_pe_identifier, st.integers(-1, 1 << 33)),
    (fastencode.encode_policy, reference_tlv.encode_policy, policies()),
    (fastencode.encode_transport, reference_tlv.encode_transport, TRANSPORTS),
    (
        fastencode.encode_pool_element,
        reference_tlv.encode_pool_element,
        pool_elements(with_asap=None),
    ),
]


@_SETTINGS
@given(st.data())
def test_parameter_encoders_agree(data: st.DataObject) -> None:
    fast, reference, values = data.draw(st.sampled_from(FAST_ENCODERS))
    fastencode.clear_encode_caches()
    _encoded_alike(fast, reference, data.draw(values))


@_SETTINGS
@given(
    st.sampled_from(sorted(PolicyParam.POLICY_FIELDS)),
    st.lists(st.integers(-1, 1 << 32), min_size=7, max_size=7),
    U16,
    st.lists(st.ip_addresses(), min_size=0, max_size=3),
)
def test_parameter_encoders_refuse_alike(
    policy_type: int, fields: list[int], port: int, addresses: list[ipaddress.IPv4Address]
) -> None:
    """Fields a little out of range, any address count, IPv4-mapped addresses."""
    policy = PolicyParam(policy_type, *fields)
    _encoded_alike(fastencode.encode_policy, reference_tlv.encode_policy, policy)
    for kind in (SctpTransport, TcpTransport):
        transport = kind(port, tuple(addresses))
        _encoded_alike(fastencode.encode_transport, reference_tlv.encode_transport, transport)
    mapped = SctpTransport(port, (ipaddress.IPv6Address("::ffff:10.0.0.1"), *addresses))
    _encoded_alike(fastencode.encode_transport, reference_tlv.encode_transport, mapped)


# --------------------------------------------------------------------------- pool element shapes


def _registration_with(pe_value: bytes) -> bytes:
    """A Registration whose Pool Element parameter has the value ``pe_value``."""
    body = reference_tlv.encode_pool_handle(b"pool") + reference_tlv.encode_param(
        ParamType.POOL_ELEMENT, pe_value
    )
    return bytes([AsapType.REGISTRATION, 0]) + (4 + len(body)).to_bytes(2, "big") + body


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_elements(with_asap=None), SEEDS, st.sampled_from(["plain", "mutated", "unknown"]))
def test_pool_element_shapes_decode_alike(pe: PoolElementParam, seed: int, variant: str) -> None:
    value = reference_tlv.encode_pool_element(pe)[4:]
    if variant == "mutated":
        value = mutate(value, seed)
    elif variant == "unknown":  # a skippable unknown TLV among the PE's parameters
        at = 12 + (seed % 3) * 4
        value = (
            value[:at]
            + reference_tlv.encode_param(0x8100 | seed % 0x100, bytes(seed % 7))
            + value[at:]
        )
    data = _registration_with(value)
    _agree(data)
    usual = isinstance(pe.user_transport, SctpTransport | TcpTransport) and isinstance(
        pe.asap_transport, SctpTransport | TcpTransport | None
    )
    if variant == "plain" and usual:  # the usual shape must take the fast path
        assert fastdecode.registration(data, 0, DecodeLimits()) == Registration(b"pool", pe)


def test_layouts_of_equal_length_are_told_apart() -> None:
    codec.clear_caches()
    policy = PolicyParam(PolicyType.LEAST_USED, load=7)
    v4, v6 = ip("10.1.2.3"), ip("2001:db8::9")
    first = PoolElementParam(1, 2, 3, SctpTransport(9, (v4, v6)), policy)
    swapped = PoolElementParam(4, 5, 6, SctpTransport(9, (v6, v4)), policy)
    mapped = PoolElementParam(7, 8, 9, SctpTransport(9, (ip("::ffff:10.9.9.9"), v4)), policy)
    messages = [reference_asap.encode_asap(Registration(b"p", pe)) for pe in (first, swapped)]
    assert len(messages[0]) == len(messages[1])
    for _ in range(2):
        for pe, data in zip((first, swapped), messages, strict=True):
            assert fastdecode.registration(data, 0, DecodeLimits()) == Registration(b"p", pe)
    data = reference_asap.encode_asap(Registration(b"p", mapped))
    decoded = fastdecode.registration(data, 0, DecodeLimits())
    assert decoded is not None
    assert decoded.pool_element.user_transport.addresses == (ip("10.9.9.9"), v4)


# --------------------------------------------------------------------------- fast path promises

USUAL: list[tuple[str, AsapMessage | EnrpMessage]] = [
    ("asap", Registration(b"pool", USUAL_PE)),
    ("asap", HandleResolutionResponse(b"pool", USUAL_PE.policy, (USUAL_PE,) * 3)),
    ("asap", HandleResolutionResponse(b"pool")),
    ("asap", EndpointKeepAlive(1, b"pool", 2, home=True)),
    ("asap", EndpointKeepAlive(1, b"pool")),
    ("asap", HandleResolution(b"pool")),
    ("asap", HandleResolution(b"pool", 3)),
    ("asap", RegistrationResponse(b"pool", 5)),
    ("asap", Deregistration(b"pool", 5)),
    ("asap", DeregistrationResponse(b"pool", 5)),
    ("asap", EndpointKeepAliveAck(b"pool", 5)),
    ("asap", EndpointUnreachable(b"pool", 5)),
    ("enrp", HandleUpdate(1, 2, UpdateAction.DEL_PE, b"pool", USUAL_PE, takeover_suggested=True)),
]


def _refuse(*args: object) -> Any:
    raise AssertionError("the reference decoder was asked")


@pytest.mark.parametrize(("kind", "msg"), USUAL, ids=lambda x: getattr(x, "TYPE", x))
def test_usual_messages_never_reach_the_reference(
    kind: str, msg: AsapMessage | EnrpMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = codec.encode_asap(msg) if kind == "asap" else codec.encode_enrp(msg)  # type: ignore[arg-type]
    monkeypatch.setattr(reference_asap, "decode_asap", _refuse)
    monkeypatch.setattr(reference_enrp, "decode_enrp", _refuse)
    codec.clear_caches()
    for _ in range(2):  # cold, then warm caches
        assert PAIRS[kind][0](data, DecodeLimits()) == msg


def test_a_message_the_fast_path_turns_down_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two usual PEs, then one over UDP: the fast reader decides from the headers,
    builds nothing, and the reference decodes the message exactly once."""
    udp = PoolElementParam(9, 6, 7, UdpTransport(1, (ip("10.0.0.9"),)), USUAL_PE.policy)
    pes = (USUAL_PE, PoolElementParam(8, 6, 7, USUAL_PE.user_transport, USUAL_PE.policy), udp)
    msg = HandleResolutionResponse(b"pool", USUAL_PE.policy, pes)
    data = codec.encode_asap(msg)
    builds: list[object] = []
    calls: list[bytes] = []
    original_layout = fastdecode.pe_layout
    original_reference = reference_asap.decode_asap

    def counting_layout(buf: bytes, vstart: int, vend: int) -> layouts.PeLayout | None:
        layout = original_layout(buf, vstart, vend)
        if layout is not None:
            build = layout.build
            layout.build = lambda b, v, k: builds.append(v) or build(b, v, k)  # type: ignore[method-assign]
        return layout

    def counting_reference(data: bytes, limits: DecodeLimits) -> AsapMessage:
        calls.append(data)
        return original_reference(data, limits)

    codec.clear_caches()
    monkeypatch.setattr(fastdecode, "pe_layout", counting_layout)
    monkeypatch.setattr(reference_asap, "decode_asap", counting_reference)
    assert codec.decode_asap(data) == msg
    assert calls == [data]
    assert builds == []
    assert layouts.POOL_ELEMENTS == {}  # nothing decoded and cached on the way
    codec.clear_caches()  # forget the layout with the counting builder


def test_a_registrar_keeps_its_own_encoded_pool_elements() -> None:
    """A caller's set of encoded PEs is used and filled instead of the process-wide one."""
    own = codec.EncodedPoolElements(capacity=None)
    codec.clear_caches()
    msg = HandleResolutionResponse(b"pool", USUAL_PE.policy, (USUAL_PE,))
    assert codec.encode_asap(msg, own) == reference_asap.encode_asap(msg)
    assert len(own) == 1 and len(fastencode.RECENT_POOL_ELEMENTS) == 0
    own.forget(USUAL_PE)
    assert len(own) == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            HANDLES, st.lists(pool_elements(with_asap=True), min_size=1, max_size=2).map(tuple)
        ),
        max_size=3,
    ),
    U32,
    st.booleans(),
)
def test_handle_table_responses_encode_alike(entries: list[Any], sender: int, more: bool) -> None:
    msg = HandleTableResponse(sender, 0, tuple(entries), more_to_send=more)
    _encoded_alike(codec.encode_enrp, reference_enrp.encode_enrp, msg)
