"""The transports the real-socket suites run over.

Every such test runs over the TCP mapping; those decorated with :data:`both_transports`
run over kernel SCTP as well (marked ``sctp``: natively where the kernel has SCTP, else
inside the lab VM, see docs/sctp-lab.md). A test receives the transport through the
``transport`` fixture, directly or through fixtures that take it (``cluster``, ...).
"""

from __future__ import annotations

import pytest

TCP_MAPPING = "tcp-mapping"
SCTP = "sctp"

both_transports = pytest.mark.parametrize(
    "transport", [TCP_MAPPING, pytest.param(SCTP, marks=pytest.mark.sctp)]
)


def cli_transport(transport: str) -> str:
    """The ``--transport`` value of the command-line tools for ``transport``."""
    return "tcp" if transport == TCP_MAPPING else transport
