"""The control center's trace endpoint: receives the components' trace, stores and saves it.

Every component the control center starts gets ``--trace ADDR:PORT`` pointing here (like
``--cspserver`` for the status reports). Valid records go into a :class:`TraceStore`;
the datagrams are also appended as received to ``trace.jsonl`` in the run directory (up
to ``max_save_bytes``), so ``rsp-decode --trace`` can print the run again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from control_center.trace_store import TraceStore
from rsplib.trace.receiver import TraceParser, TraceReceiver, open_trace_receiver
from rsplib.trace.record import EventRecord, TraceRecord

log = logging.getLogger("control_center.trace")

TRACE_FILE: Final = "trace.jsonl"
MAX_SAVE_BYTES: Final = 200 * 1024 * 1024


class TraceCollector:
    def __init__(
        self,
        store: TraceStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        save_to: Path | None = None,
        max_save_bytes: int = MAX_SAVE_BYTES,
        on_event: Callable[[EventRecord], None] | None = None,
    ) -> None:
        self.store = store
        #: Called for every component event (a pool user's failover), in arrival order.
        self.on_event = on_event
        self.host = host
        self.port = port
        self.save_to = save_to
        self.max_save_bytes = max_save_bytes
        self.parser = TraceParser()
        self.saved_bytes = 0
        self._file: IO[bytes] | None = None
        self._receiver: TraceReceiver | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._receiver is None:
            raise RuntimeError("trace collector not started")
        return self._receiver.address

    async def start(self) -> None:
        if self.save_to is not None:
            self._file = open(self.save_to, "ab")  # noqa: SIM115 - closed in close()
        self._receiver = await open_trace_receiver(
            self.host, self.port, self._on_records, self.parser
        )

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _on_records(self, records: list[TraceRecord], datagram: bytes) -> None:
        self.store.add(records)
        if self.on_event is not None:
            for record in records:
                if isinstance(record, EventRecord):
                    self.on_event(record)
        if self._file is None:
            return
        if self.saved_bytes + len(datagram) > self.max_save_bytes:
            log.warning(
                "trace file %s is full (%d bytes); not saving more", self.save_to, self.saved_bytes
            )
            self._file.close()
            self._file = None
            return
        self._file.write(datagram if datagram.endswith(b"\n") else datagram + b"\n")
        self.saved_bytes += len(datagram)
