"""Fast parameter encoders: caches of encoded TLVs and writers generated per shape.

Each function here returns exactly the bytes of its namesake in
:mod:`rsplib.wire.reference.tlv` (the tests compare them) and hands every
value it has no fast way for, and every error, to that namesake. The tricks:

- Registrars and pool elements encode the very same immutable pool handles,
  transports and pool elements again and again (every re-registration,
  resolution and handle update), so their TLVs are cached. Transports and pool
  elements are cached by object identity: the entry keeps the object alive and
  is used only if it is still that object, so a reused ``id`` cannot match.
  Identity, not equality, because hashing addresses costs more than encoding.
- An SCTP or TCP transport of IPv4/IPv6 addresses, and each policy type, is
  packed by one generated function making a single ``struct`` call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from rsplib.wire.constants import ParamType
from rsplib.wire.fastvalues import address_int
from rsplib.wire.params import PolicyParam, PoolElementParam, SctpTransport, TcpTransport, Transport
from rsplib.wire.reference import tlv as reference

_POOL_ELEMENT = int(ParamType.POOL_ELEMENT)
_POLICY = int(ParamType.POOL_MEMBER_SELECTION_POLICY)
_SCTP = int(ParamType.SCTP_TRANSPORT)
_TCP = int(ParamType.TCP_TRANSPORT)
_IPV4 = int(ParamType.IPV4_ADDRESS)
_IPV6 = int(ParamType.IPV6_ADDRESS)

#: Bound of every cache here; a full cache simply starts over.
CACHE_MAX = 4096


# --------------------------------------------------------------------------- pool handles

_HANDLE_TLVS: dict[bytes, bytes] = {}


def encode_pool_handle(handle: bytes) -> bytes:
    """A process uses a handful of pool handles: their TLVs are cached."""
    tlv = _HANDLE_TLVS.get(handle) if type(handle) is bytes else None
    if tlv is None:
        tlv = reference.encode_pool_handle(handle)
        if type(handle) is bytes:  # bytearray, memoryview: not hashable
            if len(_HANDLE_TLVS) >= 256:
                _HANDLE_TLVS.clear()
            _HANDLE_TLVS[handle] = tlv
    return tlv


# --------------------------------------------------------------------------- PE identifiers

_PE_IDENTIFIER_TLV = struct.Struct("!HHI")
_PE_IDENTIFIER = int(ParamType.PE_IDENTIFIER)


def encode_pe_identifier(identifier: int) -> bytes:
    """One ``struct`` call for the identifier every keep-alive and response carries."""
    try:
        return _PE_IDENTIFIER_TLV.pack(_PE_IDENTIFIER, 8, identifier)
    except struct.error:
        return reference.encode_pe_identifier(identifier)  # raises its ValueError


# --------------------------------------------------------------------------- transports

_TransportWriter = Callable[[Transport], bytes | None]


def _transport_writer(shape: tuple[type, ...]) -> _TransportWriter | None:
    """A function packing an SCTP/TCP transport of ``shape`` (its class, then its
    addresses' classes) in one ``struct`` call, or None for other shapes.

    The generated function returns None for an IPv4-mapped IPv6 address (which
    goes out as IPv4: the reference encoder handles it).
    """
    kind, *address_kinds = shape
    if kind is SctpTransport:
        code = _SCTP
    elif kind is TcpTransport and len(address_kinds) == 1:
        code = _TCP
    else:
        return None
    if not address_kinds or len(address_kinds) > 16:
        return None
    fmt = ["!HHHH"]  # type, length, port, transport use
    values: list[str] = []
    checks: list[str] = []
    for i, address_kind in enumerate(address_kinds):
        if address_kind is IPv4Address:
            fmt.append("HHI")
            values.append(f"{_IPV4}, 8, _int(a{i})")
        elif address_kind is IPv6Address:
            fmt.append("HHQQ")
            checks += [
                f"    v{i} = _int(a{i})",
                f"    if v{i} >> 32 == 0xFFFF:",
                "        return None",
            ]
            values.append(f"{_IPV6}, 20, v{i} >> 64, v{i} & 0xFFFFFFFFFFFFFFFF")
        else:
            return None
    packer = struct.Struct("".join(fmt))
    names = "".join(f"a{i}, " for i in range(len(address_kinds)))
    source = "\n".join(
        [
            "def write(transport):",
            f"    {names}= transport.addresses",
            *checks,
            f"    return _pack({code}, {packer.size}, transport.port, transport.transport_use, "
            + ", ".join(values)
            + ")",
        ]
    )
    namespace: dict[str, Any] = {"_pack": packer.pack, "_int": address_int}
    exec(source + "\n", namespace)
    writer: _TransportWriter = namespace["write"]
    return writer


#: (transport class, address classes...) -> generated writer, or None for the reference
_TRANSPORT_WRITERS: dict[tuple[type, ...], _TransportWriter | None] = {}
_TRANSPORT_TLVS: dict[int, tuple[Transport, bytes]] = {}


def encode_transport(transport: Transport) -> bytes:
    entry = _TRANSPORT_TLVS.get(id(transport))
    if entry is not None and entry[0] is transport:
        return entry[1]
    shape = (type(transport), *map(type, transport.addresses))
    writer = _TRANSPORT_WRITERS.get(shape)
    if writer is None and shape not in _TRANSPORT_WRITERS:
        writer = _transport_writer(shape)
        if len(_TRANSPORT_WRITERS) < 256:  # a handful of shapes in practice
            _TRANSPORT_WRITERS[shape] = writer
    tlv = None
    if writer is not None:
        try:
            tlv = writer(transport)
        except struct.error:  # a field out of range: the reference says which
            tlv = None
    if tlv is None:
        tlv = reference.encode_transport(transport)
    if len(_TRANSPORT_TLVS) >= CACHE_MAX:
        _TRANSPORT_TLVS.clear()
    _TRANSPORT_TLVS[id(transport)] = (transport, tlv)
    return tlv


# --------------------------------------------------------------------------- policies


def _policy_writer(policy_type: int, names: tuple[str, ...]) -> Callable[[PolicyParam], bytes]:
    """A function packing a policy of ``policy_type`` in one call: header, type, fields."""
    layout = struct.Struct(f"!HH{len(names) + 1}I")
    fields = "".join(f", policy.{name}" for name in names)
    source = (
        f"def write(policy):\n    return _pack({_POLICY}, {layout.size}, {policy_type}{fields})\n"
    )
    namespace: dict[str, Any] = {"_pack": layout.pack}
    exec(source, namespace)
    writer: Callable[[PolicyParam], bytes] = namespace["write"]
    return writer


_POLICY_WRITERS: dict[int, Callable[[PolicyParam], bytes]] = {
    ptype: _policy_writer(ptype, names) for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def encode_policy(policy: PolicyParam) -> bytes:
    writer = _POLICY_WRITERS.get(policy.policy_type)
    if writer is not None:
        try:
            return writer(policy)
        except struct.error:
            pass  # a field out of range: the reference says which
    return reference.encode_policy(policy)


# --------------------------------------------------------------------------- pool elements

_PE_HEAD = struct.Struct("!HHIII")  # type, length, PE id, home registrar, registration life


class EncodedPoolElements:
    """Pool Element TLVs, and their policies' TLVs, by the identity of the PE value.

    The codec keeps one bounded set for every encoder in the process
    (:data:`RECENT_POOL_ELEMENTS`). A registrar answering resolutions keeps its
    own, unbounded one for the PEs of its handlespace, and forgets a PE when it
    leaves or changes. (A Handle Resolution Response also carries its first PE's
    policy on its own, hence the policy TLVs.)
    """

    __slots__ = ("_capacity", "_tlvs")

    def __init__(self, capacity: int | None = CACHE_MAX) -> None:
        self._capacity = capacity if capacity is not None else 1 << 62  # unbounded
        #: id(pe) -> (pe, its TLV, its policy's TLV)
        self._tlvs: dict[int, tuple[PoolElementParam, bytes, bytes]] = {}

    def __len__(self) -> int:
        return len(self._tlvs)

    def tlv(self, pe: PoolElementParam) -> bytes:
        """The encoded Pool Element parameter of ``pe``."""
        entry = self._tlvs.get(id(pe))
        if entry is None or entry[0] is not pe:
            entry = self._encode(pe)
        return entry[1]

    def policy_tlv(self, pe: PoolElementParam) -> bytes:
        """The encoded policy parameter of ``pe`` (as inside its TLV)."""
        entry = self._tlvs.get(id(pe))
        if entry is None or entry[0] is not pe:
            entry = self._encode(pe)
        return entry[2]

    def _encode(self, pe: PoolElementParam) -> tuple[PoolElementParam, bytes, bytes]:
        policy = encode_policy(pe.policy)
        # Transport and policy TLVs are multiples of 4 bytes long: no padding anywhere.
        if pe.asap_transport is None:
            tail = encode_transport(pe.user_transport) + policy
        else:
            tail = (
                encode_transport(pe.user_transport) + policy + encode_transport(pe.asap_transport)
            )
        try:
            head = _PE_HEAD.pack(
                _POOL_ELEMENT,
                16 + len(tail),
                pe.identifier,
                pe.home_registrar_id,
                pe.registration_life,
            )
        except struct.error:
            reference.encode_pool_element(pe)  # raises the ValueError naming the field
            raise
        if len(self._tlvs) >= self._capacity:
            self._tlvs.clear()
        entry = self._tlvs[id(pe)] = (pe, head + tail, policy)
        return entry

    def forget(self, pe: PoolElementParam) -> None:
        entry = self._tlvs.get(id(pe))
        if entry is not None and entry[0] is pe:
            del self._tlvs[id(pe)]

    def clear(self) -> None:
        self._tlvs.clear()


#: The process-wide set behind :func:`encode_pool_element` and the message encoders.
RECENT_POOL_ELEMENTS = EncodedPoolElements()


def encode_pool_element(
    pe: PoolElementParam, encoded: EncodedPoolElements = RECENT_POOL_ELEMENTS
) -> bytes:
    return encoded.tlv(pe)


def clear_encode_caches() -> None:
    """Forget every cached TLV (tests compare cold and warm paths with it)."""
    _HANDLE_TLVS.clear()
    _TRANSPORT_TLVS.clear()
    RECENT_POOL_ELEMENTS.clear()


__all__ = [
    "CACHE_MAX",
    "RECENT_POOL_ELEMENTS",
    "EncodedPoolElements",
    "clear_encode_caches",
    "encode_pe_identifier",
    "encode_policy",
    "encode_pool_element",
    "encode_pool_handle",
    "encode_transport",
]
