"""TLV parameters of RFC 5354: byte layout, encoders, a bounded reader, typed decoders.

Layout facts (protocol-facts sections 1 and 4): a parameter is Type (16, the upper
two bits being the "unrecognized action"), Length (16, header plus value, without
padding), the value, then zero padding to a 4-byte boundary. Nested parameters are
padded individually and the parent's Length counts them with their padding.

Decoding works on offsets into one buffer; values are only copied where a
decoded object needs them (pool handles, cookies, addresses). Every decoder
raises only :class:`~rsplib.wire.errors.ProtocolError` subclasses.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple

from rsplib.wire.constants import (
    HANDLE_RESOLUTION_OPTION_WIRE_TYPE,
    PARAM_ACTION_MASK,
    PARAM_CODE_MASK,
    ErrorCause,
    ParamType,
    UnknownParamAction,
)
from rsplib.wire.errors import (
    InvalidValueError,
    LengthError,
    LimitExceededError,
    MissingParameterError,
    TruncatedError,
    UnrecognizedParameterError,
)
from rsplib.wire.fastvalues import address_int, frozen_builder, ipv4_from_int, ipv6_from_int
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

Buffer = bytes | bytearray | memoryview

_HDR = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U16U16 = struct.Struct("!HH")
_U16U16U32 = struct.Struct("!HHI")
_PE_FIXED = struct.Struct("!III")
_PAD = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:a.b.c.d

_KNOWN_CODES = frozenset(int(t) for t in ParamType)
_TRANSPORT_CODES = frozenset(
    {
        ParamType.SCTP_TRANSPORT,
        ParamType.TCP_TRANSPORT,
        ParamType.UDP_TRANSPORT,
        ParamType.UDP_LITE_TRANSPORT,
        ParamType.DCCP_TRANSPORT,
    }
)
_ADDRESS_CODES = frozenset({ParamType.IPV4_ADDRESS, ParamType.IPV6_ADDRESS})
_U32_MAX = 0xFFFFFFFF


def pad4(length: int) -> int:
    """Number of zero bytes that bring ``length`` to a multiple of 4."""
    return -length & 3


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Safety limits a decoder enforces on untrusted input.

    The defaults follow rsplib where it has a limit (64 addresses per transport,
    pool handles of at most 32 bytes) and are generous elsewhere.
    """

    max_message_size: int = 65535
    #: TLVs per message, nested ones included.
    max_parameters: int = 2048
    #: Message-level TLVs are depth 1, their children depth 2, and so on.
    max_nesting_depth: int = 4
    #: Address TLVs per transport parameter.
    max_addresses: int = 64
    #: Longer pool handles are rejected with cause INVALID_POOL_HANDLE (0xF004).
    max_pool_handle: int = 32
    #: Pool Element parameters per message (HR Response, HT Response, Business Card).
    max_pool_elements: int = 1024


DEFAULT_LIMITS = DecodeLimits()


@dataclass(slots=True)
class DecodeContext:
    """Per-message decoding state: limits, the TLV budget and skipped-to-report TLVs."""

    limits: DecodeLimits = DEFAULT_LIMITS
    parameters_seen: int = 0
    pool_elements_seen: int = 0
    #: Whole TLVs (without padding) skipped under action bits 11.
    unrecognized: list[bytes] = field(default_factory=list)


# --------------------------------------------------------------------------- encoders


def encode_param(ptype_wire: int, value: bytes) -> bytes:
    """One TLV: header, value, zero padding. ``ptype_wire`` includes any action bits."""
    length = 4 + len(value)
    if length > 0xFFFF:
        raise ValueError(f"parameter value too long ({len(value)} bytes)")
    return _HDR.pack(ptype_wire, length) + value + _PAD[length & 3]


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{what} must fit in 32 bits, got {value!r}")
    return _U32.pack(value)


def encode_pool_handle(handle: bytes) -> bytes:
    """Pool Handle TLV, padded. A process uses a handful of pool handles: cached."""
    if type(handle) is not bytes:  # bytearray, memoryview: not hashable
        return encode_param(_POOL_HANDLE_CODE, bytes(handle))
    tlv = _HANDLE_TLV_CACHE.get(handle)
    if tlv is None:
        tlv = encode_param(_POOL_HANDLE_CODE, handle)
        if len(_HANDLE_TLV_CACHE) >= 256:
            _HANDLE_TLV_CACHE.clear()
        _HANDLE_TLV_CACHE[handle] = tlv
    return tlv


_HANDLE_TLV_CACHE: dict[bytes, bytes] = {}
_POOL_HANDLE_CODE = int(ParamType.POOL_HANDLE)


def encode_pe_identifier(identifier: int) -> bytes:
    return encode_param(ParamType.PE_IDENTIFIER, _u32(identifier, "PE identifier"))


def encode_pe_checksum(checksum: int) -> bytes:
    if not 0 <= checksum <= 0xFFFF:
        raise ValueError(f"PE checksum must fit in 16 bits, got {checksum!r}")
    return encode_param(ParamType.PE_CHECKSUM, _U16.pack(checksum))


def encode_cookie(cookie: bytes) -> bytes:
    return encode_param(ParamType.COOKIE, bytes(cookie))


def encode_hr_option(items: int) -> bytes:
    """rsplib's Handle Resolution option (0x803F); ``HR_ITEMS_MAX`` = as many as possible."""
    return encode_param(HANDLE_RESOLUTION_OPTION_WIRE_TYPE, _u32(items, "HR items"))


# Registrars and pool elements encode the very same (immutable) transport and PE
# objects again and again: every re-registration, resolution and handle update.
# Their TLVs are cached by object identity; the entry keeps the object alive and
# is used only if it is still that object, so an id reused later cannot match.
# Identity, not equality, because hashing addresses costs more than encoding them.
_ENCODE_CACHE_MAX = 4096
_TRANSPORT_TLV_CACHE: dict[int, tuple[Transport, bytes]] = {}
_PE_TLV_CACHE: dict[int, tuple[PoolElementParam, bytes]] = {}
_IPV4_TLV_HEADER = _HDR.pack(ParamType.IPV4_ADDRESS, 8)
_IPV6_TLV_HEADER = _HDR.pack(ParamType.IPV6_ADDRESS, 20)


