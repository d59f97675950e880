"""Cookie protection: signature, encryption, pool separation, session binding."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rsplib.session.cookies import (
    HEADER_SIZE,
    MAX_COOKIE_SIZE,
    SESSION_ID_SIZE,
    CookieKeyError,
    CookieSealer,
    InvalidCookie,
    OpenedCookie,
    SessionBinding,
    load_cookie_key,
    looks_sealed,
    new_session_id,
)

KEY = bytes(range(32))
POOL = b"FractalGeneratorPool"
# Something recognisable that is long enough to be searched for in the cookie.
STATE = b"<FG-TD1>" + b"current position x=17 y=42 " * 3


@pytest.fixture(params=[False, True], ids=["signed", "encrypted"])
def sealer(request: pytest.FixtureRequest) -> CookieSealer:
    return CookieSealer(KEY, POOL, encrypt=request.param)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 76, 1001])
def test_round_trip_and_length_multiple_of_four(sealer: CookieSealer, size: int) -> None:
    state = bytes((i * 7) & 0xFF for i in range(size))
    session = new_session_id()
    cookie = sealer.seal(state, session, 12345)
    assert len(cookie) % 4 == 0
    assert looks_sealed(cookie)
    assert sealer.open(cookie) == OpenedCookie(state=state, session_id=session, counter=12345)


def test_every_byte_flip_is_rejected(sealer: CookieSealer) -> None:
    cookie = sealer.seal(STATE, new_session_id(), 3)
    for index in range(len(cookie)):
        for mask in (0x01, 0x80):
            tampered = bytearray(cookie)
            tampered[index] ^= mask
            with pytest.raises(InvalidCookie):
                sealer.open(bytes(tampered))


def test_truncated_and_extended_cookies_are_rejected(sealer: CookieSealer) -> None:
    cookie = sealer.seal(STATE, new_session_id(), 3)
    for cut in range(len(cookie)):
        with pytest.raises(InvalidCookie):
            sealer.open(cookie[:cut])
    with pytest.raises(InvalidCookie):
        sealer.open(cookie + b"\x00\x00\x00\x00")


def test_wrong_key_is_rejected_as_bad_signature(sealer: CookieSealer) -> None:
    cookie = sealer.seal(STATE, new_session_id(), 1)
    other = CookieSealer(bytes(reversed(KEY)), POOL, encrypt=sealer.encrypt)
    with pytest.raises(InvalidCookie, match="signature"):
        other.open(cookie)


def test_cookie_of_another_pool_is_rejected(sealer: CookieSealer) -> None:
    cookie = sealer.seal(STATE, new_session_id(), 1)
    other_pool = CookieSealer(KEY, b"EchoPool", encrypt=sealer.encrypt)
    with pytest.raises(InvalidCookie, match="another pool"):
        other_pool.open(cookie)


def test_pool_tag_forged_to_match_still_fails_signature() -> None:
    # Even when an attacker rewrites the pool tag, the per-pool key differs.
    cookie = bytearray(CookieSealer(KEY, POOL).seal(STATE, new_session_id(), 1))
    other = CookieSealer(KEY, b"EchoPool")
    cookie[8:12] = other.seal(b"", new_session_id(), 0)[8:12]
    with pytest.raises(InvalidCookie, match="signature"):
        other.open(bytes(cookie))


def test_encryption_hides_the_state() -> None:
    session = new_session_id()
    plain = CookieSealer(KEY, POOL, encrypt=False).seal(STATE, session, 9)
    secret = CookieSealer(KEY, POOL, encrypt=True).seal(STATE, session, 9)
    assert STATE in plain
    for start in range(len(STATE) - 8):
        assert STATE[start : start + 8] not in secret
    # Two seals of the same state differ (fresh nonce), both open.
    again = CookieSealer(KEY, POOL, encrypt=True).seal(STATE, session, 9)
    assert again != secret
    reader = CookieSealer(KEY, POOL, encrypt=False)
    assert reader.open(secret).state == STATE
    assert reader.open(again).state == STATE


def test_unsealed_legacy_cookie_is_recognised() -> None:
    legacy = b"<FG-TD1>" + bytes(68)  # rsplib's fractal cookie: 76 bytes, no envelope
    assert not looks_sealed(legacy)
    with pytest.raises(InvalidCookie, match="not a sealed cookie"):
        CookieSealer(KEY, POOL).open(legacy)


def test_unsupported_version_is_named() -> None:
    cookie = bytearray(CookieSealer(KEY, POOL).seal(STATE, new_session_id(), 1))
    cookie[4] = 2
    assert not looks_sealed(bytes(cookie))
    with pytest.raises(InvalidCookie, match="version 2"):
        CookieSealer(KEY, POOL).open(bytes(cookie))


def test_header_layout_carries_counter_and_session() -> None:
    session = new_session_id()
    cookie = CookieSealer(KEY, POOL).seal(b"abc", session, 0x0102030405060708)
    assert cookie[:4] == b"RSCK"
    assert struct.unpack_from("!Q", cookie, 12)[0] == 0x0102030405060708
    assert cookie[20 : 20 + SESSION_ID_SIZE] == session
    assert cookie[HEADER_SIZE : HEADER_SIZE + 3] == b"abc"
    assert cookie[6] == 1  # one padding byte


def test_seal_argument_checks() -> None:
    sealer = CookieSealer(KEY, POOL)
    with pytest.raises(ValueError, match="session id"):
        sealer.seal(b"", b"short", 0)
    with pytest.raises(ValueError, match="counter"):
        sealer.seal(b"", new_session_id(), -1)
    with pytest.raises(ValueError, match="too large"):
        sealer.seal(bytes(MAX_COOKIE_SIZE), new_session_id(), 0)
    with pytest.raises(CookieKeyError):
        CookieSealer(b"short", POOL)


def test_largest_state_fits_one_asap_message() -> None:
    sealer = CookieSealer(KEY, POOL, encrypt=True)
    biggest = MAX_COOKIE_SIZE - HEADER_SIZE - 32 - 12 - 16
    cookie = sealer.seal(bytes(biggest), new_session_id(), 0)
    assert len(cookie) <= 0xFFFF - 8
    assert sealer.open(cookie).state == bytes(biggest)


# --- key loading -----------------------------------------------------------------


def test_key_from_environment_forms() -> None:
    assert load_cookie_key(env={"RSERPOOL_COOKIE_KEY": "hex:" + KEY.hex()}) == KEY
    assert load_cookie_key(env={"RSERPOOL_COOKIE_KEY": "base64:AAECAwQFBgcICQoLDA0ODw=="}) == (
        bytes(range(16))
    )
    phrase = "correct horse battery staple"
    assert load_cookie_key(env={"RSERPOOL_COOKIE_KEY": phrase}) == phrase.encode()
    assert load_cookie_key(env={"MY_KEY": phrase}, variable="MY_KEY") == phrase.encode()


def test_key_file_wins_over_environment(tmp_path: Path) -> None:
    path = tmp_path / "cookie.key"
    path.write_text("hex:" + KEY.hex() + "\n")
    assert load_cookie_key(path, env={"RSERPOOL_COOKIE_KEY": "x" * 40}) == KEY


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no cookie key"),
        ({"RSERPOOL_COOKIE_KEY": "tooshort"}, "too short"),
        ({"RSERPOOL_COOKIE_KEY": "hex:zz"}, "invalid hex"),
        ({"RSERPOOL_COOKIE_KEY": "base64:!!!!"}, "invalid base64"),
    ],
)
def test_key_errors_are_clear(env: dict[str, str], message: str) -> None:
    with pytest.raises(CookieKeyError, match=message):
        load_cookie_key(env=env)


def test_missing_key_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(CookieKeyError, match="cannot read cookie key file"):
        load_cookie_key(tmp_path / "absent.key")


# --- session binding ---------------------------------------------------------------


def _echo(sealer: CookieSealer, session: bytes, counter: int) -> OpenedCookie:
    return sealer.open(sealer.seal(b"state", session, counter))


def test_echo_into_a_live_session_is_rejected() -> None:
    sealer = CookieSealer(KEY, POOL)
    binding = SessionBinding()
    session = new_session_id()
    binding.start_session("conn-a", session)
    binding.issued(session, 4)
    # A copy of session's cookie echoed on another connection while conn-a lives.
    with pytest.raises(InvalidCookie, match="live on another connection"):
        binding.accept_echo("conn-b", _echo(sealer, session, 4))
    # Once conn-a is gone, the same cookie resumes the session (a real failover).
    binding.session_ended("conn-a")
    binding.accept_echo("conn-b", _echo(sealer, session, 4))
    assert binding.session_of("conn-b") == session


def test_echo_on_a_connection_that_has_a_session_is_rejected() -> None:
    sealer = CookieSealer(KEY, POOL)
    binding = SessionBinding()
    binding.start_session("conn-a", new_session_id())
    with pytest.raises(InvalidCookie, match="already carries a session"):
        binding.accept_echo("conn-a", _echo(sealer, new_session_id(), 0))


def test_stale_counter_is_rejected_and_newer_accepted() -> None:
    sealer = CookieSealer(KEY, POOL)
    binding = SessionBinding()
    session = new_session_id()
    binding.accept_echo("c1", _echo(sealer, session, 7))
    binding.issued(session, 9)
    binding.session_ended("c1")
    with pytest.raises(InvalidCookie, match="stale cookie"):
        binding.accept_echo("c2", _echo(sealer, session, 8))
    assert binding.session_of("c2") is None
    binding.accept_echo("c2", _echo(sealer, session, 9))
    assert binding.newest_counter(session) == 9


def test_binding_memory_is_bounded_but_keeps_live_sessions() -> None:
    sealer = CookieSealer(KEY, POOL)
    binding = SessionBinding(max_sessions=8)
    live = new_session_id()
    binding.start_session("live", live)
    binding.issued(live, 5)
    for n in range(50):
        sid = new_session_id()
        binding.start_session(n, sid)
        binding.session_ended(n)
    assert binding.newest_counter(live) == 5
    with pytest.raises(InvalidCookie, match="live on another"):
        binding.accept_echo("x", _echo(sealer, live, 5))
