"""The parameters of RFC 5354: TLV framing, the unknown-parameter rule, one codec per parameter.

Every parameter is a TLV (RFC 5354, section 3): Type (16 bits, the upper two
being the "unrecognized action"), Length (16 bits, header plus value, padding
excluded), the value, then zero padding to a multiple of 4 bytes. A parameter
nested in another (addresses in a transport, transports and the policy in a
pool element) is padded on its own, and the parent's Length counts it with that
padding.

Encoders (``encode_*``) take a value from :mod:`rsplib.wire.params` and return
the whole padded TLV. Decoders (``read_*``) take a :class:`TlvReader` and one
:class:`Tlv` it returned and give the value back; they raise only
:class:`~rsplib.wire.errors.ProtocolError` subclasses, carrying the cause a
receiver answers with. The parameters appear in the order of RFC 5354's
section 3, followed by rsplib's Handle Resolution option.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
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
from rsplib.wire.limits import DEFAULT_LIMITS, DecodeLimits
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

_TLV_HEADER = struct.Struct("!HH")  # type, length
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:a.b.c.d

TRANSPORT_CODES = frozenset(
    {
        ParamType.DCCP_TRANSPORT,
        ParamType.SCTP_TRANSPORT,
        ParamType.TCP_TRANSPORT,
        ParamType.UDP_TRANSPORT,
        ParamType.UDP_LITE_TRANSPORT,
    }
)
_ADDRESS_CODES = frozenset({ParamType.IPV4_ADDRESS, ParamType.IPV6_ADDRESS})
_KNOWN_CODES = frozenset(int(t) for t in ParamType)


def pad4(length: int) -> int:
    """Number of zero bytes that bring ``length`` to a multiple of 4."""
    return -length & 3


def _pack(layout: struct.Struct, what: str, *values: int) -> bytes:
    """Fixed fields; a value that does not fit its field is a ValueError naming ``what``."""
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise ValueError(f"{what} field out of range: {exc}") from exc


# ------------------------------------------------------------------------------------------ framing


def encode_param(wire_type: int, value: bytes) -> bytes:
    """One TLV: header, value, zero padding. ``wire_type`` includes any action bits."""
    length = 4 + len(value)
    if length > 0xFFFF:
        raise ValueError(f"parameter value too long ({len(value)} bytes)")
    return _TLV_HEADER.pack(wire_type, length) + value + bytes(pad4(length))


@dataclass(slots=True)
class DecodeContext:
    """Per-message decoding state: the limits, what they count, skipped-to-report TLVs."""

    limits: DecodeLimits = DEFAULT_LIMITS
    parameters_seen: int = 0
    pool_elements_seen: int = 0
    #: Whole TLVs (without padding) skipped under action bits 11.
    unrecognized: list[bytes] = field(default_factory=list)


class Tlv(NamedTuple):
    """Where one parameter sits in the reader's buffer."""

    code: int  # the type without the action bits
    start: int  # offset of the TLV header
    value_start: int
    value_end: int  # end of the value; the padding follows


class RawParam(NamedTuple):
    """One TLV as read: on-wire type, code without action bits, value, whole TLV (no padding)."""

    wire_type: int
    code: int
    value: bytes
    raw: bytes


