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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

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
    return encode_param(ParamType.POOL_HANDLE, bytes(handle))


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


def encode_transport(transport: Transport) -> bytes:
    """Any of the five transport parameters, with its address TLVs nested.

    Raises ValueError for a wrong address count (SCTP: at least one, the
    others: exactly one) or fields out of range.
    """
    entry = _TRANSPORT_TLV_CACHE.get(id(transport))
    if entry is not None and entry[0] is transport:
        return entry[1]
    try:
        code, head = _transport_head(transport)
    except struct.error as exc:
        raise ValueError(f"transport field out of range: {exc}") from exc
    tlv = encode_param(code, head + b"".join([encode_address(a) for a in transport.addresses]))
    if len(_TRANSPORT_TLV_CACHE) >= _ENCODE_CACHE_MAX:
        _TRANSPORT_TLV_CACHE.clear()
    _TRANSPORT_TLV_CACHE[id(transport)] = (transport, tlv)
    return tlv


# Per policy type: one Struct writing TLV header, policy type and the wire fields.
_POLICY_WRITERS: dict[int, tuple[struct.Struct, tuple[str, ...]]] = {
    ptype: (struct.Struct(f"!HH{len(names) + 1}I"), names)
    for ptype, names in PolicyParam.POLICY_FIELDS.items()
}


def encode_policy(policy: PolicyParam) -> bytes:
    """Policy TLV with exactly the fields its type carries (protocol-facts 5.1)."""
    writer = _POLICY_WRITERS.get(policy.policy_type)
    if writer is None:
        raise ValueError(f"policy type 0x{policy.policy_type:08X} has no wire encoding")
    fmt, names = writer
    try:
        return fmt.pack(
            ParamType.POOL_MEMBER_SELECTION_POLICY,
            fmt.size,
            policy.policy_type,
            *[getattr(policy, name) for name in names],
        )
    except struct.error as exc:
        raise ValueError(f"policy field out of 32-bit range: {policy!r}") from exc


def encode_pool_element(pe: PoolElementParam) -> bytes:
    """Pool Element TLV: ID, home registrar, life (ms), user transport, policy, [ASAP transport]."""
    entry = _PE_TLV_CACHE.get(id(pe))
    if entry is not None and entry[0] is pe:
        return entry[1]
    try:
        fixed = _PE_FIXED.pack(pe.identifier, pe.home_registrar_id, pe.registration_life)
    except struct.error as exc:
        raise ValueError(f"pool element field out of 32-bit range: {exc}") from exc
    if pe.asap_transport is None:
        value = fixed + encode_transport(pe.user_transport) + encode_policy(pe.policy)
    else:
        value = (
            fixed
            + encode_transport(pe.user_transport)
            + encode_policy(pe.policy)
            + encode_transport(pe.asap_transport)
        )
    tlv = encode_param(ParamType.POOL_ELEMENT, value)
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


_V4_CACHE: dict[bytes, ipaddress.IPv4Address] = {}
_V6_CACHE: dict[bytes, IPAddress] = {}
_ADDR_CACHE_MAX = 4096


def _address(packed: bytes) -> IPAddress:
    """Address object for packed bytes; a small cache because the same few addresses recur."""
    if len(packed) == 4:
        v4 = _V4_CACHE.get(packed)
        if v4 is None:
            v4 = ipaddress.IPv4Address(packed)
            if len(_V4_CACHE) >= _ADDR_CACHE_MAX:
                _V4_CACHE.clear()
            _V4_CACHE[packed] = v4
        return v4
    addr = _V6_CACHE.get(packed)
    if addr is None:
        # IPv4-mapped (::ffff:a.b.c.d) is returned as IPv4, the form encoders write.
        if packed.startswith(_V4_MAPPED_PREFIX):
            addr = ipaddress.IPv4Address(packed[12:])
        else:
            addr = ipaddress.IPv6Address(packed)
        if len(_V6_CACHE) >= _ADDR_CACHE_MAX:
            _V6_CACHE.clear()
        _V6_CACHE[packed] = addr
    return addr


def _count_params(ctx: DecodeContext, n: int) -> None:
    ctx.parameters_seen += n
    if ctx.parameters_seen > ctx.limits.max_parameters:
        raise LimitExceededError(f"more than {ctx.limits.max_parameters} parameters")


