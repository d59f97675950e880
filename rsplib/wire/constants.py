"""Number spaces of RSerPool (RFC 5352-5356) and rsplib's extensions.

One ``IntEnum`` per number space. Values are wire values; the names are used in
decoded output (``rsp-decode``) and logs.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PPID(IntEnum):
    """SCTP payload protocol identifiers (also carried by TCP-mapping records)."""

    DATA = 0
    ASAP = 11
    ENRP = 12
    FGP = 32
    PINGPONG = 33
    CALCAPP = 34
    SCRIPTING = 35


class AsapType(IntEnum):
    """ASAP message types (RFC 5352 section 2.2)."""

    REGISTRATION = 0x01
    DEREGISTRATION = 0x02
    REGISTRATION_RESPONSE = 0x03
    DEREGISTRATION_RESPONSE = 0x04
    HANDLE_RESOLUTION = 0x05
    HANDLE_RESOLUTION_RESPONSE = 0x06
    ENDPOINT_KEEP_ALIVE = 0x07
    ENDPOINT_KEEP_ALIVE_ACK = 0x08
    ENDPOINT_UNREACHABLE = 0x09
    SERVER_ANNOUNCE = 0x0A
    COOKIE = 0x0B
    COOKIE_ECHO = 0x0C
    BUSINESS_CARD = 0x0D
    ERROR = 0x0E


class EnrpType(IntEnum):
    """ENRP message types (RFC 5353 section 2.1)."""

    PRESENCE = 0x01
    HANDLE_TABLE_REQUEST = 0x02
    HANDLE_TABLE_RESPONSE = 0x03
    HANDLE_UPDATE = 0x04
    LIST_REQUEST = 0x05
    LIST_RESPONSE = 0x06
    INIT_TAKEOVER = 0x07
    INIT_TAKEOVER_ACK = 0x08
    TAKEOVER_SERVER = 0x09
    ERROR = 0x0A


class ParamType(IntEnum):
    """TLV parameter types (RFC 5354 section 2), without the action bits.

    ``HANDLE_RESOLUTION_OPTION`` is rsplib's extension; it is sent with the
    action bits ``10`` (skip silently) as 0x803F.
    """

    IPV4_ADDRESS = 0x0001
    IPV6_ADDRESS = 0x0002
    DCCP_TRANSPORT = 0x0003
    SCTP_TRANSPORT = 0x0004
    TCP_TRANSPORT = 0x0005
    UDP_TRANSPORT = 0x0006
    UDP_LITE_TRANSPORT = 0x0007
    POOL_MEMBER_SELECTION_POLICY = 0x0008
    POOL_HANDLE = 0x0009
    POOL_ELEMENT = 0x000A
    SERVER_INFORMATION = 0x000B
    OPERATION_ERROR = 0x000C
    COOKIE = 0x000D
    PE_IDENTIFIER = 0x000E
    PE_CHECKSUM = 0x000F
    HANDLE_RESOLUTION_OPTION = 0x003F


#: The two action bits of a parameter type (RFC 5354, section 3; the same idea as SCTP's).
PARAM_ACTION_MASK = 0xC000
PARAM_CODE_MASK = 0x3FFF
#: On-wire type of the Handle Resolution option (skip-silently action bits).
HANDLE_RESOLUTION_OPTION_WIRE_TYPE = 0x803F


class UnknownParamAction(IntEnum):
    """What a receiver does with a parameter type it does not recognise."""

    STOP = 0x0000  # stop processing the message, discard, do not report
    STOP_AND_REPORT = 0x4000  # stop, discard, report Unrecognized Parameter
    SKIP = 0x8000  # skip this parameter, go on
    SKIP_AND_REPORT = 0xC000  # skip, go on, report Unrecognized Parameter


class TransportUse(IntEnum):
    """Transport Use field of SCTP and TCP transport parameters."""

    DATA_ONLY = 0x0000
    DATA_PLUS_CONTROL = 0x0001


class PolicyType(IntEnum):
    """Pool member selection policy types (RFC 5356 and rsplib extensions)."""

    ROUND_ROBIN = 0x00000001
    WEIGHTED_ROUND_ROBIN = 0x00000002
    RANDOM = 0x00000003
    WEIGHTED_RANDOM = 0x00000004
    PRIORITY = 0x00000005
    LEAST_USED = 0x40000001
    LEAST_USED_DEGRADATION = 0x40000002
    PRIORITY_LEAST_USED = 0x40000003
    RANDOMIZED_LEAST_USED = 0x40000004
    RANDOMIZED_PRIORITY_LEAST_USED = 0xB0001001
    RANDOMIZED_LEAST_USED_DEGRADATION = 0xB0001002
    PRIORITY_LEAST_USED_DEGRADATION = 0xB0001003
    RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION = 0xB0001004
    WEIGHTED_RANDOM_DPF = 0xB0002001
    LEAST_USED_DPF = 0xB0002002
    LEAST_USED_DEGRADATION_DPF = 0xB0002003


class ErrorCause(IntEnum):
    """Operation Error cause codes: RFC 5354 plus rsplib's private codes.

    Any 16-bit value may arrive on the wire; decoders keep unknown codes as
    plain ``int``.
    """

    UNRECOGNIZED_PARAMETER = 0x0001
    UNRECOGNIZED_MESSAGE = 0x0002
    INVALID_VALUES = 0x0003
    NON_UNIQUE_PE_IDENTIFIER = 0x0004
    INCONSISTENT_POOLING_POLICY = 0x0005
    LACK_OF_RESOURCES = 0x0006
    INCONSISTENT_TRANSPORT_TYPE = 0x0007
    INCONSISTENT_DATA_CONTROL_CONFIGURATION = 0x0008
    UNKNOWN_POOL_HANDLE = 0x0009
    REJECTION_DUE_TO_SECURITY = 0x000A
    # rsplib private codes seen on the wire
    INVALID_MESSAGE = 0x0010
    INVALID_VALUE = 0x0011
    RSPLIB_INCOMPATIBLE_POLICY = 0x1009
    RSPLIB_INCOMPATIBLE_TRANSPORT = 0x100A
    RSPLIB_UNKNOWN_POLICY = 0x100B
    INVALID_PE_IDENTIFIER = 0xF000
    INVALID_POLICY = 0xF003
    INVALID_POOL_HANDLE = 0xF004
    INVALID_ADDRESSES = 0xF005
    INVALID_REGISTRATOR = 0xF006
    NO_USABLE_ASAP_ADDRESSES = 0xF007
    NO_USABLE_USER_ADDRESSES = 0xF008


def cause_name(code: int) -> str:
    """Name of a cause code, or its hex value for codes nobody named."""
    try:
        return ErrorCause(code).name
    except ValueError:
        return f"0x{code:04X}"


class AsapFlags(IntFlag):
    """Flag bits of ASAP messages (meaning depends on the message type)."""

    REJECT = 0x01  # Registration Response / Handle Resolution Response
    HOME = 0x01  # Endpoint Keep-Alive: adopt the sender as home registrar


class EnrpFlags(IntFlag):
    """Flag bits of ENRP messages (meaning depends on the message type)."""

    REPLY_REQUIRED = 0x01  # Presence
    OWN_CHILDREN_ONLY = 0x01  # Handle Table Request (W)
    REJECT = 0x01  # Handle Table Response / List Response
    MORE_TO_SEND = 0x02  # Handle Table Response (M)
    TAKEOVER_SUGGESTED = 0x01  # Handle Update (T)


class UpdateAction(IntEnum):
    """Update Action field of an ENRP Handle Update."""

    ADD_PE = 0x0000
    DEL_PE = 0x0001


# Well-known ports (IANA: asap-sctp 3863, enrp-sctp 9901) and rsplib's defaults for
# the CSP monitor, SCTP over UDP (RFC 6951) and the announce multicast groups.
ASAP_PORT = 3863
ENRP_PORT = 9901
CSP_PORT = 2960
SCTP_OVER_UDP_PORT = 9899
ASAP_ANNOUNCE_GROUP = "239.0.0.50"
ENRP_ANNOUNCE_GROUP = "239.0.0.51"

#: A 32-bit fraction field: 0xFFFFFFFF means 1.0.
FRACTION_MAX = 0xFFFFFFFF
#: Handle Resolution option value asking for as many PEs as allowed.
HR_ITEMS_MAX = 0xFFFFFFFF
