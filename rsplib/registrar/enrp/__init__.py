"""The registrar's ENRP side (RFC 5353), one sub-machine per module; see ``side``."""

from rsplib.registrar.enrp.side import EnrpSide

__all__ = ["EnrpSide"]
