"""Makes ``rsp-decode`` and the live trace show Fractal Generator Protocol messages (PPID 32).

``register`` is this package's entry point in the ``rsplib.decoders`` group
(see pyproject.toml), so an installed ``fractal_pe`` is picked up by
``rsp-decode`` and by the trace (``--trace``) without the library naming it.
Parameter messages print as FGP_PARAMETER, Data messages as FGP_DATA (the
finalizer is the one with start_x = start_y = 4294967295 and no points).
"""

from __future__ import annotations

from fractal_pe.fgp import FGP_PPID, FgpMessage, decode_fgp
from rsplib.capture.decode_cli import register_payload_decoder
from rsplib.trace.summary import register_message_decoder

PROTOCOL_NAME = "fgp"


def decode_fgp_payload(data: bytes) -> FgpMessage:
    return decode_fgp(data)


def register() -> None:
    """Register the FGP decoder with rsp-decode and with the trace."""
    register_payload_decoder(int(FGP_PPID), PROTOCOL_NAME, decode_fgp_payload)
    register_message_decoder(int(FGP_PPID), PROTOCOL_NAME, decode_fgp_payload)
