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

Building the pool elements is where the time goes; :mod:`rsplib.wire.layouts`
makes it cheap (compiled PE layouts, caches of decoded values).
"""

from __future__ import annotations

import struct

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
from rsplib.wire.fastvalues import frozen_builder
from rsplib.wire.layouts import (
    CACHED_ADDRESSES,
    PE_LAYOUTS,
    POOL_ELEMENTS,
    PeLayout,
    pe_layout,
    policy_shape_at,
)
from rsplib.wire.limits import DecodeLimits
from rsplib.wire.params import PoolElementParam
from rsplib.wire.reference.message import HEADER_SIZE

_POOL_HANDLE = int(ParamType.POOL_HANDLE)
_POOL_ELEMENT = int(ParamType.POOL_ELEMENT)
_PE_IDENTIFIER = int(ParamType.PE_IDENTIFIER)

_TLV_HEADER = struct.Struct("!HH")
_U32 = struct.Struct("!I")
_U32_TLV = struct.Struct("!HHI")  # type, length, a 32-bit value
_HR_OPTION = HANDLE_RESOLUTION_OPTION_WIRE_TYPE
_IDS_AND_ACTION = struct.Struct("!IIHH")
_ACTIONS = {action.value: action for action in UpdateAction}

# Positional constructors taking every field, at about half the cost of the classes.
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

#: A PE value sorts below this exactly when its identifier (first 4 bytes) is 0.
_LOWEST_IDENTIFIER = b"\x00\x00\x00\x01"

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
        pe = POOL_ELEMENTS.get(key)
        if pe is not None:
            # Cached under other limits, a PE may hold more addresses than allowed now.
            if max_addresses < CACHED_ADDRESSES and _most_addresses(pe) > max_addresses:
                return None
            if counting:
                budget -= 1 + _nested_parameters(pe)
                if budget < 0:
                    return None
            pes.append(pe)
            pos = vend
            continue
        # pe_layout() inlined for the usual case: the latest layout of this length.
        layouts = PE_LAYOUTS.get(length - 4)
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
    policy_found = policy_shape_at(data, pos, end)
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
        code, length, identifier = _U32_TLV.unpack_from(data, pos)
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
    "deregistration",
    "deregistration_response",
    "endpoint_keep_alive",
    "endpoint_keep_alive_ack",
    "endpoint_unreachable",
    "handle_resolution",
    "handle_resolution_response",
    "handle_update",
    "registration",
    "registration_response",
]
