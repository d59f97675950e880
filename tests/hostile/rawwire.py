"""An independent RSerPool client for attack tests: plain sockets and ``struct``.

Written from the message layouts of RFC 5352 (ASAP), RFC 5353 (ENRP), RFC 5354
(parameters) and the TCP mapping's record format (docs/tcp-mapping.md), without the
project's codecs or transports, so that the registrar under test meets bytes it did not
produce itself. Only what the attacks need is here.

``RawConnection`` owns one TCP connection: a reader thread answers the mapping's
heartbeats (and, if asked, Endpoint Keep-Alives), and queues every other message.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

# --- TCP-mapping records ---------------------------------------------------------------

RECORD = struct.Struct("!BBHII")  # type, flags, stream, length (with header), PPID
DATA, HB_REQUEST, HB_ACK = 1, 2, 3
PPID_ASAP, PPID_ENRP = 11, 12


def record(ppid: int, payload: bytes, kind: int = DATA) -> bytes:
    return RECORD.pack(kind, 0, 0, RECORD.size + len(payload), ppid) + payload


# --- TLV parameters (RFC 5354) ----------------------------------------------------------


def tlv(kind: int, value: bytes) -> bytes:
    body = struct.pack("!HH", kind, 4 + len(value)) + value
    return body + b"\0" * (-len(body) % 4)


def ipv4(address: str) -> bytes:
    return tlv(0x0001, socket.inet_aton(address))


def tcp_transport(port: int, address: str = "127.0.0.1", use: int = 0) -> bytes:
    return tlv(0x0005, struct.pack("!HH", port, use) + ipv4(address))


def round_robin() -> bytes:
    return tlv(0x0008, struct.pack("!I", 0x00000001))


def pool_handle(handle: bytes) -> bytes:
    return tlv(0x0009, handle)


def pool_element(
    identifier: int,
    port: int,
    *,
    home: int = 0,
    life_ms: int = 30_000,
    address: str = "127.0.0.1",
    asap_port: int | None = None,
) -> bytes:
    value = struct.pack("!III", identifier, home, life_ms) + tcp_transport(port, address, 1)
    value += round_robin()
    if asap_port is not None:
        value += tcp_transport(asap_port, address)
    return tlv(0x000A, value)


def pe_identifier(identifier: int) -> bytes:
    return tlv(0x000E, struct.pack("!I", identifier))


def message(kind: int, body: bytes, flags: int = 0) -> bytes:
    return struct.pack("!BBH", kind, flags, 4 + len(body)) + body


# --- ASAP (RFC 5352) --------------------------------------------------------------------


def registration(handle: bytes, identifier: int, port: int, address: str = "127.0.0.1") -> bytes:
    return message(0x01, pool_handle(handle) + pool_element(identifier, port, address=address))


def handle_resolution(handle: bytes) -> bytes:
    return message(0x05, pool_handle(handle))


def keep_alive_ack(handle: bytes, identifier: int) -> bytes:
    return message(0x08, pool_handle(handle) + pe_identifier(identifier))


def endpoint_unreachable(handle: bytes, identifier: int) -> bytes:
    return message(0x09, pool_handle(handle) + pe_identifier(identifier))


# --- ENRP (RFC 5353) --------------------------------------------------------------------


def enrp(kind: int, sender: int, receiver: int, body: bytes = b"", flags: int = 0) -> bytes:
    return message(kind, struct.pack("!II", sender, receiver) + body, flags)


def presence(sender: int, port: int, checksum: int = 0xFFFF, reply: bool = False) -> bytes:
    info = tlv(0x000B, struct.pack("!I", sender) + tcp_transport(port))
    checksum_tlv = tlv(0x000F, struct.pack("!H", checksum))
    return enrp(0x01, sender, 0, checksum_tlv + info, 0x01 if reply else 0)


def handle_update(
    sender: int, receiver: int, add: bool, handle: bytes, identifier: int, port: int, home: int
) -> bytes:
    body = struct.pack("!HH", 0 if add else 1, 0) + pool_handle(handle)
    body += pool_element(identifier, port, home=home, asap_port=port + 1)
    return enrp(0x04, sender, receiver, body)


def handle_table_request(sender: int, receiver: int) -> bytes:
    return enrp(0x02, sender, receiver)


def takeover_server(sender: int, receiver: int, target: int) -> bytes:
    return enrp(0x09, sender, receiver, struct.pack("!I", target))


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    ppid: int
    kind: int
    flags: int
    body: bytes  # after the 4-byte message header

    def params(self, offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """Top-level TLVs of the body from ``offset`` (type with action bits masked)."""
        at = offset
        while at + 4 <= len(self.body):
            kind, length = struct.unpack_from("!HH", self.body, at)
            if length < 4:
                return
            yield kind & 0x3FFF, self.body[at + 4 : at + length]
            at += length + (-length % 4)

    def pe_ports(self, offset: int = 0) -> dict[int, int]:
        """PE identifier -> user transport port of every Pool Element parameter."""
        found = {}
        for kind, value in self.params(offset):
            if kind == 0x000A:
                identifier = struct.unpack_from("!I", value)[0]
                port = struct.unpack_from("!H", value, 12 + 4)[0]  # in the first nested TLV
                found[identifier] = port
        return found

    @property
    def rejected(self) -> bool:
        return bool(self.flags & 0x01)


class RawConnection:
    """One TCP(-mapping) connection with a reader thread.

    Over TLS the reader and the senders take turns on the socket: one OpenSSL
    connection must not be read and written by two threads at once (Python releases
    the interpreter lock inside both calls); once a registrar never saw a request
    written while the reader sat in a read. The reader waits in short reads instead.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        source: str | None = None,
        answer_keep_alives: bool = True,
        tls: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> None:
        sock = socket.create_connection(
            address, timeout=timeout, source_address=(source, 0) if source else None
        )
        self._timeout = timeout
        self._turns = tls is not None
        if tls is not None:
            sock = tls.wrap_socket(sock)
        self.sock = sock
        self.answer_keep_alives = answer_keep_alives
        self.messages: queue.Queue[Message] = queue.Queue()
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def send(self, ppid: int, payload: bytes) -> None:
        self.send_bytes(record(ppid, payload))

    def send_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._turns:
                self.sock.settimeout(self._timeout)
            self.sock.sendall(data)

    def expect(self, kind: int, timeout: float = 5.0, ppid: int | None = None) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no message of type {kind} within {timeout} s")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if msg.kind == kind and (ppid is None or msg.ppid == ppid):
                return msg

    def request(self, ppid: int, payload: bytes, answer_kind: int) -> Message:
        self.send(ppid, payload)
        return self.expect(answer_kind, ppid=ppid)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(timeout=5)

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._receive()
                if chunk is None:
                    continue
                if not chunk:
                    return
                buffer += chunk
                while len(buffer) >= RECORD.size:
                    kind, _flags, _stream, length, ppid = RECORD.unpack_from(buffer)
                    if len(buffer) < length:
                        break
                    payload, buffer = buffer[RECORD.size : length], buffer[length:]
                    self._handle(kind, ppid, payload)
        except (OSError, ValueError):
            return
        finally:
            self.closed.set()

    def _receive(self) -> bytes | None:
        """The next bytes (b"" at the end); None: nothing yet, the senders had a turn."""
        if not self._turns:
            return self.sock.recv(65536)
        with self._lock:
            self.sock.settimeout(0.05)
            try:
                return self.sock.recv(65536)
            except TimeoutError:
                return None

    def _handle(self, kind: int, ppid: int, payload: bytes) -> None:
        if kind == HB_REQUEST:
            self.send_bytes(record(0, payload, HB_ACK))
            return
        if kind != DATA or len(payload) < 4:
            return
        msg = Message(ppid, payload[0], payload[1], payload[4:])
        if ppid == PPID_ASAP and msg.kind == 0x07 and self.answer_keep_alives:
            # Endpoint Keep-Alive: server id, then pool handle and PE identifier.
            handle = b""
            identifier = None
            for param, value in msg.params(4):
                if param == 0x0009:
                    handle = value
                elif param == 0x000E:
                    identifier = struct.unpack("!I", value)[0]
            if identifier is not None:
                self.send(PPID_ASAP, keep_alive_ack(handle, identifier))
                return
        self.messages.put(msg)


def resolve(address: tuple[str, int], handle: bytes, **options: object) -> dict[int, int]:
    """PE identifier -> port, as a fresh connection's Handle Resolution returns them."""
    conn = RawConnection(address, **options)  # type: ignore[arg-type]
    try:
        answer = conn.request(PPID_ASAP, handle_resolution(handle), 0x06)
        return answer.pe_ports()
    finally:
        conn.close()