def encode_address(address: IPAddress) -> bytes:
    """IPv4 or IPv6 Address TLV; IPv4-mapped IPv6 addresses go out as IPv4 (like rsplib)."""
    if isinstance(address, ipaddress.IPv4Address):
        return _IPV4_TLV_HEADER + address.packed
    if isinstance(address, ipaddress.IPv6Address):
        packed = address.packed
        if packed.startswith(_V4_MAPPED_PREFIX):
            return _IPV4_TLV_HEADER + packed[12:]
        return _IPV6_TLV_HEADER + packed
    raise TypeError(f"not an IP address: {address!r}")


def _transport_head(transport: Transport) -> tuple[int, bytes]:
    port = transport.port
    if isinstance(transport, SctpTransport):
        if not transport.addresses:
            raise ValueError("an SCTP transport needs at least one address")
        return ParamType.SCTP_TRANSPORT, _U16U16.pack(port, transport.transport_use)
    if len(transport.addresses) != 1:
        raise ValueError(f"{type(transport).__name__} needs exactly one address")
    if isinstance(transport, TcpTransport):
        return ParamType.TCP_TRANSPORT, _U16U16.pack(port, transport.transport_use)
    if isinstance(transport, UdpTransport):
        return ParamType.UDP_TRANSPORT, _U16U16.pack(port, 0)
    if isinstance(transport, UdpLiteTransport):
        return ParamType.UDP_LITE_TRANSPORT, _U16U16.pack(port, 0)
    if isinstance(transport, DccpTransport):
        return ParamType.DCCP_TRANSPORT, _U16U16U32.pack(port, 0, transport.service_code)
    raise TypeError(f"not a transport: {transport!r}")


_TRANSPORT_HEAD_WRITER = struct.Struct("!HHHH")  # type, length, port, transport use
_IPV4_TLV_WRITER = struct.Struct("!HHI")
_IPV6_TLV_WRITER = struct.Struct("!HHQQ")
_U64_MAX = (1 << 64) - 1
_SCTP_OR_TCP = (SctpTransport, TcpTransport)


def _encode_addresses(addresses: tuple[IPAddress, ...]) -> bytes:
    """Address TLVs; written from the address's integer, cheaper than from ``packed``."""
    parts = []
    for address in addresses:
        kind = type(address)
        if kind is IPv4Address:
            parts.append(_IPV4_TLV_WRITER.pack(_IPV4, 8, address_int(address)))
        elif kind is IPv6Address:
            value = address_int(address)
            if value >> 32 == 0xFFFF:  # IPv4-mapped: goes out as IPv4, like rsplib
                parts.append(_IPV4_TLV_WRITER.pack(_IPV4, 8, value & _U32_MAX))
            else:
                parts.append(_IPV6_TLV_WRITER.pack(_IPV6, 20, value >> 64, value & _U64_MAX))
        else:
            parts.append(encode_address(address))
    return b"".join(parts)


