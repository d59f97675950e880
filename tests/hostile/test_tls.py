"""Authentication of peers and PEs with TLS and mutual certificates (RFC 5355).

Real processes over the TCP mapping: two registrars peer over TLS, an echo PE registers
over TLS, a terminal PU resolves at the other registrar and talks to the PE, all with
certificates of one pool CA made at test time. A peer with a certificate of another CA, or
without TLS, is refused and never becomes a peer.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.certs import Pki
from tests.hostile.conftest import StartRegistrar
from tests.hostile.rawwire import PPID_ENRP, RawConnection, presence, resolve
from tests.registrar.service_helpers import ProcessPool
from tests.support import REPO, FractalPeProcess, LoggedProcess

POOL = b"TlsPool"
ROGUE = 0x0BADCE27


def client_context(options: list[str]) -> ssl.SSLContext:
    """An ssl context from ``--tls-cert X --tls-key Y --tls-ca Z`` (plain ssl module)."""
    cert, key, ca = options[1], options[3], options[5]
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.check_hostname = False
    context.load_cert_chain(cert, key)
    return context


def address(endpoint: tuple[str, int]) -> str:
    return f"{endpoint[0]}:{endpoint[1]}"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def test_tls_peering_between_two_registrars_a_pe_and_a_pu(
    start_registrar: StartRegistrar, procs: ProcessPool, pki: Pki, tmp_path: Path
) -> None:
    first = start_registrar(*pki.issue("pr1"), identifier=0x7151)
    second = start_registrar(*pki.issue("pr2"), "--peer", address(first.enrp), identifier=0x7152)
    first.wait_for("new ENRP peer 0x00007152", timeout=10)
    pe = LoggedProcess(
        "rsplib.examples.echo_pe",
        ["--registrar", address(first.asap), "--poolhandle", POOL.decode(),
         "--identifier", "0x7153", "--transport", "tcp", *pki.issue("pe")],
        tmp_path / "pe.log",
    )  # fmt: skip
    try:
        pe.wait_for("PE 0x00007153 registered", timeout=15)
        checker = client_context(pki.issue("checker"))
        deadline = time.monotonic() + 10
        while not resolve(second.asap, POOL, tls=checker) and time.monotonic() < deadline:
            time.sleep(0.2)  # the Handle Update travels over the TLS peering
        assert list(resolve(second.asap, POOL, tls=checker)) == [0x7153]
        pu = subprocess.run(
            [sys.executable, "-m", "rsplib.examples.terminal_pu",
             "--registrar", address(second.asap), "--poolhandle", POOL.decode(),
             "--transport", "tcp", *pki.issue("pu")],
            input=b"hello over tls\n",
            capture_output=True,
            cwd=REPO,
            timeout=30,
        )  # fmt: skip
        assert pu.returncode == 0, pu.stderr.decode()
        assert b"hello over tls" in pu.stdout
    finally:
        pe.stop()
    for registrar in (first, second):
        assert "TLS handshake failed" not in registrar.log_text()


def test_peer_without_the_right_certificate_is_refused(
    start_registrar: StartRegistrar, pki: Pki, tmp_path: Path
) -> None:
    registrar = start_registrar(*pki.issue("pr"), identifier=0x7161)
    stranger = Pki.create(tmp_path / "other-ca", "other-ca")
    wrong = client_context(stranger.issue("rogue"))
    # The rogue trusts everyone: it is the registrar that must say no.
    wrong.verify_mode = ssl.CERT_NONE
    for endpoint in (registrar.enrp, registrar.asap):
        try:
            conn = RawConnection(endpoint, tls=wrong)
        except OSError:  # ssl.SSLError included: refused within the handshake
            continue
        try:
            # With TLS 1.3 the server checks our certificate after our side finished.
            with contextlib.suppress(OSError):
                conn.send(PPID_ENRP, presence(ROGUE, 40000, reply=True))
            assert conn.closed.wait(5.0), "a peer with a foreign certificate stayed connected"
            assert conn.messages.empty()
        finally:
            conn.close()
    plain = RawConnection(registrar.enrp)  # no TLS at all
    with contextlib.suppress(OSError):
        plain.send(PPID_ENRP, presence(ROGUE, 40000, reply=True))
    assert plain.closed.wait(10.0)
    plain.close()
    log = registrar.wait_for("TLS handshake failed").string
    assert "new ENRP peer 0x0badce27" not in log
    assert "Traceback" not in log


def test_fractal_pe_and_headless_pu_work_over_tls(
    start_registrar: StartRegistrar, pki: Pki, tmp_path: Path
) -> None:
    registrar = start_registrar(*pki.issue("pr"), identifier=0x7171)
    env = dict(os.environ, RSERPOOL_COOKIE_KEY="hex:" + "3c" * 32, FRACTAL_KERNEL="numpy")
    pe = FractalPeProcess(
        ["--registrar", address(registrar.asap), "--transport", "tcp", "--identifier", "0x7172",
         "--poolhandle", POOL.decode(), "--test-mode", *pki.issue("fractal-pe")],
        tmp_path / "fractal-pe.log",
        env,
    )  # fmt: skip
    try:
        pe.wait_registered()
        pu = subprocess.run(
            [sys.executable, "-m", "fractal_pu.cli", "--headless",
             "--registrar", address(registrar.asap), "--transport", "tcp",
             "--poolhandle", POOL.decode(), "--sessions", "2", "--width", "64", "--height", "48",
             "--output", str(tmp_path / "out.png"), "--report", str(tmp_path / "report.json"),
             *pki.issue("fractal-pu")],
            capture_output=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )  # fmt: skip
    finally:
        pe.stop()
    assert pu.returncode == 0, pu.stderr.decode()[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["complete"] is True
    assert report["images"][0]["missing_pixels"] == 0
    assert "TLS handshake failed" not in registrar.log_text()
