"""Reading RSerPool traffic out of pcap/pcapng captures (pure, over bytes).

``read_capture(data)`` yields, in capture order, every message the traffic
carries: SCTP DATA chunks (native and over UDP port 9899), TCP-mapping records
(TCP streams reassembled per direction), and UDP datagrams to the ASAP
announce, ENRP presence and CSP ports. Problems with single packets or
streams come out as ``CaptureProblem`` values in the same sequence; only an
unreadable file raises (``CaptureFormatError``).

The layers live in their own modules of this package: containers (files), link
and IP (net), TCP (tcp) and SCTP (sctp); what they yield is in model.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from rsplib.capture.files import Frame, read_frames
from rsplib.capture.model import (
    SEVERITY_ERROR,
    SEVERITY_NOTE,
    TRANSPORT_SCTP,
    TRANSPORT_SCTP_UDP,
    TRANSPORT_UDP,
    CapturedMessage,
    CaptureFormatError,
    CaptureProblem,
    FrameError,
    FrameSkipped,
    Packet,
    endpoint,
)
from rsplib.capture.net import SUPPORTED_LINK_TYPES, IpPacket, ip_from_link, parse_ip
from rsplib.capture.sctp import ChunkError, SctpReassembler
from rsplib.capture.tcp import TcpMappingReassembler, parse_tcp
from rsplib.wire.constants import ASAP_PORT, CSP_PORT, ENRP_PORT, PPID, SCTP_OVER_UDP_PORT
from rsplib.wire.errors import ProtocolError

__all__ = [
    "CaptureFormatError",
    "CaptureProblem",
    "CapturedMessage",
    "Packet",
    "read_capture",
    "read_capture_file",
]

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132

#: UDP ports whose datagrams are single RSerPool messages: protocol and PPID.
UDP_PROTOCOLS: dict[int, tuple[str, int | None]] = {
    ASAP_PORT: ("asap", PPID.ASAP),
    ENRP_PORT: ("enrp", PPID.ENRP),
    CSP_PORT: ("csp", None),
}


def read_capture(data: bytes) -> Iterator[Packet]:
    """Messages and problems of a pcap/pcapng capture, in capture order."""
    reader = _CaptureReader()
    frames = read_frames(data)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except CaptureFormatError:
            # Report what the partial streams hold, then the file problem.
            yield from reader.finish()
            raise
        yield from reader.frame(frame)
    yield from reader.finish()


def read_capture_file(path: str | Path) -> Iterator[Packet]:
    """``read_capture`` over a file's contents (``OSError`` if unreadable)."""
    return read_capture(Path(path).read_bytes())


class _CaptureReader:
    def __init__(self) -> None:
        self._tcp = TcpMappingReassembler()
        self._sctp = SctpReassembler()
        self._unsupported_links: set[int] = set()

    def frame(self, frame: Frame) -> list[Packet]:
        try:
            return self._frame(frame)
        except ChunkError as exc:
            return [*exc.found, self._problem(frame, SEVERITY_ERROR, str(exc))]
        except FrameError as exc:
            return [self._problem(frame, SEVERITY_ERROR, str(exc))]
        except FrameSkipped as exc:
            return [self._problem(frame, SEVERITY_NOTE, str(exc))]
        except (ProtocolError, struct.error, ValueError, IndexError) as exc:
            # Parsers check lengths explicitly; this is a safety net so one odd
            # frame can never end the whole run.
            return [self._problem(frame, SEVERITY_ERROR, f"undecodable frame: {exc}")]

    @staticmethod
    def _problem(frame: Frame, severity: str, message: str) -> CaptureProblem:
        return CaptureProblem(frame.number, frame.time, severity, message)

    def _frame(self, frame: Frame) -> list[Packet]:
        if frame.link_type not in SUPPORTED_LINK_TYPES:
            if frame.link_type in self._unsupported_links:
                return []
            self._unsupported_links.add(frame.link_type)
        raw_ip = ip_from_link(frame.link_type, frame.data)
        if raw_ip is None:
            return []
        ip = parse_ip(raw_ip)
        if ip.protocol == IPPROTO_SCTP:
            return self._sctp.packet(
                frame.number, frame.time, ip.src, ip.dst, ip.payload, TRANSPORT_SCTP
            )
        if ip.protocol == IPPROTO_TCP:
            seg = parse_tcp(ip.payload)
            return self._tcp.segment(
                frame.number,
                frame.time,
                endpoint(ip.src, seg.src_port),
                endpoint(ip.dst, seg.dst_port),
                seg,
            )
        if ip.protocol == IPPROTO_UDP:
            return self._udp(frame, ip)
        return []

    def _udp(self, frame: Frame, ip: IpPacket) -> list[Packet]:
        if len(ip.payload) < 8:
            raise FrameError(f"truncated UDP header ({len(ip.payload)} bytes)")
        src_port, dst_port, length = struct.unpack_from("!HHH", ip.payload, 0)
        # Length 0 is legal for IPv6 jumbograms; otherwise the field rules.
        payload = ip.payload[8:length] if 8 <= length <= len(ip.payload) else ip.payload[8:]
        if SCTP_OVER_UDP_PORT in (dst_port, src_port):
            return self._sctp.packet(
                frame.number, frame.time, ip.src, ip.dst, payload, TRANSPORT_SCTP_UDP
            )
        known = UDP_PROTOCOLS.get(dst_port) or UDP_PROTOCOLS.get(src_port)
        if known is None:
            return []
        protocol, ppid = known
        return [
            CapturedMessage(
                frame=frame.number,
                time=frame.time,
                src=endpoint(ip.src, src_port),
                dst=endpoint(ip.dst, dst_port),
                transport=TRANSPORT_UDP,
                ppid=None if ppid is None else int(ppid),
                payload=payload,
                protocol=protocol,
            )
        ]

    def finish(self) -> list[Packet]:
        return self._tcp.finish()