def _transport_writer(shape: tuple[type, ...]) -> Callable[[Transport], bytes | None] | None:
    """A function packing an SCTP/TCP transport of ``shape`` (its class, then its
    addresses' classes) in one call, or None for other shapes.

    The function returns None for an IPv4-mapped IPv6 address (sent as IPv4).
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
    fmt = ["!HHHH"]
    values: list[str] = []
    lines: list[str] = []
    for i, address_kind in enumerate(address_kinds):
        if address_kind is IPv4Address:
            fmt.append("HHI")
            values.append(f"{_IPV4}, 8, _int(a{i})")
        elif address_kind is IPv6Address:
            fmt.append("HHQQ")
            lines += [
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
            *lines,
            f"    return _pack({code}, {packer.size}, transport.port, transport.transport_use, "
            + ", ".join(values)
            + ")",
        ]
    )
    namespace: dict[str, Any] = {"_pack": packer.pack, "_int": address_int}
    exec(source + "\n", namespace)
    writer: Callable[[Transport], bytes | None] = namespace["write"]
    return writer


#: (transport class, address classes...) -> compiled writer, or None for the general path
_TRANSPORT_WRITERS: dict[tuple[type, ...], Callable[[Transport], bytes | None] | None] = {}


def _writer_of(transport: Transport) -> Callable[[Transport], bytes | None] | None:
    shape = (type(transport), *map(type, transport.addresses))
    writer = _TRANSPORT_WRITERS.get(shape)
    if writer is None and shape not in _TRANSPORT_WRITERS:
        writer = _transport_writer(shape)
        if len(_TRANSPORT_WRITERS) < 256:  # a handful of shapes in practice
            _TRANSPORT_WRITERS[shape] = writer
    return writer


def _general_transport_tlv(transport: Transport) -> bytes:
    """Any transport, address by address; struct.error for fields out of range."""
    addresses = transport.addresses
    if isinstance(transport, _SCTP_OR_TCP) and (
        len(addresses) == 1 or (addresses and type(transport) is SctpTransport)
    ):
        body = _encode_addresses(addresses)
        # Address TLVs need no padding, so neither does the transport TLV.
        head = _TRANSPORT_HEAD_WRITER.pack(
            _SCTP if type(transport) is SctpTransport else _TCP,
            8 + len(body),
            transport.port,
            transport.transport_use,
        )
        return head + body
    code, head = _transport_head(transport)
    return encode_param(code, head + _encode_addresses(addresses))


def encode_transport(transport: Transport) -> bytes:
    """Any of the five transport parameters, with its address TLVs nested.

    Raises ValueError for a wrong address count (SCTP: at least one, the
    others: exactly one) or fields out of range.
    """
    entry = _TRANSPORT_TLV_CACHE.get(id(transport))
    if entry is not None and entry[0] is transport:
        return entry[1]
    writer = _writer_of(transport)
    try:
        tlv = writer(transport) if writer is not None else None
        if tlv is None:
            tlv = _general_transport_tlv(transport)
    except struct.error as exc:
        raise ValueError(f"transport field out of range: {exc}") from exc
    if len(_TRANSPORT_TLV_CACHE) >= _ENCODE_CACHE_MAX:
        _TRANSPORT_TLV_CACHE.clear()
    _TRANSPORT_TLV_CACHE[id(transport)] = (transport, tlv)
    return tlv


def _policy_writer(ptype: int, names: tuple[str, ...]) -> Callable[[PolicyParam], bytes]:
    """A function packing a policy of type ``ptype`` in one call: header, type, fields."""
    fmt = struct.Struct(f"!HH{len(names) + 1}I")
    code = int(ParamType.POOL_MEMBER_SELECTION_POLICY)
    fields = "".join(f", policy.{name}" for name in names)
    source = f"def write(policy):\n    return _pack({code}, {fmt.size}, {ptype}{fields})\n"
    namespace: dict[str, Any] = {"_pack": fmt.pack}
    exec(source, namespace)
    writer: Callable[[PolicyParam], bytes] = namespace["write"]
    return writer


# Per policy type: its writer (a struct.error means a field out of range).
_POLICY_WRITERS: dict[int, Callable[[PolicyParam], bytes]] = {
    ptype: _policy_writer(ptype, names) for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def encode_policy(policy: PolicyParam) -> bytes:
    """Policy TLV with exactly the fields its type carries (protocol-facts 5.1)."""
    writer = _POLICY_WRITERS.get(policy.policy_type)
    if writer is None:
        raise ValueError(f"policy type 0x{policy.policy_type:08X} has no wire encoding")
    try:
        return writer(policy)
    except struct.error as exc:
        raise ValueError(f"policy field out of 32-bit range: {policy!r}") from exc


_PE_HEAD_WRITER = struct.Struct("!HHIII")  # type, length, PE id, home registrar, life


def encode_pool_element(pe: PoolElementParam) -> bytes:
    """Pool Element TLV: ID, home registrar, life (ms), user transport, policy, [ASAP transport]."""
    entry = _PE_TLV_CACHE.get(id(pe))
    if entry is not None and entry[0] is pe:
        return entry[1]
    # Transport and policy TLVs are multiples of 4 bytes long: no padding anywhere.
    if pe.asap_transport is None:
        tail = encode_transport(pe.user_transport) + encode_policy(pe.policy)
    else:
        tail = (
            encode_transport(pe.user_transport)
            + encode_policy(pe.policy)
            + encode_transport(pe.asap_transport)
        )
    try:
        head = _PE_HEAD_WRITER.pack(
            _POOL_ELEMENT,  # a plain int: packing an IntEnum costs a conversion
            16 + len(tail),
            pe.identifier,
            pe.home_registrar_id,
            pe.registration_life,
        )
    except struct.error as exc:
        raise ValueError(f"pool element field out of range: {exc}") from exc
    tlv = head + tail
    if len(_PE_TLV_CACHE) >= _ENCODE_CACHE_MAX:
        _PE_TLV_CACHE.clear()
    _PE_TLV_CACHE[id(pe)] = (pe, tlv)
    return tlv


def encode_server_information(si: ServerInformation) -> bytes:
    return encode_param(
        ParamType.SERVER_INFORMATION,
        _u32(si.server_id, "server id") + encode_transport(si.transport),
    )


def encode_operation_error(err: OperationError) -> bytes:
    """Operation Error TLV; each cause: code, length (header + info), info, padding."""
    parts = []
    for cause in err.causes:
        if not 0 <= cause.code <= 0xFFFF:
            raise ValueError(f"cause code must fit in 16 bits, got {cause.code!r}")
        length = 4 + len(cause.info)
        if length > 0xFFFF:
            raise ValueError("cause info too long")
        parts.append(_HDR.pack(cause.code, length) + cause.info + _PAD[length & 3])
    return encode_param(ParamType.OPERATION_ERROR, b"".join(parts))


# --------------------------------------------------------------------------- reader


class RawParam(NamedTuple):
    """One TLV as read: on-wire type, code without action bits, value, whole TLV (no padding)."""

    wire_type: int
    code: int
    value: bytes
    raw: bytes


class TlvReader:
    """Reads consecutive TLVs of one region ``[start, end)`` of a buffer.

    :meth:`next` and :meth:`peek` apply the unknown-parameter rule (RFC 5354,
    protocol-facts 1.3) and return only recognised parameters as
    ``(code, tlv_start, value_start, value_end)``; :meth:`raw_params` yields
    every TLV as :class:`RawParam` without judging it.

    A final TLV whose padding is cut off by the region end is accepted
    (rsplib tolerates a message Length that excludes the last padding).
    """

    __slots__ = ("_buf", "_ctx", "_depth", "_end", "_pending", "_pos")

    def __init__(
        self,
        buf: Buffer,
        start: int = 0,
        end: int | None = None,
        ctx: DecodeContext | None = None,
        depth: int = 1,
    ) -> None:
        self._buf = buf
        self._pos = start
        self._end = len(buf) if end is None else end
        self._ctx = DecodeContext() if ctx is None else ctx
        if depth > self._ctx.limits.max_nesting_depth:
            raise LimitExceededError(f"parameters nested deeper than {depth - 1} levels")
        self._depth = depth
        self._pending: tuple[int, int, int, int] | None = None

    @property
    def ctx(self) -> DecodeContext:
        return self._ctx

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def buffer(self) -> Buffer:
        return self._buf

    def _read_header(self) -> tuple[int, int, int, int] | None:
        """Next TLV as (wire_type, tlv_start, value_start, value_end); None at the end."""
        pos = self._pos
        end = self._end
        if pos >= end:
            return None
        if end - pos < 4:
            raise TruncatedError(f"{end - pos} stray bytes where a parameter header should be")
        ctx = self._ctx
        ctx.parameters_seen += 1
        if ctx.parameters_seen > ctx.limits.max_parameters:
            raise LimitExceededError(f"more than {ctx.limits.max_parameters} parameters")
        wire_type, length = _HDR.unpack_from(self._buf, pos)
        if length < 4:
            raise LengthError(f"parameter 0x{wire_type:04X} has Length {length} < 4")
        value_end = pos + length
        if value_end > end:
            raise LengthError(
                f"parameter 0x{wire_type:04X} (Length {length}) runs past its enclosing region"
            )
        next_pos = value_end + (-length & 3)
        self._pos = next_pos if next_pos < end else end
        return wire_type, pos, pos + 4, value_end

    def raw_params(self) -> Iterator[RawParam]:
        """Every remaining TLV, recognised or not, without applying the action bits."""
        buf = self._buf
        while (item := self._read_header()) is not None:
            wire_type, start, vstart, vend = item
            yield RawParam(
                wire_type,
                wire_type & PARAM_CODE_MASK,
                bytes(buf[vstart:vend]),
                bytes(buf[start:vend]),
            )

    def _next_known(self) -> tuple[int, int, int, int] | None:
        while (item := self._read_header()) is not None:
            wire_type, start, vstart, vend = item
            code = wire_type & PARAM_CODE_MASK
            if code in _KNOWN_CODES:
                return code, start, vstart, vend
            action = wire_type & PARAM_ACTION_MASK
            tlv = bytes(self._buf[start:vend])
            if action == UnknownParamAction.STOP:
                raise UnrecognizedParameterError(
                    f"unrecognised parameter 0x{wire_type:04X}", report=False, offending=tlv
                )
            if action == UnknownParamAction.STOP_AND_REPORT:
                raise UnrecognizedParameterError(
                    f"unrecognised parameter 0x{wire_type:04X}", report=True, offending=tlv
                )
            if action == UnknownParamAction.SKIP_AND_REPORT:
                self._ctx.unrecognized.append(tlv)
        return None

    def peek(self) -> tuple[int, int, int, int] | None:
        """The next recognised TLV without consuming it (None at the end)."""
        if self._pending is None:
            self._pending = self._next_known()
        return self._pending

    def peek_code(self) -> int | None:
        item = self.peek()
        return None if item is None else item[0]

    def next(self) -> tuple[int, int, int, int] | None:
        """The next recognised TLV as (code, tlv_start, value_start, value_end), or None."""
        item = self._pending
        if item is not None:
            self._pending = None
            return item
        return self._next_known()

    def next_param(self) -> RawParam | None:
        """Like :meth:`next`, as a :class:`RawParam`."""
        item = self.next()
        if item is None:
            return None
        code, start, vstart, vend = item
        buf = self._buf
        (wire_type,) = _U16.unpack_from(buf, start)
        return RawParam(wire_type, code, bytes(buf[vstart:vend]), bytes(buf[start:vend]))

    def expect(self, code: int, what: str) -> tuple[int, int]:
        """The value range of the next TLV, which must have ``code``."""
        item = self.next()
        if item is None:
            raise MissingParameterError(f"{what} missing")
        if item[0] != code:
            raise MissingParameterError(
                f"{what} expected, found parameter 0x{item[0]:04X}",
                offending=bytes(self._buf[item[1] : item[3]]),
            )
        return item[2], item[3]

    def take_if(self, code: int) -> tuple[int, int] | None:
        """Consume and return the next TLV's value range if it has ``code``."""
        item = self.peek()
        if item is None or item[0] != code:
            return None
        self._pending = None
        return item[2], item[3]

    def take_run(self, code: int) -> list[tuple[int, int]]:
        """Value ranges of the consecutive TLVs with ``code`` starting here (maybe none)."""
        spans: list[tuple[int, int]] = []
        buf = self._buf
        end = self._end
        ctx = self._ctx
        while True:
            if self._pending is None:
                pos = self._pos
                if pos >= end:
                    return spans
                # Inline fast path for the plain case; everything else goes through peek().
                if end - pos >= 4:
                    wire_type, length = _HDR.unpack_from(buf, pos)
                    if wire_type == code and length >= 4 and pos + length <= end:
                        ctx.parameters_seen += 1
                        if ctx.parameters_seen > ctx.limits.max_parameters:
                            raise LimitExceededError(
                                f"more than {ctx.limits.max_parameters} parameters"
                            )
                        spans.append((pos + 4, pos + length))
                        next_pos = pos + length + (-length & 3)
                        self._pos = next_pos if next_pos < end else end
                        continue
            item = self.peek()
            if item is None or item[0] != code:
                return spans
            self._pending = None
            spans.append((item[2], item[3]))

    def finish(self, what: str) -> None:
        """Require that nothing but skippable unknown TLVs remain."""
        item = self.next()
        if item is not None:
            raise InvalidValueError(
                f"unexpected parameter 0x{item[0]:04X} in {what}",
                offending=bytes(self._buf[item[1] : item[3]]),
            )

    def child(self, vstart: int, vend: int) -> TlvReader:
        """A reader for TLVs nested in the value range of a parameter."""
        return TlvReader(self._buf, vstart, vend, self._ctx, self._depth + 1)


