"""Configuration of the PE/PU side of ASAP: defaults equal rsplib's.

The timers and their defaults: docs/protocol-notes.md#timers-pe-pu.

Times are seconds (floats); rsplib's command-line arguments are milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Transport names shared with the registrar and the services.
TRANSPORT_TCP_MAPPING = "tcp-mapping"
TRANSPORT_SCTP = "sctp"


@dataclass(frozen=True, slots=True)
class AsapConfig:
    """Every knob of :class:`rsplib.asap.client.AsapClient`."""

    #: A registrar learned from a Server Announce is forgotten this long after the last one.
    registrar_announce_timeout: float = 5.0
    #: Length of one registrar hunt round (parallel connection attempts, waiting for announces).
    registrar_connect_timeout: float = 7.5
    #: Hunt rounds before :class:`~rsplib.asap.actions.NoRegistrar` is reported.
    registrar_connect_max_trials: int = 1
    #: Send timeout on a registrar connection (applied by the service; the core does not
    #: send). Requests waiting for a connection fail when the hunt gives up instead.
    registrar_request_timeout: float = 3.0
    #: No answer within this -> the registrar is considered dead: drop it, hunt again.
    registrar_response_timeout: float = 3.0
    #: Transmissions of one request (registrar connections that timed out on it) before it fails.
    registrar_request_max_trials: int = 1
    #: Registrars connected to in parallel during a hunt (first one up wins).
    registrar_parallel_connects: int = 3
    #: Pause after a failed hunt before PEs that must stay registered start the next one.
    registrar_hunt_retry_delay: float = 1.0
    #: A PE sends a full Registration this often (rsplib ``rspserver -rereginterval``).
    reregistration_interval: float = 30.0
    #: Registration Life put into Registrations, as a multiple of the interval (rsplib: 3).
    registration_life_factor: int = 3
    #: PU cache life of Handle Resolution answers; 0 = no cache (ask the registrar each time).
    stale_cache_value: float = 0.0
    #: "tcp-mapping" or "sctp": which transport parameters of a Server Announce are usable.
    transport: str = TRANSPORT_TCP_MAPPING

    def __post_init__(self) -> None:
        positive = (
            "registrar_announce_timeout",
            "registrar_connect_timeout",
            "registrar_request_timeout",
            "registrar_response_timeout",
            "reregistration_interval",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        at_least_one = (
            "registrar_connect_max_trials",
            "registrar_request_max_trials",
            "registrar_parallel_connects",
            "registration_life_factor",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.registrar_hunt_retry_delay < 0:
            raise ValueError("registrar_hunt_retry_delay must not be negative")
        if self.stale_cache_value < 0:
            raise ValueError("stale_cache_value must not be negative")
        if self.transport not in (TRANSPORT_TCP_MAPPING, TRANSPORT_SCTP):
            raise ValueError(f"transport must be tcp-mapping or sctp, not {self.transport!r}")
        if self.registration_life_ms > 0xFFFFFFFF:
            raise ValueError("registration life does not fit 32 bits of milliseconds")

    @property
    def registration_life_ms(self) -> int:
        """Registration Life field of our Registrations (milliseconds on the wire)."""
        return round(self.reregistration_interval * self.registration_life_factor * 1000)