class TlvReader:
    """Reads the consecutive TLVs of one region ``[start, end)`` of a buffer.

    :meth:`next` applies the unknown-parameter rule of RFC 5354, section 3, and
    returns recognised parameters only; :meth:`raw_params` yields every TLV
    unjudged. A final TLV whose padding is cut off by the region end is
    accepted (rsplib sends message Lengths that leave out the last padding).
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
        self._pending: Tlv | None = None

    @property
    def ctx(self) -> DecodeContext:
        return self._ctx

    @property
    def limits(self) -> DecodeLimits:
        return self._ctx.limits

    @property
    def depth(self) -> int:
        """Nesting depth of the TLVs in this region (message level = 1)."""
        return self._depth

    def between(self, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of the buffer."""
        return bytes(self._buf[start:end])

    def value(self, tlv: Tlv) -> bytes:
        """The value bytes of ``tlv``."""
        return self.between(tlv.value_start, tlv.value_end)

    def whole(self, tlv: Tlv) -> bytes:
        """The TLV as sent, header included, padding excluded (what error causes echo)."""
        return self.between(tlv.start, tlv.value_end)

    def unpack(self, layout: struct.Struct, offset: int) -> tuple[int, ...]:
        """Fixed fields at ``offset`` of the buffer (the caller checked they fit)."""
        return layout.unpack_from(self._buf, offset)

    def child(self, tlv: Tlv, skip: int = 0) -> TlvReader:
        """A reader for the TLVs nested in ``tlv``'s value, after ``skip`` bytes of fixed fields."""
        return TlvReader(
            self._buf, tlv.value_start + skip, tlv.value_end, self._ctx, self._depth + 1
        )

    def _read_header(self) -> tuple[int, Tlv] | None:
        """The next TLV as (on-wire type, Tlv), or None at the end of the region."""
        pos, end = self._pos, self._end
        if pos >= end:
            return None
        if end - pos < 4:
            raise TruncatedError(f"{end - pos} stray bytes where a parameter header should be")
        ctx = self._ctx
        ctx.parameters_seen += 1
        if ctx.parameters_seen > ctx.limits.max_parameters:
            raise LimitExceededError(f"more than {ctx.limits.max_parameters} parameters")
        wire_type, length = _TLV_HEADER.unpack_from(self._buf, pos)
        if length < 4:
            raise LengthError(f"parameter 0x{wire_type:04X} has Length {length} < 4")
        if pos + length > end:
            raise LengthError(
                f"parameter 0x{wire_type:04X} (Length {length}) runs past its enclosing region"
            )
        self._pos = min(pos + length + pad4(length), end)
        return wire_type, Tlv(wire_type & PARAM_CODE_MASK, pos, pos + 4, pos + length)

    def raw_params(self) -> Iterator[RawParam]:
        """Every remaining TLV, recognised or not, without applying the action bits."""
        while (item := self._read_header()) is not None:
            wire_type, tlv = item
            yield RawParam(wire_type, tlv.code, self.value(tlv), self.whole(tlv))

    def _next_recognised(self) -> Tlv | None:
        """RFC 5354, section 3: the upper two bits of an unknown type say what to do."""
        while (item := self._read_header()) is not None:
            wire_type, tlv = item
            if tlv.code in _KNOWN_CODES:
                return tlv
            action = wire_type & PARAM_ACTION_MASK
            if action == UnknownParamAction.STOP:
                raise UnrecognizedParameterError(
                    f"unrecognised parameter 0x{wire_type:04X}",
                    report=False,
                    offending=self.whole(tlv),
                )
            if action == UnknownParamAction.STOP_AND_REPORT:
                raise UnrecognizedParameterError(
                    f"unrecognised parameter 0x{wire_type:04X}",
                    report=True,
                    offending=self.whole(tlv),
                )
            if action == UnknownParamAction.SKIP_AND_REPORT:
                self._ctx.unrecognized.append(self.whole(tlv))
            # UnknownParamAction.SKIP: nothing to do
        return None

    def peek(self) -> Tlv | None:
        """The next recognised TLV without consuming it (None at the end)."""
        if self._pending is None:
            self._pending = self._next_recognised()
        return self._pending

    def next(self) -> Tlv | None:
        """The next recognised TLV, or None at the end."""
        tlv = self._pending
        if tlv is None:
            return self._next_recognised()
        self._pending = None
        return tlv

    def expect(self, code: int, what: str) -> Tlv:
        """The next TLV, which must have ``code``."""
        tlv = self.next()
        if tlv is None:
            raise MissingParameterError(f"{what} missing")
        if tlv.code != code:
            raise MissingParameterError(
                f"{what} expected, found parameter 0x{tlv.code:04X}", offending=self.whole(tlv)
            )
        return tlv

    def take_if(self, code: int) -> Tlv | None:
        """The next TLV if it has ``code`` (consumed), else None (left in place)."""
        tlv = self.peek()
        if tlv is None or tlv.code != code:
            return None
        self._pending = None
        return tlv

    def take_run(self, code: int) -> list[Tlv]:
        """The consecutive TLVs with ``code`` starting here (maybe none)."""
        run: list[Tlv] = []
        while (tlv := self.take_if(code)) is not None:
            run.append(tlv)
        return run

    def finish(self, what: str) -> None:
        """Nothing but skippable unknown TLVs may remain."""
        tlv = self.next()
        if tlv is not None:
            raise InvalidValueError(
                f"unexpected parameter 0x{tlv.code:04X} in {what}", offending=self.whole(tlv)
            )


