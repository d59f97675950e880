"""Makes ``rsp-decode`` show Fractal Generator Protocol messages (PPID 32).

Importing this module registers the FGP decoder (also for the live trace, which imports
it when tracing starts); ``rsp-decode`` imports it by
default when ``fractal_pe`` is installed (and ``--plugin fractal_pe.decode_plugin``
names it explicitly). Parameter messages print as FGP_PARAMETER, Data messages
as FGP_DATA (the finalizer is the one with start_x = start_y = 4294967295 and
no points).
"""

from __future__ import annotations

from fractal_pe.fgp import FGP_PPID, FgpMessage, decode_fgp
from rsplib.trace.summary import register_message_decoder
from rsplib.wire.decode_cli import register_payload_decoder

PROTOCOL_NAME = "fgp"


def decode_fgp_payload(data: bytes) -> FgpMessage:
    return decode_fgp(data)


def register() -> None:
    """(Re-)register the FGP decoder with rsp-decode."""
    register_payload_decoder(int(FGP_PPID), PROTOCOL_NAME, decode_fgp_payload)
    register_message_decoder(int(FGP_PPID), PROTOCOL_NAME, decode_fgp_payload)


register()
