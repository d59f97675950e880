"""TLS with mutual certificates for TCP-mapping connections (RFC 5355's answer to forged
registrars, pool elements and pool users).

Every component of a secured pool holds a certificate issued by the pool's certificate
authority and accepts only peers whose certificate chains to it: registrars, pool elements
and pool users prove that they belong to the pool in both directions. Names are not checked
(components are addressed by IP and learn each other's addresses from announces and the
handlespace); membership is the certificate. Off unless configured.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

#: A TLS handshake must finish within this time, or the connection is dropped.
HANDSHAKE_TIMEOUT = 5.0


class TlsSetupError(ValueError):
    """A certificate, key or CA file cannot be used; the text names it."""


@dataclass(frozen=True)
class TlsConfig:
    """Our certificate chain and key, and the CA that peers' certificates must chain to."""

    cert: Path
    key: Path
    ca: Path
    _contexts: dict[str, ssl.SSLContext] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def server_context(self) -> ssl.SSLContext:
        return self._context("server")

    def client_context(self) -> ssl.SSLContext:
        return self._context("client")

    def check(self) -> None:
        """Load both contexts now; raises TlsSetupError with a clear message."""
        self.server_context()
        self.client_context()

    def _context(self, side: str) -> ssl.SSLContext:
        context = self._contexts.get(side)
        if context is None:
            context = _make_context(self, side == "server")
            self._contexts[side] = context
        return context


def _make_context(config: TlsConfig, server: bool) -> ssl.SSLContext:
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    try:
        context = ssl.create_default_context(purpose, cafile=str(config.ca))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the CA file {config.ca}: {exc}") from None
    try:
        context.load_cert_chain(str(config.cert), str(config.key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"cannot load the certificate {config.cert} with key {config.key}: {exc}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    if not server:
        context.check_hostname = False
    return context


def tls_config(cert: str | None, key: str | None, ca: str | None) -> TlsConfig | None:
    """From the ``--tls-cert/--tls-key/--tls-ca`` options: all three or none."""
    given = [value is not None for value in (cert, key, ca)]
    if not any(given):
        return None
    if not all(given):
        raise TlsSetupError("TLS needs --tls-cert, --tls-key and --tls-ca together")
    assert cert is not None and key is not None and ca is not None
    config = TlsConfig(Path(cert), Path(key), Path(ca))
    config.check()
    return config
