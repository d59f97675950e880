"""The parameters of RFC 5354 (section 3) as frozen dataclasses.

These are plain values shared by the codecs, the handlespace and the
registrar. The byte layout lives in :mod:`rsplib.wire.reference.tlv` (the
reference codec) and :mod:`rsplib.wire.fastencode` / :mod:`rsplib.wire.fastdecode`
(the fast paths of the codec rsplib runs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar

from rsplib.wire.constants import ErrorCause, PolicyType, TransportUse, cause_name
from rsplib.wire.fastvalues import slot_init

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip(text: str) -> IPAddress:
    """Shorthand for ``ipaddress.ip_address`` with the precise return type."""
    return ipaddress.ip_address(text)


@slot_init
@dataclass(frozen=True, slots=True)
class SctpTransport:
    """SCTP Transport parameter (0x0004): one port, one or more addresses."""

    port: int
    addresses: tuple[IPAddress, ...]
    transport_use: int = TransportUse.DATA_PLUS_CONTROL


@slot_init
@dataclass(frozen=True, slots=True)
class TcpTransport:
    """TCP Transport parameter (0x0005): exactly one address.

    The project's TCP mapping advertises itself with this parameter.
    """

    port: int
    addresses: tuple[IPAddress, ...]
    transport_use: int = TransportUse.DATA_PLUS_CONTROL


@slot_init
@dataclass(frozen=True, slots=True)
class UdpTransport:
    """UDP Transport parameter (0x0006): exactly one address."""

    port: int
    addresses: tuple[IPAddress, ...]


@slot_init
@dataclass(frozen=True, slots=True)
class UdpLiteTransport:
    """UDP-Lite Transport parameter (0x0007): exactly one address."""

    port: int
    addresses: tuple[IPAddress, ...]


@slot_init
@dataclass(frozen=True, slots=True)
class DccpTransport:
    """DCCP Transport parameter (0x0003): service code, exactly one address."""

    port: int
    addresses: tuple[IPAddress, ...]
    service_code: int = 0


Transport = SctpTransport | TcpTransport | UdpTransport | UdpLiteTransport | DccpTransport


@slot_init
@dataclass(frozen=True, slots=True)
class PolicyParam:
    """Pool Member Selection Policy parameter (0x0008).

    Only the fields that the policy type carries on the wire are encoded
    (see ``POLICY_FIELDS``); the others must stay 0. Fractions (loads,
    degradations, DPF factors) are 32-bit with 0xFFFFFFFF meaning 1.0.
    ``distance`` is filled in by registrars for the DPF policies (ms).
    """

    policy_type: int
    weight: int = 0
    priority: int = 0
    load: int = 0
    load_degradation: int = 0
    load_dpf: int = 0
    weight_dpf: int = 0
    distance: int = 0

    #: Wire fields after the policy type, in order, per policy type.
    POLICY_FIELDS: ClassVar[dict[int, tuple[str, ...]]] = {
        PolicyType.ROUND_ROBIN: (),
        PolicyType.WEIGHTED_ROUND_ROBIN: ("weight",),
        PolicyType.RANDOM: (),
        PolicyType.WEIGHTED_RANDOM: ("weight",),
        PolicyType.PRIORITY: ("priority",),
        PolicyType.LEAST_USED: ("load",),
        PolicyType.LEAST_USED_DEGRADATION: ("load", "load_degradation"),
        PolicyType.PRIORITY_LEAST_USED: ("load", "load_degradation"),
        PolicyType.RANDOMIZED_LEAST_USED: ("load",),
        PolicyType.RANDOMIZED_PRIORITY_LEAST_USED: ("load", "load_degradation"),
        PolicyType.RANDOMIZED_LEAST_USED_DEGRADATION: ("load", "load_degradation"),
        PolicyType.PRIORITY_LEAST_USED_DEGRADATION: ("load", "load_degradation"),
        PolicyType.RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION: ("load", "load_degradation"),
        PolicyType.WEIGHTED_RANDOM_DPF: ("weight", "weight_dpf", "distance"),
        PolicyType.LEAST_USED_DPF: ("load", "load_dpf", "distance"),
        PolicyType.LEAST_USED_DEGRADATION_DPF: ("load", "load_degradation", "load_dpf", "distance"),
    }

    def wire_fields(self) -> tuple[int, ...]:
        """Values of the fields this policy type puts on the wire, in order."""
        return tuple(getattr(self, name) for name in self.POLICY_FIELDS[self.policy_type])


@slot_init
@dataclass(frozen=True, slots=True)
class PoolElementParam:
    """Pool Element parameter (0x000A).

    ``registration_life`` is in milliseconds. ``asap_transport`` is absent in
    ASAP messages and present in ENRP messages (RFC 5354, section 3.10: the
    registrar's own record of how to reach the PE's ASAP endpoint).
    """

    identifier: int
    home_registrar_id: int
    registration_life: int
    user_transport: Transport
    policy: PolicyParam
    asap_transport: Transport | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class ServerInformation:
    """Server Information parameter (0x000B): a registrar and its ENRP endpoint."""

    server_id: int
    transport: Transport


@slot_init
@dataclass(frozen=True, slots=True)
class ErrorCauseItem:
    """One cause inside an Operation Error; ``info`` is the raw cause body."""

    code: int
    info: bytes = b""

    @property
    def name(self) -> str:
        return cause_name(self.code)


@dataclass(frozen=True, slots=True)
class OperationError:
    """Operation Error parameter (0x000C): one or more causes."""

    causes: tuple[ErrorCauseItem, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, code: int, info: bytes = b"") -> OperationError:
        return cls((ErrorCauseItem(code, info),))

    @property
    def first_code(self) -> int:
        return self.causes[0].code if self.causes else ErrorCause.INVALID_VALUES