def _fixed_size(tlv: Tlv, size: int, what: str) -> None:
    if tlv.value_end - tlv.value_start != size:
        raise LengthError(f"{what} value has {tlv.value_end - tlv.value_start} bytes, needs {size}")


# ------------------------------------------------------------------------------- 3.1, 3.2 addresses


def encode_address(address: IPAddress) -> bytes:
    """IPv4 (RFC 5354, section 3.1) or IPv6 (section 3.2) Address.

    An IPv4-mapped IPv6 address goes out as IPv4, as rsplib sends it.
    """
    if isinstance(address, IPv4Address):
        return encode_param(ParamType.IPV4_ADDRESS, address.packed)
    if isinstance(address, IPv6Address):
        packed = address.packed
        if packed.startswith(_V4_MAPPED_PREFIX):
            return encode_param(ParamType.IPV4_ADDRESS, packed[12:])
        return encode_param(ParamType.IPV6_ADDRESS, packed)
    raise TypeError(f"not an IP address: {address!r}")


def read_address(r: TlvReader, tlv: Tlv) -> IPAddress:
    """The address; an IPv4-mapped IPv6 address comes back as IPv4, the form encoders write."""
    if tlv.code == ParamType.IPV4_ADDRESS:
        if tlv.value_end - tlv.value_start != 4:
            raise LengthError("IPv4 address parameter must have Length 8")
        return IPv4Address(r.value(tlv))
    if tlv.value_end - tlv.value_start != 16:
        raise LengthError("IPv6 address parameter must have Length 20")
    packed = r.value(tlv)
    if packed.startswith(_V4_MAPPED_PREFIX):
        return IPv4Address(packed[12:])
    return IPv6Address(packed)


# ------------------------------------------------------------------------------- 3.3-3.7 transports

_PORT_USE = struct.Struct("!HH")  # port, transport use (reserved for UDP and UDP-Lite)
_DCCP_HEAD = struct.Struct("!HHI")  # port, reserved, service code


def encode_transport(transport: Transport) -> bytes:
    """DCCP, SCTP, TCP, UDP or UDP-Lite Transport (RFC 5354, sections 3.3-3.7).

    SCTP carries one or more addresses, the others exactly one; anything else,
    and fields out of range, are a ValueError.
    """
    addresses = transport.addresses
    if isinstance(transport, SctpTransport):
        if not addresses:
            raise ValueError("an SCTP transport needs at least one address")
    elif len(addresses) != 1:
        raise ValueError(f"{type(transport).__name__} needs exactly one address")
    port = transport.port
    if isinstance(transport, SctpTransport):
        code, head = (
            ParamType.SCTP_TRANSPORT,
            _pack(_PORT_USE, "SCTP transport", port, transport.transport_use),
        )
    elif isinstance(transport, TcpTransport):
        code, head = (
            ParamType.TCP_TRANSPORT,
            _pack(_PORT_USE, "TCP transport", port, transport.transport_use),
        )
    elif isinstance(transport, UdpTransport):
        code, head = ParamType.UDP_TRANSPORT, _pack(_PORT_USE, "UDP transport", port, 0)
    elif isinstance(transport, UdpLiteTransport):
        code, head = ParamType.UDP_LITE_TRANSPORT, _pack(_PORT_USE, "UDP-Lite transport", port, 0)
    elif isinstance(transport, DccpTransport):
        code, head = (
            ParamType.DCCP_TRANSPORT,
            _pack(_DCCP_HEAD, "DCCP transport", port, 0, transport.service_code),
        )
    else:
        raise TypeError(f"not a transport: {transport!r}")
    return encode_param(code, head + b"".join(encode_address(a) for a in addresses))


def read_transport(r: TlvReader, tlv: Tlv) -> Transport:
    """Any transport parameter: fixed fields, then its address TLVs one level deeper."""
    code = tlv.code
    head = _DCCP_HEAD.size if code == ParamType.DCCP_TRANSPORT else _PORT_USE.size
    if tlv.value_end - tlv.value_start < head:
        raise LengthError(f"transport parameter 0x{code:04X} too short")
    port, use = r.unpack(_PORT_USE, tlv.value_start)
    addresses = _read_addresses(r.child(tlv, head))
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
    (_, _, service_code) = r.unpack(_DCCP_HEAD, tlv.value_start)
    return DccpTransport(port, (addresses[0],), service_code)