def _plain_addresses(buf: Buffer, pos: int, end: int) -> list[IPAddress] | None:
    """Fast path: a region holding only well-formed address TLVs; None if anything else."""
    addresses: list[IPAddress] = []
    while pos < end:
        if end - pos < 4:
            return None
        ptype, length = _HDR.unpack_from(buf, pos)
        if ptype == 1 and length == 8 and pos + 8 <= end:
            addresses.append(_address(bytes(buf[pos + 4 : pos + 8])))
            pos += 8
        elif ptype == 2 and length == 20 and pos + 20 <= end:
            addresses.append(_address(bytes(buf[pos + 4 : pos + 20])))
            pos += 20
        else:
            return None
    return addresses


def _checked_addresses(
    buf: Buffer, ctx: DecodeContext, depth: int, start: int, end: int
) -> list[IPAddress]:
    """General path: applies the unknown-parameter rule and reports precise errors."""
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


# Decoded pool elements, transports and policies recur constantly (the same PEs
# re-register and are resolved again and again), and building frozen dataclasses
# is the main cost of decoding. Values are immutable, so sharing one instance per distinct byte
# string is safe; the caches are bounded and simply start over when full.
_CACHE_MAX = 4096
_TRANSPORT_CACHE: dict[bytes, tuple[Transport, int]] = {}
_POLICY_CACHE: dict[bytes, PolicyParam] = {}
#: PE value bytes -> (PE, parameters inside it, most addresses in one of its transports)
_PE_CACHE: dict[bytes, tuple[PoolElementParam, int, int]] = {}


def read_transport(r: TlvReader, code: int, vstart: int, vend: int) -> Transport:
    """Transport parameter of type ``code`` from its value range in ``r``'s region."""
    return _transport(r.buffer, r.ctx, r.depth, code, vstart, vend)


def _transport(
    buf: Buffer, ctx: DecodeContext, depth: int, code: int, vstart: int, vend: int
) -> Transport:
    """``depth`` is the nesting depth of the transport TLV itself."""
    limits = ctx.limits
    fast = depth < limits.max_nesting_depth
    key = bytes(buf[vstart - 4 : vend])
    if fast:
        hit = _TRANSPORT_CACHE.get(key)
        if hit is not None and len(hit[0].addresses) <= limits.max_addresses:
            _count_params(ctx, hit[1])
            return hit[0]
    params_before = ctx.parameters_seen
    reports_before = len(ctx.unrecognized)
    transport = _build_transport(buf, ctx, depth, code, vstart, vend, fast)
    # Only cache what decoded without side effects beyond the parameter count.
    if fast and len(ctx.unrecognized) == reports_before:
        if len(_TRANSPORT_CACHE) >= _CACHE_MAX:
            _TRANSPORT_CACHE.clear()
        _TRANSPORT_CACHE[key] = (transport, ctx.parameters_seen - params_before)
    return transport


def _build_transport(
    buf: Buffer, ctx: DecodeContext, depth: int, code: int, vstart: int, vend: int, fast: bool
) -> Transport:
    head = 8 if code == ParamType.DCCP_TRANSPORT else 4
    if vend - vstart < head:
        raise LengthError(f"transport parameter 0x{code:04X} too short")
    port, use = _U16U16.unpack_from(buf, vstart)
    addresses = _plain_addresses(buf, vstart + head, vend) if fast else None
    if addresses is not None and len(addresses) <= ctx.limits.max_addresses:
        _count_params(ctx, len(addresses))
    else:
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


