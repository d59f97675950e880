"""Pool Element layouts, learnt on first sight and compiled, and the decoded-value caches.

The fast readers of :mod:`rsplib.wire.fastdecode` spend most of their time making
pool elements. Two tricks make that cheap:

- A pool element's layout (its transports' address kinds, its policy type) is
  learnt on first sight and compiled into a straight-line builder that reads
  every field in one ``struct`` call; the next PE of that layout is checked
  against it with one more call (its TLV headers only).
- Pool elements and transports recur constantly (PEs re-register with little
  changed, PUs resolve the same pools), so decoded values are cached by their
  bytes: immutable values, safe to share; bounded, starting over when full.

Values are built by :mod:`rsplib.wire.fastvalues` (optionally in C). Each policy
type also gets a generated reader of its fields.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from rsplib.wire.constants import ParamType
from rsplib.wire.fastvalues import frozen_builder, ipv4_from_int, ipv6_from_int
from rsplib.wire.params import PolicyParam, PoolElementParam, SctpTransport, TcpTransport, Transport

_SCTP = int(ParamType.SCTP_TRANSPORT)
_TCP = int(ParamType.TCP_TRANSPORT)
_IPV4 = int(ParamType.IPV4_ADDRESS)
_IPV6 = int(ParamType.IPV6_ADDRESS)
_POLICY = int(ParamType.POOL_MEMBER_SELECTION_POLICY)
_TLV_HEADER = struct.Struct("!HH")
_POLICY_HEAD = struct.Struct("!HHI")  # type, length, policy type

# Positional constructors taking every field, at about half the cost of the classes.
_build_sctp = frozen_builder(SctpTransport)
_build_tcp = frozen_builder(TcpTransport)
_build_policy = frozen_builder(PolicyParam)
_build_pe = frozen_builder(PoolElementParam)

# --------------------------------------------------------------------------- caches

CACHE_MAX = 1024
#: Transport TLV (header included, no padding) -> transport
TRANSPORTS: dict[bytes, Transport] = {}
#: Pool Element value (after its header) -> pool element. Only PEs with at most
#: CACHED_ADDRESSES addresses per transport are cached, so a hit needs no address
#: count under limits that allow that many.
POOL_ELEMENTS: dict[bytes, PoolElementParam] = {}
CACHED_ADDRESSES = 16


def clear_caches() -> None:
    """Forget every cached value and learnt layout (tests compare cold and warm paths)."""
    TRANSPORTS.clear()
    POOL_ELEMENTS.clear()
    PE_LAYOUTS.clear()


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


class PolicyShape(NamedTuple):
    size: int  # bytes of wire fields after the policy type
    names: tuple[str, ...]  # the wire fields
    read: Callable[[bytes, int], PolicyParam]  # the policy from its fields at an offset


def _policy_shape(policy_type: int, names: tuple[str, ...]) -> PolicyShape:
    values = [f"f{i}" for i in range(len(names))]
    unpack = f"    {', '.join(values)}, = _unpack(buf, at)\n" if names else ""
    source = f"def read(buf, at):\n{unpack}    return {_policy_call(policy_type, names, values)}\n"
    fields = struct.Struct(f"!{len(names)}I")
    namespace = {"_unpack": fields.unpack_from, "_build_policy": _build_policy}
    exec(source, namespace)
    read: Callable[[bytes, int], PolicyParam] = namespace["read"]  # type: ignore[assignment]
    return PolicyShape(fields.size, names, read)


#: Per policy type: its wire fields and a generated reader of them.
_POLICY_SHAPES: dict[int, PolicyShape] = {
    ptype: _policy_shape(ptype, names) for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def policy_shape_at(buf: bytes, pos: int, end: int) -> tuple[PolicyShape, int] | None:
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
        f"    {result} = TRANSPORTS.get(tkey)",
        f"    if {result} is None:",
        f"        {result} = {build}(v{first}, ({', '.join(makers)},), v{first + 1})",
        "        if len(TRANSPORTS) >= CACHE_MAX:",
        "            TRANSPORTS.clear()",
        f"        TRANSPORTS[tkey] = {result}",
    ]


def _learn_pe_layout(buf: bytes, vstart: int, vend: int) -> PeLayout | None:
    """The layout of the PE value in ``[vstart, vend)``, or None if it is not a usual one."""
    heads = ["!12x"]
    expected: list[int] = []
    data = ["!III"]
    user = _learn_transport(buf, vstart, vstart + 12, vend, heads, expected, data)
    if user is None:
        return None
    found = policy_shape_at(buf, vstart + user.end, vend)
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
    if most <= CACHED_ADDRESSES:
        lines += [
            "    if len(POOL_ELEMENTS) >= CACHE_MAX:",
            "        POOL_ELEMENTS.clear()",
            "    POOL_ELEMENTS[key] = pe",
        ]
    lines.append("    return pe")
    namespace = {
        "_data": struct.Struct("".join(data)).unpack_from,
        "TRANSPORTS": TRANSPORTS,
        "POOL_ELEMENTS": POOL_ELEMENTS,
        "CACHE_MAX": CACHE_MAX,
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
PE_LAYOUTS: dict[int, list[PeLayout]] = {}
_LAYOUTS_MAX = 256
_LAYOUTS_PER_LENGTH = 4


def pe_layout(buf: bytes, vstart: int, vend: int) -> PeLayout | None:
    """The known layout the PE value in ``[vstart, vend)`` has, or a newly learnt one."""
    layouts = PE_LAYOUTS.get(vend - vstart)
    if layouts is not None:
        for layout in layouts:
            if layout.heads.unpack_from(buf, vstart) == layout.expected:
                return layout
    learnt = _learn_pe_layout(buf, vstart, vend)
    if learnt is None:
        return None
    if layouts is None:
        if len(PE_LAYOUTS) >= _LAYOUTS_MAX:
            PE_LAYOUTS.clear()
        PE_LAYOUTS[vend - vstart] = [learnt]
    else:
        layouts.insert(0, learnt)
        del layouts[_LAYOUTS_PER_LENGTH:]
    return learnt


__all__ = [
    "CACHED_ADDRESSES",
    "PE_LAYOUTS",
    "POOL_ELEMENTS",
    "Builder",
    "PeLayout",
    "PolicyShape",
    "clear_caches",
    "pe_layout",
    "policy_shape_at",
]