def _read_addresses(inner: TlvReader) -> list[IPAddress]:
    """A transport's address TLVs: nothing else may be there, and at most the limit."""
    limit = inner.limits.max_addresses
    addresses: list[IPAddress] = []
    while (tlv := inner.next()) is not None:
        if tlv.code not in _ADDRESS_CODES:
            raise InvalidValueError(
                f"parameter 0x{tlv.code:04X} inside a transport parameter",
                offending=inner.whole(tlv),
            )
        address = read_address(inner, tlv)
        if len(addresses) >= limit:
            raise LimitExceededError(f"more than {limit} addresses in one transport")
        addresses.append(address)
    return addresses


# --------------------------------------------------------------------------------------- 3.8 policy

_POLICY_TYPE = _U32


def encode_policy(policy: PolicyParam) -> bytes:
    """Pool Member Selection Policy (RFC 5354, section 3.8): the policy type, then
    exactly the 32-bit fields that type carries (RFC 5356, one subsection per policy)."""
    names = PolicyParam.POLICY_FIELDS.get(policy.policy_type)
    if names is None:
        raise ValueError(f"policy type 0x{policy.policy_type:08X} has no wire encoding")
    fields = struct.Struct(f"!I{len(names)}I")
    values = [getattr(policy, name) for name in names]
    return encode_param(
        ParamType.POOL_MEMBER_SELECTION_POLICY,
        _pack(fields, "policy", policy.policy_type, *values),
    )


def read_policy(r: TlvReader, tlv: Tlv) -> PolicyParam:
    """The policy; fields a newer sender adds after the known ones are ignored."""
    size = tlv.value_end - tlv.value_start
    if size < 4:
        raise LengthError("policy parameter without a policy type")
    (policy_type,) = r.unpack(_POLICY_TYPE, tlv.value_start)
    names = PolicyParam.POLICY_FIELDS.get(policy_type)
    if names is None:
        raise InvalidValueError(
            f"unknown policy type 0x{policy_type:08X}",
            cause=ErrorCause.RSPLIB_UNKNOWN_POLICY,
            offending=r.whole(tlv),
        )
    fields = struct.Struct(f"!{len(names)}I")
    if size - 4 < fields.size:
        raise LengthError(f"policy 0x{policy_type:08X} needs {fields.size} bytes of fields")
    values = r.unpack(fields, tlv.value_start + 4)
    return PolicyParam(policy_type, **dict(zip(names, values, strict=True)))


# ---------------------------------------------------------------------------------- 3.9 pool handle


def encode_pool_handle(handle: bytes) -> bytes:
    """Pool Handle (RFC 5354, section 3.9): the handle's bytes."""
    return encode_param(ParamType.POOL_HANDLE, bytes(handle))


def read_pool_handle(r: TlvReader, tlv: Tlv) -> bytes:
    """A non-empty handle within the limit; otherwise cause INVALID_POOL_HANDLE."""
    size = tlv.value_end - tlv.value_start
    limit = r.limits.max_pool_handle
    if size == 0:
        raise InvalidValueError("empty pool handle", cause=ErrorCause.INVALID_POOL_HANDLE)
    if size > limit:
        raise InvalidValueError(
            f"pool handle of {size} bytes exceeds {limit}", cause=ErrorCause.INVALID_POOL_HANDLE
        )
    return r.value(tlv)


# -------------------------------------------------------------------------------- 3.10 pool element

_PE_FIXED = struct.Struct("!III")  # PE identifier, home registrar identifier, registration life


def encode_pool_element(pe: PoolElementParam) -> bytes:
    """Pool Element (RFC 5354, section 3.10): identifier, home registrar, registration
    life (ms), user transport, policy and, in ENRP only, the ASAP transport."""
    fixed = _pack(
        _PE_FIXED, "pool element", pe.identifier, pe.home_registrar_id, pe.registration_life
    )
    parts = [fixed, encode_transport(pe.user_transport), encode_policy(pe.policy)]
    if pe.asap_transport is not None:
        parts.append(encode_transport(pe.asap_transport))
    return encode_param(ParamType.POOL_ELEMENT, b"".join(parts))