# --------------------------------------------------------------------------- typed decoders
# The internal ``_read_*`` functions work on a value range of the reader's buffer.


def _fixed(vstart: int, vend: int, size: int, what: str) -> None:
    if vend - vstart != size:
        raise LengthError(f"{what} value has {vend - vstart} bytes, needs {size}")


def read_pool_handle(r: TlvReader, vstart: int, vend: int) -> bytes:
    size = vend - vstart
    limit = r.ctx.limits.max_pool_handle
    if size == 0:
        raise InvalidValueError("empty pool handle", cause=ErrorCause.INVALID_POOL_HANDLE)
    if size > limit:
        raise InvalidValueError(
            f"pool handle of {size} bytes exceeds {limit}", cause=ErrorCause.INVALID_POOL_HANDLE
        )
    return bytes(r.buffer[vstart:vend])


def read_u32(r: TlvReader, vstart: int, vend: int, what: str) -> int:
    _fixed(vstart, vend, 4, what)
    value: int = _U32.unpack_from(r.buffer, vstart)[0]
    return value


def read_pe_checksum(r: TlvReader, vstart: int, vend: int) -> int:
    _fixed(vstart, vend, 2, "PE checksum")
    value: int = _U16.unpack_from(r.buffer, vstart)[0]
    return value


# --------------------------------------------------------------------------- decoded-value caches
# The same pool elements and transports recur constantly: PEs re-register (often
# with nothing but the load changed) and PUs resolve the same pools again and
# again. Decoded values are immutable, so sharing one instance per distinct byte
# string is safe. The caches are bounded and simply start over when full; only
# the fast paths below fill them, with values that decoded without side effects.
_CACHE_MAX = 1024
#: Transport TLV (without padding) -> transport
_TRANSPORT_CACHE: dict[bytes, Transport] = {}
#: PE value -> PE
_PE_CACHE: dict[bytes, PoolElementParam] = {}


def clear_decode_caches() -> None:
    """Forget every cached decoded value (tests compare fast and general paths with it)."""
    _TRANSPORT_CACHE.clear()
    _PE_CACHE.clear()
    _PE_LAYOUTS.clear()


def _address(packed: bytes) -> IPAddress:
    """The address in an address TLV's 4 or 16 bytes.

    IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) come back as IPv4, the form
    encoders write.
    """
    value = int.from_bytes(packed, "big")
    if len(packed) == 16:
        if value >> 32 == 0xFFFF:
            return ipv4_from_int(value & _U32_MAX)
        return ipv6_from_int(value)
    return ipv4_from_int(value)


def _count_params(ctx: DecodeContext, n: int) -> None:
    ctx.parameters_seen += n
    if ctx.parameters_seen > ctx.limits.max_parameters:
        raise LimitExceededError(f"more than {ctx.limits.max_parameters} parameters")


