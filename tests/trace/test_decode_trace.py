"""``rsp-decode --trace``: saved traces printed again, bad lines reported by number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsplib.capture.decode_cli import main
from rsplib.trace.record import EventRecord, MessageRecord, encode_record

MSG = MessageRecord(
    time=5.0, component=2, seq=0, direction="rx", peer="127.0.0.1:1", local="127.0.0.1:2",
    proto="asap", type="HANDLE_RESOLUTION", pool_handle="P",
)  # fmt: skip
EV = EventRecord(time=6.0, component=3, seq=4, type="failover", fields={"session": 1})


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "trace.jsonl"
    path.write_bytes(
        encode_record(MSG) + b"\n\n" + b'{"v":1,"k":"msg"}\n' + b"x" * 5000 + b"\n"
        + encode_record(EV) + b"\n"
    )  # fmt: skip
    return path


def test_records_and_bad_lines(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trace", str(trace_file)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["line"] for o in lines] == [1, 3, 4, 5]
    assert lines[0]["type"] == "HANDLE_RESOLUTION" and lines[0]["ph"] == "P"
    assert "error" in lines[1] and "longer than" in lines[2]["error"]
    assert lines[3]["type"] == "failover" and lines[3]["session"] == 1


def test_summary_and_protocol_filter(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trace", "--summary", str(trace_file)]) == 0
    out = capsys.readouterr().out
    assert "HANDLE_RESOLUTION" in out and "failover" in out and "(error)" in out
    assert main(["--trace", "--protocol", "asap", str(trace_file)]) == 0
    types = [json.loads(line).get("type") for line in capsys.readouterr().out.splitlines()]
    assert "failover" not in types and "HANDLE_RESOLUTION" in types


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "rsp-decode"), "--trace", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "rsp-decode: error:" in result.stderr