# Per policy type: a Struct for its wire fields and, for each of them, the
# positional index in PolicyParam's constructor (after policy_type).
_POLICY_ARG_NAMES = (
    "weight",
    "priority",
    "load",
    "load_degradation",
    "load_dpf",
    "weight_dpf",
    "distance",
)
_POLICY_SHAPES: dict[int, tuple[struct.Struct, tuple[int, ...]]] = {
    ptype: (struct.Struct(f"!{len(names)}I"), tuple(_POLICY_ARG_NAMES.index(n) for n in names))
    for ptype, names in PolicyParam.POLICY_FIELDS.items()
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
    fmt, positions = shape
    if vend - vstart - 4 < fmt.size:
        raise LengthError(f"policy 0x{ptype:08X} needs {fmt.size} bytes of fields")
    # Extra trailing fields are ignored: a newer sender may add some.
    key = bytes(buf[vstart : vstart + 4 + fmt.size])
    policy = _POLICY_CACHE.get(key)
    if policy is None:
        args = [0, 0, 0, 0, 0, 0, 0]
        for index, value in zip(positions, fmt.unpack_from(buf, vstart + 4), strict=True):
            args[index] = value
        policy = PolicyParam(ptype, *args)
        if len(_POLICY_CACHE) >= _CACHE_MAX:
            _POLICY_CACHE.clear()
        _POLICY_CACHE[key] = policy
    return policy


def read_pool_element(r: TlvReader, vstart: int, vend: int) -> PoolElementParam:
    buf = r.buffer
    ctx = r.ctx
    limits = ctx.limits
    ctx.pool_elements_seen += 1
    if ctx.pool_elements_seen > limits.max_pool_elements:
        raise LimitExceededError(f"more than {limits.max_pool_elements} pool elements")
    depth = r.depth + 1  # of the PE's own parameters
    fast = depth < limits.max_nesting_depth
    key = b""
    if fast:
        # Only well-formed PEs are cached, so a hit needs no further checks but the limits.
        key = bytes(buf[vstart:vend])
        hit = _PE_CACHE.get(key)
        if hit is not None and hit[2] <= limits.max_addresses:
            ctx.parameters_seen += hit[1]
            if ctx.parameters_seen > limits.max_parameters:
                raise LimitExceededError(f"more than {limits.max_parameters} parameters")
            return hit[0]
    if vend - vstart < 12:
        raise LengthError("pool element parameter too short")
    identifier, home, life = _PE_FIXED.unpack_from(buf, vstart)
    if identifier == 0:
        raise InvalidValueError("pool element identifier 0", cause=ErrorCause.INVALID_PE_IDENTIFIER)
    if fast:
        # Fast path for the usual layout; anything unusual is re-read by the general path.
        params_before = ctx.parameters_seen
        reports_before = len(ctx.unrecognized)
        parsed = _plain_pool_element(buf, ctx, depth, vstart + 12, vend)
        if parsed is not None:
            pe = PoolElementParam(identifier, home, life, *parsed)
            if len(ctx.unrecognized) == reports_before:
                if len(_PE_CACHE) >= _CACHE_MAX:
                    _PE_CACHE.clear()
                most = max(len(parsed[0].addresses), len(parsed[2].addresses) if parsed[2] else 0)
                _PE_CACHE[key] = (pe, ctx.parameters_seen - params_before, most)
            return pe
    inner = TlvReader(buf, vstart + 12, vend, ctx, depth)
    item = inner.next()
    if item is None or item[0] not in _TRANSPORT_CODES:
        raise MissingParameterError("pool element without user transport")
    user = read_transport(inner, item[0], item[2], item[3])
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
        asap = read_transport(inner, item[0], item[2], item[3])
        inner.finish("pool element")
    return PoolElementParam(identifier, home, life, user, policy, asap)


def _plain_pool_element(
    buf: Buffer, ctx: DecodeContext, depth: int, pos: int, end: int
) -> tuple[Transport, PolicyParam, Transport | None] | None:
    """User transport, policy, optional ASAP transport and nothing else; else None."""
    if end - pos < 8:
        return None
    utype, ulen = _HDR.unpack_from(buf, pos)
    uend = pos + ulen
    ppos = uend + (-ulen & 3)
    if utype not in _TRANSPORT_CODES or ulen < 4 or ppos + 4 > end:
        return None
    ptype, plen = _HDR.unpack_from(buf, ppos)
    pend = ppos + plen
    apos = pend + (-plen & 3)
    if ptype != ParamType.POOL_MEMBER_SELECTION_POLICY or plen < 4 or pend > end:
        return None
    if apos >= end:
        _count_params(ctx, 2)
        return (
            _transport(buf, ctx, depth, utype, pos + 4, uend),
            _policy(buf, ppos + 4, pend),
            None,
        )
    if end - apos < 4:
        return None
    atype, alen = _HDR.unpack_from(buf, apos)
    aend = apos + alen
    if atype not in _TRANSPORT_CODES or alen < 4 or aend > end or aend + (-alen & 3) < end:
        return None
    _count_params(ctx, 3)
    return (
        _transport(buf, ctx, depth, utype, pos + 4, uend),
        _policy(buf, ppos + 4, pend),
        _transport(buf, ctx, depth, atype, apos + 4, aend),
    )


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
    "iter_raw_params",
    "pad4",
]
