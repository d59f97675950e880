"""Transport addresses and connection handles shared by the sans-IO cores and their services.

Kept apart from any one component so that the ASAP client, the registrar and the examples
can name a peer without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A connection handle chosen by the service; opaque to the core.
ConnId = int


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A transport address (host text + port) as the service sees it."""

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"
