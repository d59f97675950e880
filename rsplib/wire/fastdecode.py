"""Fast decoders for the usual shape of the busiest messages.

Nearly every message a registrar, a pool element or a pool user receives most
(Registration, Handle Resolution and its Response, Endpoint Keep-Alive and its
Ack, the responses and reports naming one PE, Handle Update) has one shape:
parameters in order with an exact Length, SCTP or TCP transports of IPv4/IPv6
addresses, a known policy, nothing unknown, all limits kept. The readers here
accept exactly that shape and return None for anything else, which the
reference decoder (:mod:`rsplib.wire.reference`) then reads, and rejects if
need be, with the precise error. They never raise, and for bytes they accept
they return what the reference returns (the tests hold them to it).

Each reader first decides, from the parameter headers alone, whether the
message has the usual shape, and only then builds values: a message it turns
down has cost a few header reads, and the reference parses it once.

Where the time goes, and the tricks against it:

- Pool elements and transports recur constantly (PEs re-register with little
  changed, PUs resolve the same pools), so decoded values are cached by their
  bytes (immutable values, safe to share; bounded, starting over when full).
- A pool element's layout (its transports' address kinds, its policy type) is
  learnt on first sight and compiled into a straight-line builder that reads
  every field in one ``struct`` call; the next PE of that layout is checked
  against it with one more call.
- Values are built by :mod:`rsplib.wire.fastvalues` (optionally in C).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from rsplib.wire.asap import (
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
from rsplib.wire.constants import (
    HANDLE_RESOLUTION_OPTION_WIRE_TYPE,
    AsapFlags,
    EnrpFlags,
    ParamType,
    UpdateAction,
)
from rsplib.wire.enrp import HandleUpdate
from rsplib.wire.fastvalues import frozen_builder, ipv4_from_int, ipv6_from_int
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import PolicyParam, PoolElementParam, SctpTransport, TcpTransport, Transport
from rsplib.wire.reference.message import HEADER_SIZE

_SCTP = int(ParamType.SCTP_TRANSPORT)
_TCP = int(ParamType.TCP_TRANSPORT)
_IPV4 = int(ParamType.IPV4_ADDRESS)
_IPV6 = int(ParamType.IPV6_ADDRESS)
_POLICY = int(ParamType.POOL_MEMBER_SELECTION_POLICY)
_POOL_HANDLE = int(ParamType.POOL_HANDLE)
_POOL_ELEMENT = int(ParamType.POOL_ELEMENT)
_PE_IDENTIFIER = int(ParamType.PE_IDENTIFIER)

_TLV_HEADER = struct.Struct("!HH")
_U32 = struct.Struct("!I")
_POLICY_HEAD = struct.Struct("!HHI")  # type, length, policy type
_PE_ID_TLV = struct.Struct("!HHI")
_U32_TLV = _PE_ID_TLV  # type, length, a 32-bit value
_HR_OPTION = HANDLE_RESOLUTION_OPTION_WIRE_TYPE
_IDS_AND_ACTION = struct.Struct("!IIHH")
_ACTIONS = {action.value: action for action in UpdateAction}

# Positional constructors taking every field, at about half the cost of the classes.
_build_sctp = frozen_builder(SctpTransport)
_build_tcp = frozen_builder(TcpTransport)
_build_policy = frozen_builder(PolicyParam)
_build_pe = frozen_builder(PoolElementParam)
_build_registration = frozen_builder(Registration)
_build_hr_response = frozen_builder(HandleResolutionResponse)
_build_keep_alive = frozen_builder(EndpointKeepAlive)
_build_handle_update = frozen_builder(HandleUpdate)
_build_handle_resolution = frozen_builder(HandleResolution)
_build_registration_response = frozen_builder(RegistrationResponse)
_build_deregistration = frozen_builder(Deregistration)
_build_deregistration_response = frozen_builder(DeregistrationResponse)
_build_keep_alive_ack = frozen_builder(EndpointKeepAliveAck)
_build_unreachable = frozen_builder(EndpointUnreachable)

# --------------------------------------------------------------------------- caches

_CACHE_MAX = 1024
#: Transport TLV (header included, no padding) -> transport
_TRANSPORTS: dict[bytes, Transport] = {}
#: Pool Element value (after its header) -> pool element. Only PEs with at most
#: _CACHED_ADDRESSES addresses per transport are cached, so a hit needs no address
#: count under limits that allow that many.
_POOL_ELEMENTS: dict[bytes, PoolElementParam] = {}
_CACHED_ADDRESSES = 16
#: A PE value sorts below this exactly when its identifier (first 4 bytes) is 0.
_LOWEST_IDENTIFIER = b"\x00\x00\x00\x01"


def clear_decode_caches() -> None:
    """Forget every cached value and learnt layout (tests compare cold and warm paths)."""
    _TRANSPORTS.clear()
    _POOL_ELEMENTS.clear()
    _PE_LAYOUTS.clear()


# --------------------------------------------------------------------------- policies

_POLICY_ARGUMENTS = (
    "weight",
    "priority",
    "load",
    "load_degradation",
    "load_dpf",
    "weight_dpf",
    "distance",
)


def _policy_call(policy_type: int, names: tuple[str, ...], values: list[str]) -> str:
    """Source of the ``_build_policy`` call making a ``policy_type`` policy from ``values``."""
    arguments = ["0"] * len(_POLICY_ARGUMENTS)
    for name, value in zip(names, values, strict=True):
        arguments[_POLICY_ARGUMENTS.index(name)] = value
    return f"_build_policy({policy_type}, {', '.join(arguments)})"


class _PolicyShape(NamedTuple):
    size: int  # bytes of wire fields after the policy type
    names: tuple[str, ...]  # the wire fields
    read: Callable[[bytes, int], PolicyParam]  # the policy from its fields at an offset


def _policy_shape(policy_type: int, names: tuple[str, ...]) -> _PolicyShape:
    values = [f"f{i}" for i in range(len(names))]
    unpack = f"    {', '.join(values)}, = _unpack(buf, at)\n" if names else ""
    source = f"def read(buf, at):\n{unpack}    return {_policy_call(policy_type, names, values)}\n"
    fields = struct.Struct(f"!{len(names)}I")
    namespace = {"_unpack": fields.unpack_from, "_build_policy": _build_policy}
    exec(source, namespace)
    read: Callable[[bytes, int], PolicyParam] = namespace["read"]  # type: ignore[assignment]
    return _PolicyShape(fields.size, names, read)


#: Per policy type: its wire fields and a generated reader of them.
_POLICY_SHAPES: dict[int, _PolicyShape] = {
    ptype: _policy_shape(ptype, names) for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def _policy_at(buf: bytes, pos: int, end: int) -> tuple[_PolicyShape, int] | None:
    """The shape of a usual policy TLV at ``pos`` and where it ends, or None."""
    if end - pos < 8:
        return None
    code, length, policy_type = _POLICY_HEAD.unpack_from(buf, pos)
    shape = _POLICY_SHAPES.get(policy_type)
    if code != _POLICY or shape is None or length & 3 or pos + length > end:
        return None
    if length - 8 < shape.size:
        return None
    return shape, pos + length


# --------------------------------------------------------------------------- pool element layouts


class _TransportShape(NamedTuple):
    sctp: bool
    start: int  # offset of the TLV in the PE value
    end: int  # offset of the TLV's end in the PE value
    ipv6: tuple[bool, ...]  # per address: 16-byte IPv6 TLV (else IPv4)

    @property
    def values(self) -> int:
        """Data values it unpacks to: port, use, one per IPv4 and two per IPv6 address."""
        return 2 + len(self.ipv6) + sum(self.ipv6)


#: A generated builder: (buffer, value start, cache key) -> the pool element.
Builder = Callable[[bytes, int, bytes], PoolElementParam]


class PeLayout:
    """One shape of Pool Element value, compiled.

    ``heads`` reads every TLV header (and the policy type) of the shape,
    skipping the data; a value has this shape exactly when it reads
    ``expected``. ``build(buf, value_start, key)`` then reads all the data in
    one unpack and makes the PE, its transports (through the transport cache),
    policy and addresses in straight-line code, the decoder's hottest path, and
    caches the PE under ``key`` (its value's bytes).
    """

    __slots__ = ("build", "expected", "heads", "most", "nested")

    def __init__(
        self,
        heads: struct.Struct,
        expected: tuple[int, ...],
        build: Builder,
        most: int,
        nested: int,
    ) -> None:
        self.heads = heads
        self.expected = expected
        self.build = build
        self.most = most  # most addresses in one transport
        self.nested = nested  # TLVs inside the PE: transports, their addresses, the policy


def _learn_transport(
    buf: bytes,
    vstart: int,
    pos: int,
    end: int,
    heads: list[str],
    expected: list[int],
    data: list[str],
) -> _TransportShape | None:
    """Adds a plain SCTP/TCP transport TLV at ``pos`` to the formats, or returns None."""
    if end - pos < 16:
        return None
    code, length = _TLV_HEADER.unpack_from(buf, pos)
    tend = pos + length
    if (code != _SCTP and code != _TCP) or length < 16 or length & 3 or tend > end:
        return None
    heads.append("HH4x")
    expected += (code, length)
    data.append("4xHH")
    ipv6: list[bool] = []
    at = pos + 8
    while at < tend:
        if tend - at < 8:
            return None
        atype, alength = _TLV_HEADER.unpack_from(buf, at)
        if atype == _IPV4 and alength == 8:
            heads.append("HH4x")
            data.append("4xI")
            ipv6.append(False)
        elif atype == _IPV6 and alength == 20 and tend - at >= 20:
            heads.append("HH16x")
            data.append("4xQQ")
            ipv6.append(True)
        else:
            return None
        expected += (atype, alength)
        at += alength
    if code == _TCP and len(ipv6) != 1:
        return None
    return _TransportShape(code == _SCTP, pos - vstart, tend - vstart, tuple(ipv6))


def _transport_source(shape: _TransportShape, first: int, result: str) -> list[str]:
    """Lines making transport ``result`` from data values ``v{first}...`` (port, use, addresses)."""
    makers = []
    at = first + 2
    for v6 in shape.ipv6:
        if v6:  # two 64-bit halves; IPv4-mapped ones decode as IPv4
            high, low = f"v{at}", f"v{at + 1}"
            makers.append(
                f"(ipv4_from_int({low} & 0xFFFFFFFF) if {high} == 0 and {low} >> 32 == 0xFFFF"
                f" else ipv6_from_int({high} << 64 | {low}))"
            )
            at += 2
        else:
            makers.append(f"ipv4_from_int(v{at})")
            at += 1
    build = "_build_sctp" if shape.sctp else "_build_tcp"
    return [
        f"    tkey = buf[vstart + {shape.start} : vstart + {shape.end}]",
        f"    {result} = _TRANSPORTS.get(tkey)",
        f"    if {result} is None:",
        f"        {result} = {build}(v{first}, ({', '.join(makers)},), v{first + 1})",
        "        if len(_TRANSPORTS) >= _CACHE_MAX:",
        "            _TRANSPORTS.clear()",
        f"        _TRANSPORTS[tkey] = {result}",
    ]


def _learn_pe_layout(buf: bytes, vstart: int, vend: int) -> PeLayout | None:
    """The layout of the PE value in ``[vstart, vend)``, or None if it is not a usual one."""
    heads = ["!12x"]
    expected: list[int] = []
    data = ["!III"]
    user = _learn_transport(buf, vstart, vstart + 12, vend, heads, expected, data)
    if user is None:
        return None
    found = _policy_at(buf, vstart + user.end, vend)
    if found is None:
        return None
    shape, pos = found
    (_, length, policy_type) = _POLICY_HEAD.unpack_from(buf, vstart + user.end)
    extra = length - 8 - shape.size  # trailing fields a newer sender may add: ignored
    heads.append(f"HHI{shape.size + extra}x")
    expected += (_POLICY, length, policy_type)
    data.append(f"8x{len(shape.names)}I{extra}x")
    asap = None
    if pos != vend:
        asap = _learn_transport(buf, vstart, pos, vend, heads, expected, data)
        if asap is None or asap.end != vend - vstart:
            return None
    # Data values: v0-v2 PE fields, v3/v4 user port/use, then its addresses (IPv6
    # as two halves), the policy fields, ASAP port/use and its addresses.
    policy_at = 3 + user.values
    asap_at = policy_at + len(shape.names)
    count = asap_at + (asap.values if asap is not None else 0)
    make_policy = _policy_call(
        policy_type, shape.names, [f"v{i}" for i in range(policy_at, asap_at)]
    )
    lines = [
        "def build(buf, vstart, key):",
        f"    {', '.join(f'v{i}' for i in range(count))}, = _data(buf, vstart)",
        *_transport_source(user, 3, "user"),
        f"    policy = {make_policy}",
    ]
    if asap is not None:
        lines += _transport_source(asap, asap_at, "asap")
    else:
        lines.append("    asap = None")
    lines.append("    pe = _build_pe(v0, v1, v2, user, policy, asap)")
    most = max(len(user.ipv6), len(asap.ipv6) if asap is not None else 0)
    if most <= _CACHED_ADDRESSES:
        lines += [
            "    if len(_POOL_ELEMENTS) >= _CACHE_MAX:",
            "        _POOL_ELEMENTS.clear()",
            "    _POOL_ELEMENTS[key] = pe",
        ]
    lines.append("    return pe")
    namespace = {
        "_data": struct.Struct("".join(data)).unpack_from,
        "_TRANSPORTS": _TRANSPORTS,
        "_POOL_ELEMENTS": _POOL_ELEMENTS,
        "_CACHE_MAX": _CACHE_MAX,
        "_build_sctp": _build_sctp,
        "_build_tcp": _build_tcp,
        "_build_policy": _build_policy,
        "_build_pe": _build_pe,
        "ipv4_from_int": ipv4_from_int,
        "ipv6_from_int": ipv6_from_int,
    }
    exec("\n".join(lines) + "\n", namespace)
    build: Builder = namespace["build"]  # type: ignore[assignment]
    nested = 2 + len(user.ipv6) + (1 + len(asap.ipv6) if asap is not None else 0)
    return PeLayout(struct.Struct("".join(heads)), tuple(expected), build, most, nested)


#: PE value length -> layouts of that length seen recently, most recent first
_PE_LAYOUTS: dict[int, list[PeLayout]] = {}
_LAYOUTS_MAX = 256
_LAYOUTS_PER_LENGTH = 4


def pe_layout(buf: bytes, vstart: int, vend: int) -> PeLayout | None:
    """The known layout the PE value in ``[vstart, vend)`` has, or a newly learnt one."""
    layouts = _PE_LAYOUTS.get(vend - vstart)
    if layouts is not None:
        for layout in layouts:
            if layout.heads.unpack_from(buf, vstart) == layout.expected:
                return layout
    learnt = _learn_pe_layout(buf, vstart, vend)
    if learnt is None:
        return None
    if layouts is None:
        if len(_PE_LAYOUTS) >= _LAYOUTS_MAX:
            _PE_LAYOUTS.clear()
        _PE_LAYOUTS[vend - vstart] = [learnt]
    else:
        layouts.insert(0, learnt)
        del layouts[_LAYOUTS_PER_LENGTH:]
    return learnt


# --------------------------------------------------------------------------- message parts


def _pool_handle_at(buf: bytes, pos: int, end: int, max_size: int) -> tuple[int, int] | None:
    """The usual Pool Handle TLV at ``pos``: (end of its value, end of its padding), or None."""
    if end - pos < 8:
        return None
    code, length = _TLV_HEADER.unpack_from(buf, pos)
    following = pos + length + (-length & 3)
    if code != _POOL_HANDLE or length < 5 or length - 4 > max_size or following > end:
        return None
    return pos + length, following


def _nested_parameters(pe: PoolElementParam) -> int:
    """TLVs inside a usual PE: transports, their addresses, the policy."""
    count = 2 + len(pe.user_transport.addresses)
    if pe.asap_transport is not None:
        count += 1 + len(pe.asap_transport.addresses)
    return count


def _most_addresses(pe: PoolElementParam) -> int:
    asap = pe.asap_transport
    user = len(pe.user_transport.addresses)
    return user if asap is None else max(user, len(asap.addresses))


def _pool_elements(
    buf: bytes, pos: int, end: int, limits: DecodeLimits, params_before: int
) -> list[PoolElementParam] | None:
    """The Pool Element TLVs filling ``[pos, end)`` exactly (maybe none), or None when
    any is unusual or a limit would be hit.

    ``params_before`` counts the message's parameters before them. Nothing is built
    before the whole run has been checked (cache hits, layouts, limits): the last PE
    is built once it has been, the others wait for it.
    """
    if limits.max_nesting_depth < 3:  # addresses in a PE sit at depth 3
        return None
    max_addresses = limits.max_addresses
    max_pool_elements = limits.max_pool_elements
    # Every parameter has a 4-byte header of its own, so only a run longer than
    # 4 * (parameters left) bytes can hold too many: count only then.
    budget = limits.max_parameters - params_before
    counting = end - pos > 4 * budget
    pes: list[PoolElementParam] = []
    #: (index in pes, layout, value start, cache key) of PEs still to build
    pending: list[tuple[int, PeLayout, int, bytes]] | None = None
    while pos < end:
        if end - pos < 16 or len(pes) == max_pool_elements:
            return None
        code, length = _TLV_HEADER.unpack_from(buf, pos)
        vend = pos + length
        if code != _POOL_ELEMENT or length & 3 or vend > end:
            return None
        vstart = pos + 4
        key = buf[vstart:vend]
        pe = _POOL_ELEMENTS.get(key)
        if pe is not None:
            # Cached under other limits, a PE may hold more addresses than allowed now.
            if max_addresses < _CACHED_ADDRESSES and _most_addresses(pe) > max_addresses:
                return None
            if counting:
                budget -= 1 + _nested_parameters(pe)
                if budget < 0:
                    return None
            pes.append(pe)
            pos = vend
            continue
        # pe_layout() inlined for the usual case: the latest layout of this length.
        layouts = _PE_LAYOUTS.get(length - 4)
        if layouts is not None and layouts[0].heads.unpack_from(buf, vstart) == layouts[0].expected:
            layout: PeLayout | None = layouts[0]
        else:
            layout = pe_layout(buf, vstart, vend)
        if layout is None or layout.most > max_addresses:
            return None
        if key < _LOWEST_IDENTIFIER:  # PE identifier 0 is invalid
            return None
        if counting:
            budget -= 1 + layout.nested
            if budget < 0:
                return None
        if vend == end:  # the last one: the run is checked, build it now
            pes.append(layout.build(buf, vstart, key))
            break
        if pending is None:
            pending = []
        pending.append((len(pes), layout, vstart, key))
        pes.append(None)  # type: ignore[arg-type]  # built below
        pos = vend
    for index, layout, vstart, key in pending or ():
        pes[index] = layout.build(buf, vstart, key)
    return pes


# --------------------------------------------------------------------------- messages
# Each reader gets a message whose Length equals its size (checked by the caller,
# along with the size limit) and its flags byte.


def registration(data: bytes, flags: int, limits: DecodeLimits) -> Registration | None:
    """Pool Handle, one Pool Element."""
    end = len(data)
    handle_tlv = _pool_handle_at(data, HEADER_SIZE, end, limits.max_pool_handle)
    if handle_tlv is None:
        return None
    handle_end, pos = handle_tlv
    found = _pool_elements(data, pos, end, limits, 1)
    if found is None or len(found) != 1:
        return None
    return _build_registration(data[HEADER_SIZE + 4 : handle_end], found[0], ())


def handle_resolution_response(
    data: bytes, flags: int, limits: DecodeLimits
) -> HandleResolutionResponse | None:
    """Pool Handle, [policy], Pool Elements (no Operation Error)."""
    end = len(data)
    handle_tlv = _pool_handle_at(data, HEADER_SIZE, end, limits.max_pool_handle)
    if handle_tlv is None:
        return None
    handle_end, pos = handle_tlv
    policy_start = pos
    policy_found = _policy_at(data, pos, end)
    if policy_found is not None:
        pos = policy_found[1]
    found = _pool_elements(data, pos, end, limits, 1 if policy_found is None else 2)
    if found is None:
        return None
    handle = data[HEADER_SIZE + 4 : handle_end]
    policy = None if policy_found is None else policy_found[0].read(data, policy_start + 8)
    return _build_hr_response(handle, policy, tuple(found), None, ())


def endpoint_keep_alive(data: bytes, flags: int, limits: DecodeLimits) -> EndpointKeepAlive | None:
    """Server Identifier, Pool Handle, [PE Identifier]."""
    end = len(data)
    if end < HEADER_SIZE + 4 or limits.max_nesting_depth < 1:
        return None
    handle_tlv = _pool_handle_at(data, HEADER_SIZE + 4, end, limits.max_pool_handle)
    if handle_tlv is None:
        return None
    handle_end, pos = handle_tlv
    identifier = None
    parameters = 1
    if pos != end:
        if end - pos != 8:
            return None
        code, length, identifier = _PE_ID_TLV.unpack_from(data, pos)
        if code != _PE_IDENTIFIER or length != 8:
            return None
        parameters = 2
    if parameters > limits.max_parameters:
        return None
    (server_id,) = _U32.unpack_from(data, HEADER_SIZE)
    handle = data[HEADER_SIZE + 8 : handle_end]
    return _build_keep_alive(server_id, handle, identifier, bool(flags & AsapFlags.HOME), ())


def _handle_then(
    data: bytes, limits: DecodeLimits, wire_type: int
) -> tuple[bytes, int | None] | None:
    """A Pool Handle right after the header, then either the end of the message or one
    8-byte TLV of ``wire_type`` ending it: (handle, its 32-bit value or None)."""
    end = len(data)
    handle_tlv = _pool_handle_at(data, HEADER_SIZE, end, limits.max_pool_handle)
    if handle_tlv is None or limits.max_nesting_depth < 1:
        return None
    handle_end, pos = handle_tlv
    value = None
    if pos != end:
        if end - pos != 8 or limits.max_parameters < 2:
            return None
        code, length, value = _U32_TLV.unpack_from(data, pos)
        if code != wire_type or length != 8:
            return None
    elif limits.max_parameters < 1:
        return None
    return data[HEADER_SIZE + 4 : handle_end], value


def handle_resolution(data: bytes, flags: int, limits: DecodeLimits) -> HandleResolution | None:
    """Pool Handle, [rsplib's Handle Resolution option]."""
    found = _handle_then(data, limits, _HR_OPTION)
    return None if found is None else _build_handle_resolution(found[0], found[1], ())


# Pool Handle, PE Identifier: the answers and reports about one PE. A rejecting
# Registration Response (R flag) carries an Operation Error: not this shape.


def registration_response(
    data: bytes, flags: int, limits: DecodeLimits
) -> RegistrationResponse | None:
    found = _handle_then(data, limits, _PE_IDENTIFIER)
    if found is None or found[1] is None or flags & AsapFlags.REJECT:
        return None
    return _build_registration_response(found[0], found[1], None, ())


def deregistration(data: bytes, flags: int, limits: DecodeLimits) -> Deregistration | None:
    found = _handle_then(data, limits, _PE_IDENTIFIER)
    if found is None or found[1] is None:
        return None
    return _build_deregistration(found[0], found[1], ())


def deregistration_response(
    data: bytes, flags: int, limits: DecodeLimits
) -> DeregistrationResponse | None:
    found = _handle_then(data, limits, _PE_IDENTIFIER)
    if found is None or found[1] is None:
        return None
    return _build_deregistration_response(found[0], found[1], None, ())


def endpoint_keep_alive_ack(
    data: bytes, flags: int, limits: DecodeLimits
) -> EndpointKeepAliveAck | None:
    found = _handle_then(data, limits, _PE_IDENTIFIER)
    if found is None or found[1] is None:
        return None
    return _build_keep_alive_ack(found[0], found[1], ())


def endpoint_unreachable(
    data: bytes, flags: int, limits: DecodeLimits
) -> EndpointUnreachable | None:
    found = _handle_then(data, limits, _PE_IDENTIFIER)
    if found is None or found[1] is None:
        return None
    return _build_unreachable(found[0], found[1], ())


def handle_update(data: bytes, flags: int, limits: DecodeLimits) -> HandleUpdate | None:
    """Server IDs, Update Action, Pool Handle, one Pool Element."""
    end = len(data)
    if end < HEADER_SIZE + _IDS_AND_ACTION.size:
        return None
    sender, receiver, action_code, _ = _IDS_AND_ACTION.unpack_from(data, HEADER_SIZE)
    action = _ACTIONS.get(action_code)
    handle_at = HEADER_SIZE + _IDS_AND_ACTION.size
    handle_tlv = _pool_handle_at(data, handle_at, end, limits.max_pool_handle)
    if action is None or handle_tlv is None:
        return None
    handle_end, pos = handle_tlv
    found = _pool_elements(data, pos, end, limits, 1)
    if found is None or len(found) != 1:
        return None
    handle = data[handle_at + 4 : handle_end]
    takeover = bool(flags & EnrpFlags.TAKEOVER_SUGGESTED)
    return _build_handle_update(sender, receiver, action, handle, found[0], takeover, ())


__all__ = [
    "PeLayout",
    "clear_decode_caches",
    "deregistration",
    "deregistration_response",
    "endpoint_keep_alive",
    "endpoint_keep_alive_ack",
    "endpoint_unreachable",
    "handle_resolution",
    "handle_resolution_response",
    "handle_update",
    "pe_layout",
    "registration",
    "registration_response",
]