# --------------------------------------------------------------------------- fast paths
# Nearly every transport, policy and pool element on the wire has one shape: an
# SCTP or TCP transport holding IPv4/IPv6 address TLVs, a policy of a known type,
# no unknown parameters, no odd padding. The fast paths read exactly that shape
# with a few fixed-offset unpacks and return None for anything else; the general
# path (a TlvReader, the unknown-parameter rule, precise errors) then reads it
# again. A fast path never raises and never touches the decode context, so for
# bytes it accepts it returns exactly what the general path would. Callers check
# the nesting depth; the fast paths check the address limit.

_SCTP = int(ParamType.SCTP_TRANSPORT)
_TCP = int(ParamType.TCP_TRANSPORT)
_POLICY = int(ParamType.POOL_MEMBER_SELECTION_POLICY)
_POOL_HANDLE = int(ParamType.POOL_HANDLE)
_POOL_ELEMENT = int(ParamType.POOL_ELEMENT)
_IPV4 = int(ParamType.IPV4_ADDRESS)
_IPV6 = int(ParamType.IPV6_ADDRESS)
_PE_HEAD = struct.Struct("!IIIHH")  # PE id, home registrar, life; user transport type, length
_ADDRESS_HEAD = struct.Struct("!HHI")  # type, length, IPv4 address (or the first IPv6 bytes)
_U64U64 = struct.Struct("!QQ")
_POLICY_HEAD = struct.Struct("!HHI")  # type, length, policy type

# Positional-only constructors at about half the cost (see rsplib.wire.fastvalues).
_build_sctp = frozen_builder(SctpTransport)
_build_tcp = frozen_builder(TcpTransport)
_build_policy = frozen_builder(PolicyParam)
_build_pe = frozen_builder(PoolElementParam)


def _fast_transport(
    buf: bytes, code: int, pos: int, tend: int, max_addresses: int
) -> Transport | None:
    """Transport TLV of type ``code`` spanning ``[pos, tend)``: SCTP/TCP with only addresses."""
    if (code != _SCTP and code != _TCP) or tend - pos < 16 or (tend - pos) & 3:
        return None
    key = buf[pos:tend]
    transport = _TRANSPORT_CACHE.get(key)
    if transport is not None:
        # Cached under other limits, a transport may hold more addresses than allowed now.
        return transport if len(transport.addresses) <= max_addresses else None
    port, use = _U16U16.unpack_from(buf, pos + 4)
    addresses: list[IPAddress] = []
    at = pos + 8
    while at < tend:
        if tend - at < 8:
            return None
        atype, alength, value = _ADDRESS_HEAD.unpack_from(buf, at)
        if atype == _IPV4 and alength == 8:
            addresses.append(ipv4_from_int(value))
            at += 8
        elif atype == _IPV6 and alength == 20 and tend - at >= 20:
            high, low = _U64U64.unpack_from(buf, at + 4)
            if high == 0 and low >> 32 == 0xFFFF:  # IPv4-mapped: decoded as IPv4
                addresses.append(ipv4_from_int(low & _U32_MAX))
            else:
                addresses.append(ipv6_from_int(high << 64 | low))
            at += 20
        else:
            return None
    if len(addresses) > max_addresses:
        return None
    if code == _SCTP:
        transport = _build_sctp(port, tuple(addresses), use)
    elif len(addresses) == 1:
        transport = _build_tcp(port, (addresses[0],), use)
    else:
        return None
    if len(_TRANSPORT_CACHE) >= _CACHE_MAX:
        _TRANSPORT_CACHE.clear()
    _TRANSPORT_CACHE[key] = transport
    return transport


def fast_policy_tlv(buf: bytes, pos: int, end: int) -> tuple[PolicyParam, int] | None:
    """Policy TLV at ``pos`` within ``end``: (policy, end of the TLV) or None."""
    if end - pos < 8:
        return None
    code, length, ptype = _POLICY_HEAD.unpack_from(buf, pos)
    shape = _POLICY_SHAPES.get(ptype)
    pend = pos + length
    if code != _POLICY or shape is None or length & 3 or pend > end:
        return None
    if length - 8 < shape.size:
        return None
    return shape.read(buf, pos + 8), pend


class _PeLayout:
    """One shape of PE value, compiled: two Structs and a straight-line builder.

    ``heads`` reads every TLV header (and the policy type) of the shape,
    skipping the data; bytes have this shape exactly when it reads
    ``expected``. ``build(buf, vstart)`` then reads all the values in one
    unpack (skipping the headers) and makes the PE, its transports (through
    the transport cache), policy and addresses, with no loops or indirection:
    this is the decoder's hottest path. It returns None for PE identifier 0.
    """

    __slots__ = ("build", "expected", "heads", "most")

    def __init__(
        self,
        heads: struct.Struct,
        expected: tuple[int, ...],
        build: Callable[[bytes, int], PoolElementParam | None],
        most: int,
    ) -> None:
        self.heads = heads
        self.expected = expected
        self.build = build
        self.most = most  # most addresses in one transport


class _TransportShape(NamedTuple):
    sctp: bool
    start: int  # offset of the TLV in the PE value
    end: int  # offset of the TLV's end in the PE value
    ipv6: tuple[bool, ...]  # per address: 16-byte IPv6 TLV (else IPv4)

    @property
    def values(self) -> int:
        """Data values it unpacks to: port, use, one per IPv4 and two per IPv6 address."""
        return 2 + len(self.ipv6) + sum(self.ipv6)


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
    code, length = _HDR.unpack_from(buf, pos)
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
        atype, alength = _HDR.unpack_from(buf, at)
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
        f"    {result} = _TRANSPORT_CACHE.get(tkey)",
        f"    if {result} is None:",
        f"        {result} = {build}(v{first}, ({', '.join(makers)},), v{first + 1})",
        "        if len(_TRANSPORT_CACHE) >= _CACHE_MAX:",
        "            _TRANSPORT_CACHE.clear()",
        f"        _TRANSPORT_CACHE[tkey] = {result}",
    ]


