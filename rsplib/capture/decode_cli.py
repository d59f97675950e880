"""``rsp-decode``: print the RSerPool messages of pcap/pcapng captures as JSON lines.

Every message becomes one JSON object per line with ``time``, ``src``,
``dst``, ``transport``, ``ppid``, ``protocol``, ``type``, ``type_code``,
``flags`` and the decoded ``fields``. Payloads that do not decode give an
object with ``error`` and ``cause``; problems with packets or streams give
``error`` (or ``note``) objects too. ``--summary`` prints counts instead.

Payload decoders are looked up by PPID in a small registry. Installed packages
add theirs through the entry-point group ``rsplib.decoders`` (each entry point
names a callable without arguments that calls :func:`register_payload_decoder`;
``fractal_pe`` registers its FGP decoder this way), and ``--plugin MODULE``
imports a module that registers on import. The library never names application
code itself.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from rsplib.capture.model import SEVERITY_ERROR
from rsplib.capture.reader import (
    CapturedMessage,
    CaptureFormatError,
    CaptureProblem,
    Packet,
    read_capture_file,
)
from rsplib.trace.record import MessageRecord, record_json
from rsplib.trace.replay import BadLine, read_trace_file
from rsplib.wire.constants import PPID, cause_name
from rsplib.wire.errors import ProtocolError
from rsplib.wire.jsonable import JsonValue, bytes_json, to_jsonable
from rsplib.wire.tcpmap import RecordType

PayloadDecoder = Callable[[bytes], object]

PROTOCOL_TCPMAP = "tcpmap"


@dataclass(frozen=True, slots=True)
class _Registered:
    protocol: str
    decode: PayloadDecoder


_BY_PPID: dict[int, _Registered] = {}
_BY_PROTOCOL: dict[str, PayloadDecoder] = {}


def register_payload_decoder(ppid: int | None, protocol: str, decode: PayloadDecoder) -> None:
    """Decode payloads with this PPID (and the protocol's UDP datagrams) with ``decode``.

    ``decode`` takes the payload bytes and returns a decoded value (normally a
    frozen dataclass with a ``TYPE`` enum member); it should raise
    ``ProtocolError`` for bad input. ``ppid`` may be ``None`` for protocols
    that only travel over a fixed UDP port (CSP). A later registration
    replaces an earlier one.
    """
    if ppid is not None:
        _BY_PPID[ppid] = _Registered(protocol, decode)
    _BY_PROTOCOL[protocol] = decode


def _decode_asap(data: bytes) -> object:
    from rsplib.wire.asap import decode_asap

    return decode_asap(data)


def _decode_enrp(data: bytes) -> object:
    from rsplib.wire.enrp import decode_enrp

    return decode_enrp(data)


def _decode_csp(data: bytes) -> object:
    from rsplib.wire.csp import decode_csp

    return decode_csp(data)


register_payload_decoder(PPID.ASAP, "asap", _decode_asap)
register_payload_decoder(PPID.ENRP, "enrp", _decode_enrp)
register_payload_decoder(None, "csp", _decode_csp)


def _type_name(decoded: object) -> str:
    message_type = getattr(decoded, "TYPE", None)
    if isinstance(message_type, Enum):
        return message_type.name
    if type(decoded).__name__ == "CspReport":
        return "REPORT"
    # CamelCase class name -> UPPER_SNAKE, e.g. FgpData -> FGP_DATA.
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(decoded).__name__).upper()


def describe_message(msg: CapturedMessage) -> dict[str, JsonValue]:
    """The JSON object for one captured message (decoded where a decoder exists)."""
    out: dict[str, JsonValue] = {
        "frame": msg.frame,
        "time": msg.time,
        "src": msg.src,
        "dst": msg.dst,
        "transport": msg.transport,
        "ppid": msg.ppid,
    }
    if msg.stream is not None:
        out["stream"] = msg.stream
    if msg.protocol == PROTOCOL_TCPMAP:
        record_type = msg.record_type if msg.record_type is not None else 0
        out.update(
            protocol=PROTOCOL_TCPMAP,
            type=to_jsonable(RecordType(record_type)),
            type_code=record_type,
            flags=0,
            fields={"payload": bytes_json(msg.payload)},
        )
        return out
    protocol = msg.protocol
    decode: PayloadDecoder | None = None
    if protocol is not None:
        decode = _BY_PROTOCOL.get(protocol)
    elif msg.ppid is not None and msg.ppid in _BY_PPID:
        registered = _BY_PPID[msg.ppid]
        protocol, decode = registered.protocol, registered.decode
    out["protocol"] = protocol
    if len(msg.payload) >= 2:
        out["type_code"] = msg.payload[0]
        out["flags"] = msg.payload[1]
    if decode is None:
        out["type"] = None
        out["fields"] = {"payload": bytes_json(msg.payload)}
        return out
    try:
        decoded = decode(msg.payload)
    except ProtocolError as exc:
        out.update(error=str(exc), cause=cause_name(exc.cause), payload=bytes_json(msg.payload))
        return out
    except Exception as exc:  # a plug-in decoder may raise anything; keep going
        out.update(error=str(exc), cause=type(exc).__name__, payload=bytes_json(msg.payload))
        return out
    out["type"] = _type_name(decoded)
    out["fields"] = to_jsonable(decoded)
    return out


def describe_problem(problem: CaptureProblem) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"frame": problem.frame, "time": problem.time}
    if problem.src is not None:
        out["src"] = problem.src
        out["dst"] = problem.dst
    out[problem.severity] = problem.message
    if problem.severity == SEVERITY_ERROR:
        out["cause"] = None if problem.cause is None else cause_name(problem.cause)
    return out


def describe(packet: Packet) -> dict[str, JsonValue]:
    if isinstance(packet, CapturedMessage):
        return describe_message(packet)
    return describe_problem(packet)


def _selected(obj: dict[str, JsonValue], protocols: set[str] | None) -> bool:
    if protocols is None:
        return True
    if "protocol" in obj:
        return obj["protocol"] in protocols
    return "error" in obj  # capture problems: errors stay visible, notes do not


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rsp-decode",
        description="Print every ASAP, ENRP, CSP (and plug-in) message of pcap/pcapng "
        "captures as one JSON object per line.",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="pcap or pcapng capture (with --trace: a trace)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="the files are saved live traces (JSON lines, see docs/trace.md), not captures",
    )
    parser.add_argument(
        "--summary", action="store_true", help="print counts per protocol and type instead"
    )
    parser.add_argument(
        "--protocol",
        metavar="LIST",
        help="comma-separated protocols to show (asap,enrp,csp,tcpmap,...)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE, which registers more payload decoders (repeatable)",
    )
    return parser.parse_args(argv)


#: Entry-point group of installed payload decoders (see the module docstring).
DECODER_ENTRY_POINTS = "rsplib.decoders"


def _load_installed_decoders() -> None:
    """Call every registered ``rsplib.decoders`` entry point; a broken one is only a warning."""
    for entry in importlib.metadata.entry_points(group=DECODER_ENTRY_POINTS):
        try:
            register = entry.load()
            if not callable(register):
                raise TypeError(f"{entry.value} is not callable")
            # Called on every run (not only on first import), so main() can run repeatedly.
            register()
        except Exception as exc:
            print(
                f"rsp-decode: warning: decoder plug-in {entry.name!r} ({entry.value}) "
                f"not loaded: {exc}",
                file=sys.stderr,
            )


def _load_plugins(modules: Iterable[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise SystemExit(f"rsp-decode: error: cannot load plugin {name!r}: {exc}") from None


def _print_summary(counts: Counter[tuple[str, str]], out: Callable[[str], None]) -> None:
    width = max([len(p) for p, _ in counts] + [len("protocol")])
    type_width = max([len(t) for _, t in counts] + [len("type")])
    out(f"{'protocol':<{width}}  {'type':<{type_width}}  count")
    for (protocol, type_name), count in sorted(counts.items()):
        out(f"{protocol:<{width}}  {type_name:<{type_width}}  {count:>5}")


def _summary_key(obj: dict[str, JsonValue]) -> tuple[str, str]:
    if "protocol" in obj:
        protocol = str(obj["protocol"]) if obj["protocol"] is not None else "(unknown)"
        kind = "(error)" if "error" in obj else str(obj.get("type") or "(undecoded)")
        return protocol, kind
    return "(capture)", "(error)" if "error" in obj else "(note)"


def _decode_trace(
    path: str,
    protocols: set[str] | None,
    counts: Counter[tuple[str, str]],
    emit: Callable[[str], None],
    *,
    summary: bool,
) -> bool:
    """Print (or count) the records of one saved trace; False if it could not be read."""
    try:
        for number, item in read_trace_file(path):
            if isinstance(item, BadLine):
                obj: dict[str, JsonValue] = {"file": path, "line": number, "error": item.error}
                key = ("(trace)", "(error)")
            else:
                obj = {"file": path, "line": number, **record_json(item)}  # type: ignore[dict-item]
                proto = item.proto if isinstance(item, MessageRecord) else "event"
                if protocols is not None and proto not in protocols:
                    continue
                key = (proto, item.type)
            if summary:
                counts[key] += 1
            else:
                emit(json.dumps(obj, ensure_ascii=False))
    except OSError as exc:
        print(f"rsp-decode: error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    _load_installed_decoders()
    _load_plugins(args.plugin)
    protocols = (
        {p.strip().lower() for p in args.protocol.split(",") if p.strip()}
        if args.protocol
        else None
    )
    counts: Counter[tuple[str, str]] = Counter()
    failed = False

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")

    try:
        for path in args.files:
            if args.trace:
                failed |= not _decode_trace(path, protocols, counts, emit, summary=args.summary)
                continue
            try:
                for packet in read_capture_file(path):
                    obj = describe(packet)
                    if not _selected(obj, protocols):
                        continue
                    if args.summary:
                        counts[_summary_key(obj)] += 1
                    else:
                        emit(json.dumps(obj, ensure_ascii=False))
            except OSError as exc:
                failed = True
                print(f"rsp-decode: error: {path}: {exc.strerror or exc}", file=sys.stderr)
            except CaptureFormatError as exc:
                failed = True
                print(f"rsp-decode: error: {path}: {exc}", file=sys.stderr)
        if args.summary:
            _print_summary(counts, emit)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. piped into head); stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