def read_pool_element(r: TlvReader, tlv: Tlv) -> PoolElementParam:
    ctx = r.ctx
    ctx.pool_elements_seen += 1
    if ctx.pool_elements_seen > ctx.limits.max_pool_elements:
        raise LimitExceededError(f"more than {ctx.limits.max_pool_elements} pool elements")
    if tlv.value_end - tlv.value_start < _PE_FIXED.size:
        raise LengthError("pool element parameter too short")
    identifier, home, life = r.unpack(_PE_FIXED, tlv.value_start)
    if identifier == 0:
        raise InvalidValueError("pool element identifier 0", cause=ErrorCause.INVALID_PE_IDENTIFIER)
    inner = r.child(tlv, _PE_FIXED.size)
    first = inner.next()
    if first is None or first.code not in TRANSPORT_CODES:
        raise MissingParameterError("pool element without user transport")
    user = read_transport(inner, first)
    policy = read_policy(
        inner, inner.expect(ParamType.POOL_MEMBER_SELECTION_POLICY, "pool element policy")
    )
    asap: Transport | None = None
    last = inner.next()
    if last is not None:
        if last.code not in TRANSPORT_CODES:
            raise InvalidValueError(
                f"unexpected parameter 0x{last.code:04X} in pool element",
                offending=inner.whole(last),
            )
        asap = read_transport(inner, last)
        inner.finish("pool element")
    return PoolElementParam(identifier, home, life, user, policy, asap)


# -------------------------------------------------------------------------- 3.11 server information


def encode_server_information(info: ServerInformation) -> bytes:
    """Server Information (RFC 5354, section 3.11): a registrar's id and one transport."""
    server_id = _pack(_U32, "server id", info.server_id)
    return encode_param(ParamType.SERVER_INFORMATION, server_id + encode_transport(info.transport))


def read_server_information(r: TlvReader, tlv: Tlv) -> ServerInformation:
    if tlv.value_end - tlv.value_start < 4:
        raise LengthError("server information parameter too short")
    (server_id,) = r.unpack(_U32, tlv.value_start)
    inner = r.child(tlv, 4)
    first = inner.next()
    if first is None or first.code not in TRANSPORT_CODES:
        raise MissingParameterError("server information without transport")
    transport = read_transport(inner, first)
    inner.finish("server information")
    return ServerInformation(server_id, transport)


# ----------------------------------------------------------------------------- 3.12 operation error


def encode_operation_error(error: OperationError) -> bytes:
    """Operation Error (RFC 5354, section 3.12): causes, each code, length
    (header plus info), info and padding, like a TLV of its own."""
    parts = []
    for cause in error.causes:
        if not 0 <= cause.code <= 0xFFFF:
            raise ValueError(f"cause code must fit in 16 bits, got {cause.code!r}")
        length = 4 + len(cause.info)
        if length > 0xFFFF:
            raise ValueError("cause info too long")
        parts.append(_TLV_HEADER.pack(cause.code, length) + cause.info + bytes(pad4(length)))
    return encode_param(ParamType.OPERATION_ERROR, b"".join(parts))


def read_operation_error(r: TlvReader, tlv: Tlv) -> OperationError:
    """Any cause code is kept; as many causes as the parameter limit allows."""
    causes: list[ErrorCauseItem] = []
    pos, end = tlv.value_start, tlv.value_end
    limit = r.limits.max_parameters
    while pos < end:
        if end - pos < 4:
            raise TruncatedError("stray bytes where an error cause header should be")
        code, length = r.unpack(_TLV_HEADER, pos)
        if length < 4 or pos + length > end:
            raise LengthError(f"error cause 0x{code:04X} has impossible Length {length}")
        if len(causes) >= limit:
            raise LimitExceededError("too many error causes")
        causes.append(ErrorCauseItem(code, r.between(pos + 4, pos + length)))
        pos += length + pad4(length)
    return OperationError(tuple(causes))


# ---------------------------------------------------------------------------------------- 3.13-3.15


def encode_cookie(cookie: bytes) -> bytes:
    """Cookie (RFC 5354, section 3.13): opaque bytes of the pool element."""
    return encode_param(ParamType.COOKIE, bytes(cookie))