def _learn_pe_layout(buf: bytes, vstart: int, vend: int) -> _PeLayout | None:
    """The layout of the PE value in ``[vstart, vend)``, or None if it is not a plain one."""
    heads = ["!12x"]
    expected: list[int] = []
    data = ["!III"]
    user = _learn_transport(buf, vstart, vstart + 12, vend, heads, expected, data)
    if user is None:
        return None
    pos = vstart + user.end
    if vend - pos < 8:
        return None
    code, length, ptype = _POLICY_HEAD.unpack_from(buf, pos)
    shape = _POLICY_SHAPES.get(ptype)
    if code != _POLICY or shape is None or length & 3 or pos + length > vend:
        return None
    names = shape.names
    extra = length - 8 - shape.size  # trailing fields a newer sender may add: ignored
    if extra < 0:
        return None
    heads.append(f"HHI{shape.size + extra}x")
    expected += (code, length, ptype)
    data.append(f"8x{len(names)}I{extra}x")
    pos += length
    asap = None
    if pos != vend:
        asap = _learn_transport(buf, vstart, pos, vend, heads, expected, data)
        if asap is None or asap.end != vend - vstart:
            return None
    # Data values: v0-v2 PE fields, v3/v4 user port/use, then its addresses (IPv6
    # as two halves), the policy fields, ASAP port/use and its addresses.
    policy_at = 3 + user.values
    asap_at = policy_at + len(names)
    count = asap_at + (asap.values if asap is not None else 0)
    make_policy = _policy_call(ptype, names, [f"v{i}" for i in range(policy_at, asap_at)])
    lines = [
        "def build(buf, vstart):",
        f"    {', '.join(f'v{i}' for i in range(count))}, = _data(buf, vstart)",
        "    if v0 == 0:",
        "        return None",
        *_transport_source(user, 3, "user"),
        f"    policy = {make_policy}",
    ]
    if asap is not None:
        lines += _transport_source(asap, asap_at, "asap")
    else:
        lines.append("    asap = None")
    lines.append("    return _build_pe(v0, v1, v2, user, policy, asap)")
    namespace = dict(globals(), _data=struct.Struct("".join(data)).unpack_from)
    exec("\n".join(lines) + "\n", namespace)
    most = max(len(user.ipv6), len(asap.ipv6) if asap is not None else 0)
    return _PeLayout(struct.Struct("".join(heads)), tuple(expected), namespace["build"], most)


#: PE value length -> layouts of that length seen recently
_PE_LAYOUTS: dict[int, list[_PeLayout]] = {}
_LAYOUTS_MAX = 256
_LAYOUTS_PER_LENGTH = 4


def _pe_layout(buf: bytes, vstart: int, vend: int) -> _PeLayout | None:
    """The known layout that the PE value in ``[vstart, vend)`` has, or a newly learnt one."""
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
        # Most recent first; the oldest falls out.
        layouts.insert(0, learnt)
        del layouts[_LAYOUTS_PER_LENGTH:]
    return learnt


def fast_pool_element(
    buf: bytes, vstart: int, vend: int, max_addresses: int
) -> PoolElementParam | None:
    """PE value in ``[vstart, vend)``: fixed fields, user transport, policy, [ASAP transport]."""
    key = buf[vstart:vend]
    pe = _PE_CACHE.get(key)
    if pe is not None:
        # Cached under other limits, a PE may hold more addresses than allowed now.
        if len(pe.user_transport.addresses) > max_addresses or (
            pe.asap_transport is not None and len(pe.asap_transport.addresses) > max_addresses
        ):
            return None
        return pe
    # _pe_layout() inlined for the usual case: the first known layout of this length.
    layouts = _PE_LAYOUTS.get(vend - vstart)
    if layouts is not None and layouts[0].heads.unpack_from(buf, vstart) == layouts[0].expected:
        layout: _PeLayout | None = layouts[0]
    else:
        layout = _pe_layout(buf, vstart, vend)
    if layout is None or layout.most > max_addresses:
        return None
    pe = layout.build(buf, vstart)
    if pe is None:
        return None
    if len(_PE_CACHE) >= _CACHE_MAX:
        _PE_CACHE.clear()
    _PE_CACHE[key] = pe
    return pe


def pool_element_params(pe: PoolElementParam) -> int:
    """Parameters nested in a PE as the fast path reads it: transports, addresses, policy."""
    count = 2 + len(pe.user_transport.addresses)
    if pe.asap_transport is not None:
        count += 1 + len(pe.asap_transport.addresses)
    return count


def fast_pool_handle(buf: bytes, pos: int, end: int, max_size: int) -> tuple[bytes, int] | None:
    """Pool Handle TLV at ``pos`` within ``end``: (handle, position after its padding) or None."""
    if end - pos < 8:
        return None
    code, length = _HDR.unpack_from(buf, pos)
    following = pos + length + (-length & 3)
    if code != _POOL_HANDLE or length < 5 or length - 4 > max_size or following > end:
        return None
    return buf[pos + 4 : pos + length], following


def fast_pool_elements(
    buf: bytes, pos: int, end: int, limits: DecodeLimits, params_before: int
) -> list[PoolElementParam] | None:
    """Message-level Pool Element TLVs filling ``[pos, end)`` exactly (maybe none).

    ``params_before`` counts the message's parameters before them, for the limit.
    """
    if limits.max_nesting_depth < 3:  # addresses in a PE sit at depth 3
        return None
    max_addresses = limits.max_addresses
    pes: list[PoolElementParam] = []
    while pos < end:
        if end - pos < 4:
            return None
        code, length = _HDR.unpack_from(buf, pos)
        vend = pos + length
        if code != _POOL_ELEMENT or length & 3 or vend > end:
            return None
        pe = fast_pool_element(buf, pos + 4, vend, max_addresses)
        if pe is None:
            return None
        pes.append(pe)
        pos = vend
    if len(pes) > limits.max_pool_elements:
        return None
    # Every parameter has a 4-byte header of its own, so only a message longer than
    # 4 * max_parameters bytes can hold too many; count only then.
    budget = limits.max_parameters - params_before
    if end > 4 * budget and len(pes) + sum(map(pool_element_params, pes)) > budget:
        return None
    return pes


# --------------------------------------------------------------------------- transports


def read_transport(r: TlvReader, code: int, vstart: int, vend: int) -> Transport:
    """Transport parameter of type ``code`` from its value range in ``r``'s region."""
    return _transport(r.buffer, r.ctx, r.depth, code, vstart, vend)


def _transport(
    buf: Buffer, ctx: DecodeContext, depth: int, code: int, vstart: int, vend: int
) -> Transport:
    """``depth`` is the nesting depth of the transport TLV itself."""
    limits = ctx.limits
    # Its addresses are one level deeper.
    if depth < limits.max_nesting_depth and type(buf) is bytes:
        transport = _fast_transport(buf, code, vstart - 4, vend, limits.max_addresses)
        if transport is not None:
            _count_params(ctx, len(transport.addresses))
            return transport
    return _general_transport(buf, ctx, depth, code, vstart, vend)


