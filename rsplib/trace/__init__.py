"""Live protocol trace: every ASAP, ENRP and FGP message and component events, over UDP.

A component started with ``--trace ADDR:PORT`` sends a compact JSON record for each message
it sends or receives and for events it knows about (a pool user's failover) to a trace
receiver, normally the control center; ``docs/trace.md`` describes the format. Tracing is
opt-in, bounded in rate and queue (drops are counted, never waited for), and costs one
attribute test per message when it is off.

- :func:`start_trace` / :func:`stop_trace`: turn the process's tracer on and off;
- :func:`identify`: set the component id the records carry (its CSP id);
- :func:`emit_event`: trace a component event;
- :mod:`rsplib.trace.record`: the record model and the validating decoder;
- :mod:`rsplib.trace.receiver`: the parser and UDP endpoint for the receiving side.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import logging
from typing import Any

from rsplib.trace.buffer import DEFAULT_BURST, DEFAULT_MAX_QUEUE, DEFAULT_RATE, TraceBuffer
from rsplib.trace.record import (
    EventRecord,
    MessageRecord,
    TraceFormatError,
    TraceRecord,
    decode_datagram,
    decode_line,
    encode_record,
)
from rsplib.trace.summary import register_message_decoder
from rsplib.trace.tracer import TRACER, Tracer

log = logging.getLogger("rsplib.trace")

__all__ = [
    "TRACER",
    "EventRecord",
    "MessageRecord",
    "TraceFormatError",
    "TraceRecord",
    "Tracer",
    "decode_datagram",
    "decode_line",
    "emit_event",
    "encode_record",
    "identify",
    "register_message_decoder",
    "start_trace",
    "stop_trace",
]

_closers: list[Any] = []


def start_trace(
    address: tuple[str, int],
    *,
    raw: bool = False,
    rate: float = DEFAULT_RATE,
    burst: int = DEFAULT_BURST,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> Tracer:
    """Send this process's trace to ``address`` (UDP) from now on.

    ``raw`` adds each message's bytes (up to 512) in hex. Records beyond ``rate`` per
    second (``burst`` at once) or ``max_queue`` waiting are dropped and counted.
    """
    # Sockets live in rsplib.transport, which itself calls into the tracer: import late.
    from rsplib.transport import UdpSender

    _load_plugins()
    sender = UdpSender(address[0], address[1])
    TRACER.start(
        sender.send, buffer=TraceBuffer(rate=rate, burst=burst, max_queue=max_queue), raw=raw
    )
    stop_trace_on_exit = not _closers
    _closers.append(sender)
    if stop_trace_on_exit:
        atexit.register(stop_trace)
    return TRACER


#: Entry-point group of applications' decoders (shared with ``rsp-decode``): each entry
#: names a callable that registers its decoders, here with :func:`register_message_decoder`.
DECODER_ENTRY_POINTS = "rsplib.decoders"


def _load_plugins() -> None:
    for entry in importlib.metadata.entry_points(group=DECODER_ENTRY_POINTS):
        try:
            entry.load()()
        except Exception as exc:
            # Without the application's decoder its messages are traced by PPID only.
            log.warning("trace: decoder plug-in %r not loaded: %s", entry.name, exc)


def stop_trace() -> None:
    """Send what is queued, turn tracing off and close the socket."""
    TRACER.stop()
    while _closers:
        _closers.pop().close()


def identify(component: int) -> None:
    """Set the 64-bit CSP component id carried in every record (``"c"``)."""
    TRACER.identify(component)


def emit_event(event_type: str, **fields: object) -> None:
    """Trace a component event (no-op while tracing is off).

    Field values are scalars (None, bool, int, float, str) or lists of them; anything else
    is sent as its text. Never raises and never blocks.
    """
    if TRACER.on:
        TRACER.event(event_type, fields)
