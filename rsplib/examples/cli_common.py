"""Former home of the shared command-line plumbing, now ``rsplib.cli_options``.

Kept so that older imports keep working.
"""

from rsplib.cli_options import (
    LOG_FORMAT,
    ArgumentParser,
    add_asap_options,
    announce,
    asap_config,
    csp,
    heartbeat,
    parse_identifier,
    registrars,
    setup_logging,
    transport_name,
)

__all__ = [
    "LOG_FORMAT",
    "ArgumentParser",
    "add_asap_options",
    "announce",
    "asap_config",
    "csp",
    "heartbeat",
    "parse_identifier",
    "registrars",
    "setup_logging",
    "transport_name",
]