def _general_transport(
    buf: Buffer, ctx: DecodeContext, depth: int, code: int, vstart: int, vend: int
) -> Transport:
    head = 8 if code == ParamType.DCCP_TRANSPORT else 4
    if vend - vstart < head:
        raise LengthError(f"transport parameter 0x{code:04X} too short")
    port, use = _U16U16.unpack_from(buf, vstart)
    addresses = _checked_addresses(buf, ctx, depth + 1, vstart + head, vend)
    if code == ParamType.SCTP_TRANSPORT:
        if not addresses:
            raise InvalidValueError(
                "SCTP transport without address", cause=ErrorCause.INVALID_ADDRESSES
            )
        return SctpTransport(port, tuple(addresses), use)
    if len(addresses) != 1:
        raise InvalidValueError(
            f"transport 0x{code:04X} needs exactly one address, has {len(addresses)}",
            cause=ErrorCause.INVALID_ADDRESSES,
        )
    if code == ParamType.TCP_TRANSPORT:
        return TcpTransport(port, (addresses[0],), use)
    if code == ParamType.UDP_TRANSPORT:
        return UdpTransport(port, (addresses[0],))
    if code == ParamType.UDP_LITE_TRANSPORT:
        return UdpLiteTransport(port, (addresses[0],))
    if code == ParamType.DCCP_TRANSPORT:
        (service_code,) = _U32.unpack_from(buf, vstart + 4)
        return DccpTransport(port, (addresses[0],), service_code)
    raise InvalidValueError(f"parameter 0x{code:04X} is not a transport")


def _checked_addresses(
    buf: Buffer, ctx: DecodeContext, depth: int, start: int, end: int
) -> list[IPAddress]:
    """Applies the unknown-parameter rule and reports precise errors."""
    inner = TlvReader(buf, start, end, ctx, depth)
    limit = ctx.limits.max_addresses
    addresses: list[IPAddress] = []
    while (item := inner.next()) is not None:
        acode, astart, avstart, avend = item
        if acode == ParamType.IPV4_ADDRESS:
            if avend - avstart != 4:
                raise LengthError("IPv4 address parameter must have Length 8")
        elif acode == ParamType.IPV6_ADDRESS:
            if avend - avstart != 16:
                raise LengthError("IPv6 address parameter must have Length 20")
        else:
            raise InvalidValueError(
                f"parameter 0x{acode:04X} inside a transport parameter",
                offending=bytes(buf[astart:avend]),
            )
        if len(addresses) >= limit:
            raise LimitExceededError(f"more than {limit} addresses in one transport")
        addresses.append(_address(bytes(buf[avstart:avend])))
    return addresses


# --------------------------------------------------------------------------- policies

_POLICY_ARG_NAMES = (
    "weight",
    "priority",
    "load",
    "load_degradation",
    "load_dpf",
    "weight_dpf",
    "distance",
)


def _policy_call(ptype: int, names: tuple[str, ...], values: list[str]) -> str:
    """Source of the ``_build_policy`` call making a ``ptype`` policy from ``values``."""
    arguments = ["0"] * len(_POLICY_ARG_NAMES)
    for name, value in zip(names, values, strict=True):
        arguments[_POLICY_ARG_NAMES.index(name)] = value
    return f"_build_policy({ptype}, {', '.join(arguments)})"


class _PolicyShape(NamedTuple):
    size: int  # bytes of wire fields after the policy type
    names: tuple[str, ...]  # the wire fields
    read: Callable[[Buffer, int], PolicyParam]  # the policy from its fields at an offset


def _policy_shape(ptype: int, names: tuple[str, ...]) -> _PolicyShape:
    values = [f"f{i}" for i in range(len(names))]
    unpack = f"    {', '.join(values)}, = _unpack(buf, at)\n" if names else ""
    source = f"def read(buf, at):\n{unpack}    return {_policy_call(ptype, names, values)}\n"
    fields = struct.Struct(f"!{len(names)}I")
    namespace: dict[str, Any] = {"_unpack": fields.unpack_from, "_build_policy": _build_policy}
    exec(source, namespace)
    return _PolicyShape(fields.size, names, namespace["read"])