def read_cookie(r: TlvReader, tlv: Tlv) -> bytes:
    return r.value(tlv)


def encode_pe_identifier(identifier: int) -> bytes:
    """Pool Element Identifier (RFC 5354, section 3.14): 32 bits."""
    return encode_param(ParamType.PE_IDENTIFIER, _pack(_U32, "PE identifier", identifier))


def read_pe_identifier(r: TlvReader, tlv: Tlv) -> int:
    _fixed_size(tlv, 4, "PE identifier")
    (identifier,) = r.unpack(_U32, tlv.value_start)
    return identifier


def encode_pe_checksum(checksum: int) -> bytes:
    """PE Checksum (RFC 5354, section 3.15): the 16-bit ownership checksum."""
    return encode_param(ParamType.PE_CHECKSUM, _pack(_U16, "PE checksum", checksum))


def read_pe_checksum(r: TlvReader, tlv: Tlv) -> int:
    _fixed_size(tlv, 2, "PE checksum")
    (checksum,) = r.unpack(_U16, tlv.value_start)
    return checksum


# ------------------------------------------------------------------------------- rsplib's HR option


def encode_hr_option(items: int) -> bytes:
    """rsplib's Handle Resolution option: how many PEs the pool user wants
    (``HR_ITEMS_MAX`` = as many as allowed), sent as 0x803F (skip if unknown)."""
    return encode_param(HANDLE_RESOLUTION_OPTION_WIRE_TYPE, _pack(_U32, "HR items", items))


def read_hr_option(r: TlvReader, tlv: Tlv) -> int:
    _fixed_size(tlv, 4, "HR option")
    (items,) = r.unpack(_U32, tlv.value_start)
    return items


# -------------------------------------------------------------------------------- any one parameter

ParamValue = (
    IPAddress
    | Transport
    | PolicyParam
    | bytes
    | PoolElementParam
    | ServerInformation
    | OperationError
    | int
)

#: The decoder of every parameter type.
READERS: dict[int, Callable[[TlvReader, Tlv], ParamValue]] = {
    ParamType.IPV4_ADDRESS: read_address,
    ParamType.IPV6_ADDRESS: read_address,
    ParamType.DCCP_TRANSPORT: read_transport,
    ParamType.SCTP_TRANSPORT: read_transport,
    ParamType.TCP_TRANSPORT: read_transport,
    ParamType.UDP_TRANSPORT: read_transport,
    ParamType.UDP_LITE_TRANSPORT: read_transport,
    ParamType.POOL_MEMBER_SELECTION_POLICY: read_policy,
    ParamType.POOL_HANDLE: read_pool_handle,
    ParamType.POOL_ELEMENT: read_pool_element,
    ParamType.SERVER_INFORMATION: read_server_information,
    ParamType.OPERATION_ERROR: read_operation_error,
    ParamType.COOKIE: read_cookie,
    ParamType.PE_IDENTIFIER: read_pe_identifier,
    ParamType.PE_CHECKSUM: read_pe_checksum,
    ParamType.HANDLE_RESOLUTION_OPTION: read_hr_option,
}


def decode_param(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> ParamValue:
    """The value of the one parameter ``data`` holds (header included, padding optional)."""
    r = TlvReader(data, 0, len(data), DecodeContext(limits))
    tlv = r.next()
    if tlv is None:
        raise MissingParameterError("parameter missing")
    value = READERS[tlv.code](r, tlv)
    r.finish("a single-parameter buffer")
    return value


def iter_raw_params(data: Buffer, limits: DecodeLimits = DEFAULT_LIMITS) -> Iterator[RawParam]:
    """All TLVs of a parameter region, unjudged (for dumps and tests)."""
    return TlvReader(data, 0, len(data), DecodeContext(limits)).raw_params()


__all__ = [
    "READERS",
    "TRANSPORT_CODES",
    "Buffer",
    "DecodeContext",
    "ParamValue",
    "RawParam",
    "Tlv",
    "TlvReader",
    "decode_param",
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
    "read_address",
    "read_cookie",
    "read_hr_option",
    "read_operation_error",
    "read_pe_checksum",
    "read_pe_identifier",
    "read_policy",
    "read_pool_element",
    "read_pool_handle",
    "read_server_information",
    "read_transport",
]
