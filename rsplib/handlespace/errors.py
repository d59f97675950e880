"""The handlespace's error: an RSerPool cause code the registrar can send."""

from __future__ import annotations

from rsplib.wire.constants import cause_name


class HandlespaceError(Exception):
    """A refused handlespace operation; ``cause`` is the Operation Error cause."""

    def __init__(self, cause: int, message: str = "") -> None:
        self.cause = int(cause)
        self.message = message or cause_name(cause)
        super().__init__(f"{cause_name(cause)} (0x{self.cause:04x}): {self.message}")
