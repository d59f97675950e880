"""Component status reporting (CSP v0x0200 sender) for registrars, PEs and PUs."""

from rsplib.status.reporter import (
    DEFAULT_CSP_SERVER,
    StatusReporter,
    default_location,
    parse_server,
)

__all__ = ["DEFAULT_CSP_SERVER", "StatusReporter", "default_location", "parse_server"]
