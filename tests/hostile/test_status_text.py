"""Failure 7 of the attack review: terminal injection through status reports.

``rsp-monitor`` wrote the status and location text of any UDP sender raw to the terminal,
also with ``--color never``: escape sequences retitled the window, cleared the screen and
forged lines. The datagrams here are built by hand (CSP v0x0200 layout), not by the
project's encoder.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import time

from control_center.monitor import StatusModel
from control_center.safe_text import plain_markup, printable
from tests.support import REPO

TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[H\x1b[2J"
FORGED = "\r\nPR $00000001 [10.0.0.1] fake line"
BIDI = "\u202egnp.exe"


def csp_datagram(sender: int, status: str, location: str) -> bytes:
    """A component status report: 288-byte header with two 128-byte texts, no links."""
    head = struct.pack("!BBHIQQI", 0x01, 0, 288, 0x0200, sender, 1_000_000, 1_000_000)
    texts = [text.encode()[:127].ljust(128, b"\0") for text in (location, status)]
    return head + texts[0] + texts[1] + struct.pack("!HH", 0xFFFF, 0)


def test_printable_escapes_controls_and_keeps_ordinary_text() -> None:
    assert printable("2 sessions, load 40% — Grüße 中") == "2 sessions, load 40% — Grüße 中"
    assert printable(TITLE) == "\\x1b]0;owned\\x07"
    assert printable("a\r\nb\x7f\x9b") == "a\\x0d\\x0ab\\x7f\\x9b"
    assert printable(BIDI) == "\\u202egnp.exe"
    assert printable("C:\\x1b") == "C:\\\\x1b"  # a typed "\x1b" cannot pass for an escape
    assert plain_markup("<b>bold</b> & \x1b") == "&lt;b&gt;bold&lt;/b&gt; &amp; \\x1b"


def test_the_monitor_model_stores_only_escaped_text() -> None:
    model = StatusModel()
    model.handle_datagram(csp_datagram(0x0200_0000_0000_0042, TITLE + CLEAR, FORGED), ("h", 1), 0.0)
    (state,) = model.snapshot()
    assert state.status.isprintable() and state.location.isprintable()
    assert "\\x1b]0;owned" in state.status


def test_rsp_monitor_never_writes_escape_sequences_from_the_network() -> None:
    monitor = subprocess.Popen(
        [sys.executable, "-m", "control_center.rsp_monitor", "--address", "127.0.0.1",
         "--port", "0", "--once", "--duration", "1.5", "--color", "never"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )  # fmt: skip
    try:
        assert monitor.stderr is not None
        listening = re.search(rb"listening on 127\.0\.0\.1:(\d+)", monitor.stderr.readline())
        assert listening, "rsp-monitor did not say where it listens"
        port = int(listening.group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                datagram = csp_datagram(0x0200_0000_0000_0042, TITLE + CLEAR + BIDI, FORGED)
                sender.sendto(datagram, ("127.0.0.1", port))
                time.sleep(0.1)
        out, err = monitor.communicate(timeout=15)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.communicate()
    text = out.decode()
    assert monitor.returncode == 0, err.decode()
    assert "PE $00000042" in text  # the report was shown ...
    assert "\\x1b]0;owned\\x07" in text  # ... escaped
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in text
    assert text.count("fake line") == 1 and "\\x0d\\x0aPR $00000001" in text
