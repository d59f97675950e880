"""Protected state cookies: signed (HMAC-SHA256), optionally encrypted (AES-GCM).

A pool element hands its session state to the pool user in ASAP Cookies; after a
failover the pool user echoes the last one to another pool element. The cookie
travels through the pool user, so a pool element must not trust it blindly
(RFC 5355 "cookie mechanism security"; rsplib's fractal cookie is plain text
that anyone can forge). This module wraps the application's state in an
envelope that the pool elements of one pool can verify and, optionally, read
only themselves.

Envelope (version 1, all integers big-endian)::

    offset  size  field
    0       4     magic b"RSCK"
    4       1     version (1)
    5       1     flags: 0x01 = body encrypted with AES-GCM
    6       1     number of zero padding bytes after the body (0..3)
    7       1     reserved, 0
    8       4     pool tag: first 4 bytes of SHA-256(pool handle) (not secret;
                  lets a receiver say "wrong pool" instead of "bad signature")
    12      8     counter (the pool element's cookie sequence number)
    20      16    session id (random, chosen by the pool element at session start)
    36      12    AES-GCM nonce (encrypted cookies only)
    ...     n     body: the state, or AES-GCM(state) incl. its 16-byte tag
    ...     0..3  zero padding, so that the whole cookie is a multiple of 4
                  bytes (rsplib's Cookie parser needs that; protocol-facts trap 17)
    end-32  32    HMAC-SHA256 over everything before it

Keys: one master key (a file or ``RSERPOOL_COOKIE_KEY``) shared by the pool's
elements; per pool, two keys are derived with HKDF-SHA256 (one for the MAC, one
for AES-GCM), the pool handle in the HKDF info. A cookie of pool A therefore
never verifies in pool B even when both use the same master key.

What "cannot be replayed into another session" means here: a pool element sees
only its own connections. :class:`SessionBinding` is the per-process record it
keeps. It refuses a Cookie Echo

* whose session id is bound to another connection that is still live at this
  pool element (the cookie belongs to a session that has not failed here);
* on a connection that already carries a session (a Cookie Echo is valid only
  as the first message of a new session);
* whose counter is lower than the newest counter this pool element has issued
  or accepted for that session id (an old cookie of a session that has since
  moved on).

Pool elements do not share this record, so a captured cookie can still be
echoed to a pool element that never saw its session; the signature makes sure
it is a genuine, unmodified state of this pool, and encryption keeps it
unreadable in transit. Shared replay state across a pool is out of scope.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rsplib.errors import RemoteProtocolError

MAGIC = b"RSCK"
VERSION = 1
FLAG_ENCRYPTED = 0x01
SESSION_ID_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 32  # HMAC-SHA256
GCM_TAG_SIZE = 16
MIN_KEY_SIZE = 16
#: Environment variable read by :func:`load_cookie_key`.
COOKIE_KEY_ENV = "RSERPOOL_COOKIE_KEY"

# magic, version, flags, pad, reserved, pool tag, counter, session id
_HEADER = struct.Struct("!4sBBBx4sQ16s")
HEADER_SIZE = _HEADER.size  # 36
#: The biggest cookie that still fits one ASAP Cookie message (16-bit length,
#: 4-byte message header, 4-byte parameter header), rounded down to 4.
MAX_COOKIE_SIZE = (0xFFFF - 8) & ~3
_COUNTER_MAX = 0xFFFFFFFFFFFFFFFF
_HKDF_SALT = b"rserpool-cookie-v1"


class InvalidCookie(RemoteProtocolError):
    """A cookie failed verification; ``reason`` says why (for the caller's log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CookieKeyError(ValueError):
    """No usable cookie key was configured."""


@dataclass(frozen=True, slots=True)
class OpenedCookie:
    """The verified content of a cookie."""

    state: bytes
    session_id: bytes
    counter: int


def new_session_id() -> bytes:
    """A fresh random session id (16 bytes from the OS generator)."""
    return os.urandom(SESSION_ID_SIZE)


def pool_tag(pool_handle: bytes) -> bytes:
    return hashlib.sha256(pool_handle).digest()[:4]


def looks_sealed(cookie: bytes) -> bool:
    """True if ``cookie`` has this module's envelope (magic and version).

    Lets an application that also accepts unprotected legacy cookies (e.g.
    rsplib's fractal cookies) decide which path to take. It does not verify.
    """
    return len(cookie) >= HEADER_SIZE + TAG_SIZE and cookie[:4] == MAGIC and cookie[4] == VERSION


def _derive(master: bytes, purpose: bytes, pool_handle: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_HKDF_SALT,
        info=purpose + b"\x00" + pool_handle,
    )
    return hkdf.derive(master)


class CookieSealer:
    """Seals and opens cookies of one pool with one master key.

    ``encrypt`` decides whether :meth:`seal` encrypts; :meth:`open` accepts
    both kinds (only holders of the key can make either).
    """

    def __init__(self, key: bytes, pool_handle: bytes, encrypt: bool = False) -> None:
        if len(key) < MIN_KEY_SIZE:
            raise CookieKeyError(f"cookie key too short: {len(key)} bytes, need {MIN_KEY_SIZE}")
        self.pool_handle = bytes(pool_handle)
        self.encrypt = encrypt
        self._pool_tag = pool_tag(self.pool_handle)
        self._mac_key = _derive(key, b"mac", self.pool_handle)
        self._aead = AESGCM(_derive(key, b"enc", self.pool_handle))

    def seal(self, state: bytes, session_id: bytes, counter: int) -> bytes:
        """Wrap ``state`` for session ``session_id`` as its ``counter``-th cookie."""
        if len(session_id) != SESSION_ID_SIZE:
            raise ValueError(f"session id must be {SESSION_ID_SIZE} bytes, got {len(session_id)}")
        if not 0 <= counter <= _COUNTER_MAX:
            raise ValueError(f"counter out of range: {counter}")
        flags = FLAG_ENCRYPTED if self.encrypt else 0
        overhead = HEADER_SIZE + TAG_SIZE + (NONCE_SIZE + GCM_TAG_SIZE if self.encrypt else 0)
        pad = -len(state) % 4  # the overhead is a multiple of 4 already
        total = overhead + len(state) + pad
        if total > MAX_COOKIE_SIZE:
            raise ValueError(f"state too large for one cookie: {len(state)} bytes")
        header = _HEADER.pack(MAGIC, VERSION, flags, pad, self._pool_tag, counter, session_id)
        if self.encrypt:
            nonce = os.urandom(NONCE_SIZE)
            # The header is bound as associated data, so the encrypted part
            # cannot be moved under another header even without the HMAC.
            body = nonce + self._aead.encrypt(nonce, bytes(state), header)
        else:
            body = bytes(state)
        signed = header + body + b"\x00" * pad
        return signed + hmac.digest(self._mac_key, signed, "sha256")

    def open(self, cookie: bytes) -> OpenedCookie:
        """Verify and unwrap a cookie; raises :class:`InvalidCookie` with a reason."""
        cookie = bytes(cookie)
        if len(cookie) < HEADER_SIZE + TAG_SIZE or cookie[:4] != MAGIC:
            raise InvalidCookie("not a sealed cookie (no envelope magic)")
        _magic, version, flags, pad, tag, counter, session_id = _HEADER.unpack_from(cookie)
        if version != VERSION:
            raise InvalidCookie(f"unsupported cookie envelope version {version}")
        if len(cookie) % 4:
            raise InvalidCookie("cookie length is not a multiple of 4")
        if tag != self._pool_tag:
            raise InvalidCookie("cookie belongs to another pool")
        signed, mac = cookie[:-TAG_SIZE], cookie[-TAG_SIZE:]
        expected = hmac.digest(self._mac_key, signed, "sha256")
        if not hmac.compare_digest(mac, expected):
            raise InvalidCookie("bad signature (cookie modified or sealed with another key)")
        # Past this point the bytes are authentic; the checks below only
        # guard against our own sealer's bugs or a future format.
        if flags & ~FLAG_ENCRYPTED or pad > 3:
            raise InvalidCookie("unknown envelope flags")
        body = signed[HEADER_SIZE : len(signed) - pad]
        if flags & FLAG_ENCRYPTED:
            if len(body) < NONCE_SIZE + GCM_TAG_SIZE:
                raise InvalidCookie("encrypted cookie too short")
            nonce, ciphertext = body[:NONCE_SIZE], body[NONCE_SIZE:]
            try:
                state = self._aead.decrypt(nonce, ciphertext, signed[:HEADER_SIZE])
            except InvalidTag:
                raise InvalidCookie("decryption failed") from None
        else:
            state = body
        return OpenedCookie(state=state, session_id=session_id, counter=counter)


def _decode_key_text(raw: bytes, origin: str) -> bytes:
    text = raw.strip()
    if text.startswith(b"hex:"):
        try:
            key = bytes.fromhex(text[4:].decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CookieKeyError(f"{origin}: invalid hex key") from exc
    elif text.startswith(b"base64:"):
        try:
            key = base64.b64decode(text[7:], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CookieKeyError(f"{origin}: invalid base64 key") from exc
    else:
        key = text  # a passphrase, used as it is
    if len(key) < MIN_KEY_SIZE:
        raise CookieKeyError(f"{origin}: key too short ({len(key)} bytes, need {MIN_KEY_SIZE})")
    return key


def load_cookie_key(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    variable: str = COOKIE_KEY_ENV,
) -> bytes:
    """The master cookie key, from ``path`` if given, else from ``env[variable]``.

    The text may be ``hex:<hex digits>``, ``base64:<base64>`` or a plain
    passphrase (surrounding whitespace is stripped); at least 16 bytes after
    decoding. ``env`` defaults to ``os.environ``. Raises :class:`CookieKeyError`.
    """
    if path is not None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise CookieKeyError(f"cannot read cookie key file {path}: {exc.strerror}") from exc
        return _decode_key_text(raw, f"cookie key file {path}")
    environ = os.environ if env is None else env
    value = environ.get(variable)
    if not value:
        raise CookieKeyError(f"no cookie key: give a key file or set {variable}")
    return _decode_key_text(value.encode("utf-8"), f"${variable}")


class SessionBinding:
    """Which sessions are live at this pool element, and their newest counters.

    ``conn`` is whatever the caller uses to name a connection. The counter
    table is bounded (least recently used session ids are forgotten first),
    so a flood of sessions cannot exhaust memory.
    """

    def __init__(self, max_sessions: int = 65536) -> None:
        self._max = max_sessions
        self._newest: OrderedDict[bytes, int] = OrderedDict()
        self._live_by_session: dict[bytes, Hashable] = {}
        self._session_of_conn: dict[Hashable, bytes] = {}

    def start_session(self, conn: Hashable, session_id: bytes) -> None:
        """A new session (no Cookie Echo) began on ``conn``."""
        self._bind(conn, session_id)

    def accept_echo(self, conn: Hashable, opened: OpenedCookie) -> None:
        """Check a verified Cookie Echo on ``conn`` and bind its session there.

        Raises :class:`InvalidCookie` if the echo would replay the cookie into
        another session (see the module docstring).
        """
        if conn in self._session_of_conn:
            raise InvalidCookie("connection already carries a session")
        if opened.session_id in self._live_by_session:
            raise InvalidCookie("session is live on another connection")
        newest = self._newest.get(opened.session_id)
        if newest is not None and opened.counter < newest:
            raise InvalidCookie(f"stale cookie (counter {opened.counter} < {newest})")
        self._bind(conn, opened.session_id)
        self._note(opened.session_id, opened.counter)

    def issued(self, session_id: bytes, counter: int) -> None:
        """Record that this pool element sent cookie number ``counter``."""
        self._note(session_id, counter)

    def newest_counter(self, session_id: bytes) -> int | None:
        return self._newest.get(session_id)

    def session_of(self, conn: Hashable) -> bytes | None:
        return self._session_of_conn.get(conn)

    def session_ended(self, conn: Hashable) -> None:
        """The connection closed; its session may now be resumed elsewhere or here."""
        session_id = self._session_of_conn.pop(conn, None)
        if session_id is not None and self._live_by_session.get(session_id) == conn:
            del self._live_by_session[session_id]

    def _bind(self, conn: Hashable, session_id: bytes) -> None:
        if conn in self._session_of_conn:
            raise InvalidCookie("connection already carries a session")
        self._session_of_conn[conn] = session_id
        self._live_by_session[session_id] = conn
        self._note(session_id, self._newest.get(session_id, 0))

    def _note(self, session_id: bytes, counter: int) -> None:
        current = self._newest.pop(session_id, None)
        self._newest[session_id] = counter if current is None else max(current, counter)
        for _ in range(len(self._newest)):
            if len(self._newest) <= self._max:
                break
            oldest = next(iter(self._newest))
            if oldest in self._live_by_session:
                self._newest.move_to_end(oldest)  # never forget a live session
            else:
                del self._newest[oldest]


# --------------------------------------------------------------------------- the policy


class CookieRejection(Enum):
    """What a pool element does with a session whose Cookie Echo it refuses."""

    #: Close the session gracefully before sending anything. This is the explicit
    #: refusal the pool user understands: it drops the cookie and starts over
    #: (rsplib.session.pu_machine). The right choice whenever the pool user's next
    #: step depends on the cookie having worked.
    CLOSE = "close"
    #: Serve the session as a new one, as if no cookie had come.
    START_FRESH = "start fresh"


@dataclass(frozen=True)
class CookiePolicy:
    """How a pool element's sessions seal and accept cookies.

    ``sealer`` signs (and maybe encrypts) every cookie sent; None sends the
    application's state as it is (rsplib does that). ``accept_unsigned`` also takes
    echoes of plain cookies, e.g. from a pool shared with rsplib's pool elements.
    ``check_state`` is the application's part: it gets a verified cookie's state
    and raises :class:`InvalidCookie` (or ``ValueError``) when it cannot resume from
    it. ``on_rejection`` is what happens to a session whose echo is refused.
    """

    sealer: CookieSealer | None = None
    accept_unsigned: bool = True
    check_state: Callable[[bytes], object] | None = None
    on_rejection: CookieRejection = CookieRejection.CLOSE

    def __post_init__(self) -> None:
        if self.sealer is None and not self.accept_unsigned:
            raise ValueError("without a cookie key only unsigned cookies are possible")

    @classmethod
    def signed(
        cls,
        sealer: CookieSealer,
        *,
        accept_unsigned: bool = False,
        check_state: Callable[[bytes], object] | None = None,
        on_rejection: CookieRejection = CookieRejection.CLOSE,
    ) -> CookiePolicy:
        return cls(sealer, accept_unsigned, check_state, on_rejection)


@dataclass
class CookieContext:
    """The envelope identity of one session's cookies (session id and counter)."""

    session_id: bytes = field(default_factory=new_session_id)
    counter: int = 0


class SessionCookies:
    """One pool element's cookies: seals outgoing states, judges Cookie Echoes.

    ``conn`` is whatever names a session's connection. Every check lives here; the
    application only supplies :attr:`CookiePolicy.check_state`.
    """

    def __init__(self, policy: CookiePolicy, max_sessions: int = 65536) -> None:
        self.policy = policy
        self.binding = SessionBinding(max_sessions)
        self.rejected = 0

    def start(self, conn: Hashable) -> CookieContext:
        """A session without a Cookie Echo began on ``conn``."""
        context = CookieContext()
        self.binding.start_session(conn, context.session_id)
        return context

    def seal(self, context: CookieContext, state: bytes) -> bytes:
        """The cookie to send for ``state`` (sealed if the policy has a key)."""
        sealer = self.policy.sealer
        if sealer is None:
            return bytes(state)
        context.counter += 1
        self.binding.issued(context.session_id, context.counter)
        return sealer.seal(bytes(state), context.session_id, context.counter)

    def open_echo(self, conn: Hashable, cookie: bytes) -> tuple[bytes, CookieContext]:
        """The state of an echoed cookie and its session; raises :class:`InvalidCookie`.

        A refused echo leaves no trace in the binding; the caller counts and logs it.
        """
        policy = self.policy
        opened: OpenedCookie | None = None
        if looks_sealed(cookie):
            if policy.sealer is None:
                raise InvalidCookie("sealed cookie, but this pool element has no cookie key")
            opened = policy.sealer.open(cookie)
            state, context = opened.state, CookieContext(opened.session_id, opened.counter)
        elif policy.accept_unsigned:
            state, context = bytes(cookie), CookieContext()
        else:
            raise InvalidCookie("unsigned cookie (accepted only with --accept-unsigned-cookies)")
        if policy.check_state is not None:
            try:
                policy.check_state(state)
            except InvalidCookie:
                raise
            except (ValueError, RemoteProtocolError) as exc:
                raise InvalidCookie(f"not a state this pool element can resume: {exc}") from None
        # Bind only a cookie that passed every check.
        if opened is not None:
            self.binding.accept_echo(conn, opened)
        else:
            self.binding.start_session(conn, context.session_id)
        return state, context

    def ended(self, conn: Hashable) -> None:
        self.binding.session_ended(conn)
