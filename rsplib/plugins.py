"""Decoders of installed applications, found through the ``rsplib.decoders`` entry points.

An application that speaks its own protocol over RSerPool (the fractal PE: FGP, PPID 32)
names, in its package metadata, a callable without arguments in this entry-point group;
the callable registers its decoders with the tools that show messages (``rsp-decode`` and
the live trace). So those tools show application messages without the library ever
naming an application.
"""

from __future__ import annotations

import importlib.metadata

#: The entry-point group of decoder plug-ins.
DECODER_ENTRY_POINTS = "rsplib.decoders"


def load_decoder_plugins() -> list[str]:
    """Call every installed plug-in's registration (again: registering twice is harmless).

    Returns one line per plug-in that could not be loaded or failed; the others are
    registered regardless.
    """
    problems: list[str] = []
    for entry in importlib.metadata.entry_points(group=DECODER_ENTRY_POINTS):
        try:
            register = entry.load()
            if not callable(register):
                raise TypeError(f"{entry.value} is not callable")
            register()
        except Exception as exc:  # a plug-in may fail in any way; the others still count
            problems.append(f"decoder plug-in {entry.name!r} ({entry.value}) not loaded: {exc}")
    return problems


__all__ = ["DECODER_ENTRY_POINTS", "load_decoder_plugins"]