#: Per policy type: its wire fields and a compiled reader of them.
_POLICY_SHAPES: dict[int, _PolicyShape] = {
    ptype: _policy_shape(ptype, names) for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def read_policy(r: TlvReader, vstart: int, vend: int) -> PolicyParam:
    return _policy(r.buffer, vstart, vend)


def _policy(buf: Buffer, vstart: int, vend: int) -> PolicyParam:
    if vend - vstart < 4:
        raise LengthError("policy parameter without a policy type")
    (ptype,) = _U32.unpack_from(buf, vstart)
    shape = _POLICY_SHAPES.get(ptype)
    if shape is None:
        raise InvalidValueError(
            f"unknown policy type 0x{ptype:08X}",
            cause=ErrorCause.RSPLIB_UNKNOWN_POLICY,
            offending=bytes(buf[vstart - 4 : vend]),
        )
    if vend - vstart - 4 < shape.size:
        raise LengthError(f"policy 0x{ptype:08X} needs {shape.size} bytes of fields")
    # Extra trailing fields are ignored: a newer sender may add some.
    return shape.read(buf, vstart + 4)


# --------------------------------------------------------------------------- pool elements


def read_pool_element(r: TlvReader, vstart: int, vend: int) -> PoolElementParam:
    buf = r.buffer
    ctx = r.ctx
    limits = ctx.limits
    ctx.pool_elements_seen += 1
    if ctx.pool_elements_seen > limits.max_pool_elements:
        raise LimitExceededError(f"more than {limits.max_pool_elements} pool elements")
    depth = r.depth + 1  # of the PE's own parameters
    # The PE's addresses are at depth + 1.
    if depth < limits.max_nesting_depth and type(buf) is bytes:
        pe = fast_pool_element(buf, vstart, vend, limits.max_addresses)
        if pe is not None:
            _count_params(ctx, pool_element_params(pe))
            return pe
    return _general_pool_element(buf, ctx, depth, vstart, vend)


def _general_pool_element(
    buf: Buffer, ctx: DecodeContext, depth: int, vstart: int, vend: int
) -> PoolElementParam:
    """``depth`` is the nesting depth of the PE's own parameters."""
    if vend - vstart < 12:
        raise LengthError("pool element parameter too short")
    identifier, home, life = _PE_FIXED.unpack_from(buf, vstart)
    if identifier == 0:
        raise InvalidValueError("pool element identifier 0", cause=ErrorCause.INVALID_PE_IDENTIFIER)
    inner = TlvReader(buf, vstart + 12, vend, ctx, depth)
    item = inner.next()
    if item is None or item[0] not in _TRANSPORT_CODES:
        raise MissingParameterError("pool element without user transport")
    user = _general_transport(buf, ctx, depth, item[0], item[2], item[3])
    pstart, pend = inner.expect(ParamType.POOL_MEMBER_SELECTION_POLICY, "pool element policy")
    policy = _policy(buf, pstart, pend)
    asap: Transport | None = None
    item = inner.next()
    if item is not None:
        if item[0] not in _TRANSPORT_CODES:
            raise InvalidValueError(
                f"unexpected parameter 0x{item[0]:04X} in pool element",
                offending=bytes(buf[item[1] : item[3]]),
            )
        asap = _general_transport(buf, ctx, depth, item[0], item[2], item[3])
        inner.finish("pool element")
    return PoolElementParam(identifier, home, life, user, policy, asap)


# --------------------------------------------------------------------------- other parameters


def read_server_information(r: TlvReader, vstart: int, vend: int) -> ServerInformation:
    if vend - vstart < 4:
        raise LengthError("server information parameter too short")
    (server_id,) = _U32.unpack_from(r.buffer, vstart)
    inner = r.child(vstart + 4, vend)
    item = inner.next()
    if item is None or item[0] not in _TRANSPORT_CODES:
        raise MissingParameterError("server information without transport")
    transport = read_transport(inner, item[0], item[2], item[3])
    inner.finish("server information")
    return ServerInformation(server_id, transport)


def read_operation_error(r: TlvReader, vstart: int, vend: int) -> OperationError:
    buf = r.buffer
    causes: list[ErrorCauseItem] = []
    pos = vstart
    limit = r.ctx.limits.max_parameters
    while pos < vend:
        if vend - pos < 4:
            raise TruncatedError("stray bytes where an error cause header should be")
        code, length = _HDR.unpack_from(buf, pos)
        if length < 4 or pos + length > vend:
            raise LengthError(f"error cause 0x{code:04X} has impossible Length {length}")
        if len(causes) >= limit:
            raise LimitExceededError("too many error causes")
        causes.append(ErrorCauseItem(code, bytes(buf[pos + 4 : pos + length])))
        pos += length + (-length & 3)
    return OperationError(tuple(causes))


def is_transport_code(code: int) -> bool:
    return code in _TRANSPORT_CODES


# ------------------------------------------------------------ public one-TLV decoders


def _single(
    tlv: Buffer, code: int | frozenset[int], what: str, limits: DecodeLimits
) -> tuple[TlvReader, int, int, int]:
    """Reader plus (code, value_start, value_end) for a buffer holding exactly one TLV."""
    r = TlvReader(tlv, 0, len(tlv), DecodeContext(limits))
    item = r.next()
    if item is None:
        raise MissingParameterError(f"{what} missing")
    found = item[0]
    if (found not in code) if isinstance(code, frozenset) else (found != code):
        raise MissingParameterError(f"{what} expected, found parameter 0x{found:04X}")
    r.finish(what)
    return r, found, item[2], item[3]


def decode_transport(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> Transport:
    """Decode one whole transport TLV (header included, padding optional)."""
    r, code, vs, ve = _single(tlv, _TRANSPORT_CODES, "transport parameter", limits)
    return read_transport(r, code, vs, ve)


def decode_policy(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> PolicyParam:
    r, _, vs, ve = _single(tlv, ParamType.POOL_MEMBER_SELECTION_POLICY, "policy", limits)
    return read_policy(r, vs, ve)


def decode_pool_element(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> PoolElementParam:
    r, _, vs, ve = _single(tlv, ParamType.POOL_ELEMENT, "pool element", limits)
    return read_pool_element(r, vs, ve)


def decode_server_information(
    tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS
) -> ServerInformation:
    r, _, vs, ve = _single(tlv, ParamType.SERVER_INFORMATION, "server information", limits)
    return read_server_information(r, vs, ve)


def decode_operation_error(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> OperationError:
    r, _, vs, ve = _single(tlv, ParamType.OPERATION_ERROR, "operation error", limits)
    return read_operation_error(r, vs, ve)


def decode_pool_handle(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    r, _, vs, ve = _single(tlv, ParamType.POOL_HANDLE, "pool handle", limits)
    return read_pool_handle(r, vs, ve)


def decode_pe_identifier(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    r, _, vs, ve = _single(tlv, ParamType.PE_IDENTIFIER, "PE identifier", limits)
    return read_u32(r, vs, ve, "PE identifier")


def decode_pe_checksum(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    r, _, vs, ve = _single(tlv, ParamType.PE_CHECKSUM, "PE checksum", limits)
    return read_pe_checksum(r, vs, ve)


def decode_cookie(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    r, _, vs, ve = _single(tlv, ParamType.COOKIE, "cookie", limits)
    return bytes(r.buffer[vs:ve])


def decode_hr_option(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    r, _, vs, ve = _single(tlv, ParamType.HANDLE_RESOLUTION_OPTION, "HR option", limits)
    return read_u32(r, vs, ve, "HR option")


def decode_address(tlv: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> IPAddress:
    r, code, vs, ve = _single(tlv, _ADDRESS_CODES, "address", limits)
    _fixed(vs, ve, 4 if code == ParamType.IPV4_ADDRESS else 16, "address")
    return _address(bytes(r.buffer[vs:ve]))


def iter_raw_params(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> Iterable[RawParam]:
    """All TLVs of a parameter region, unjudged (for dumps and tests)."""
    return TlvReader(data, 0, len(data), DecodeContext(limits)).raw_params()


__all__ = [
    "DEFAULT_LIMITS",
    "Buffer",
    "DecodeContext",
    "DecodeLimits",
    "RawParam",
    "TlvReader",
    "clear_decode_caches",
    "decode_address",
    "decode_cookie",
    "decode_hr_option",
    "decode_operation_error",
    "decode_pe_checksum",
    "decode_pe_identifier",
    "decode_policy",
    "decode_pool_element",
    "decode_pool_handle",
    "decode_server_information",
    "decode_transport",
    "encode_address",
    "encode_cookie",
    "encode_hr_option",
    "encode_operation_error",
    "encode_param",
    "encode_pe_checksum",
    "encode_pe_identifier",
    "encode_policy",
    "encode_pool_element",
    "encode_pool_handle",
    "encode_server_information",
    "encode_transport",
    "fast_policy_tlv",
    "fast_pool_element",
    "fast_pool_elements",
    "fast_pool_handle",
    "iter_raw_params",
    "pad4",
    "pool_element_params",
]
