"""The fractal PE's sans-IO calculation (pacing, cookies, failure mode, clean stop) and cookies."""

from __future__ import annotations

import numpy as np
import pytest

from fractal_pe.cookie_state import decode_fgp_state, encode_fgp_state
from fractal_pe.fgp import MAX_POINTS, Algorithm, FgpData, FgpParameter, decode_fgp
from fractal_pe.kernel import compute_span
from fractal_pe.service import (
    Calculation,
    CalculationDone,
    EndSession,
    FractalServiceConfig,
    Output,
    SendCookie,
    SendData,
    fractal_cookie_policy,
)
from rsplib.session.cookies import CookieSealer, InvalidCookie, SessionCookies

PARAM = FgpParameter(50, 41, 64, Algorithm.MANDELBROT, -2.0, -1.2, 1.0, 1.2, 2.0)
BIG = FgpParameter(120, 90, 32, Algorithm.MANDELBROT, -2.0, -1.2, 1.0, 1.2, 2.0)
KEY = b"k" * 32
POOL = b"FractalGeneratorPool"


def drive(
    calc: Calculation, *, now: float = 0.0, step: float = 0.001, stop_after: int | None = None
) -> tuple[list[Output], float]:
    """Compute block after block like the service does; collect every output."""
    outputs = calc.start(now)
    blocks = 0
    while (span := calc.next_span()) is not None:
        if stop_after is not None and blocks == stop_after:
            break
        values = compute_span(calc.compute_parameters, span[0], span[1], kernel="numpy")
        now += step
        outputs += calc.add_values(values, 0.002, now)
        blocks += 1
    return outputs, now


def delivered(outputs: list[Output], width: int) -> dict[int, int]:
    """Pixel index -> value of every Data message, asserting no pixel comes twice."""
    pixels: dict[int, int] = {}
    for out in outputs:
        if isinstance(out, SendData) and out.points:
            data = decode_fgp(out.payload)
            assert isinstance(data, FgpData) and not data.is_finalizer
            start = data.start_y * width + data.start_x
            for i, value in enumerate(data.points):
                assert start + i not in pixels
                pixels[start + i] = value
    return pixels


def test_whole_rectangle_is_delivered_in_order_then_the_finalizer() -> None:
    calc = Calculation(PARAM, 0, FractalServiceConfig(), 0.0)
    outputs, _ = drive(calc)
    assert isinstance(outputs[0], SendCookie) and outputs[0].position == 0
    assert isinstance(outputs[-1], CalculationDone)
    final = outputs[-2]
    assert isinstance(final, SendData)
    final_msg = decode_fgp(final.payload)
    assert isinstance(final_msg, FgpData) and final_msg.is_finalizer
    sizes = [o.points for o in outputs if isinstance(o, SendData) and o.points]
    assert max(sizes) <= MAX_POINTS
    assert all(size == MAX_POINTS for size in sizes[:-1])  # only the last one is partial
    pixels = delivered(outputs, PARAM.width)
    reference = compute_span(PARAM, 0, PARAM.width * PARAM.height, kernel="numpy")
    assert [pixels[i] for i in range(len(reference))] == reference.tolist()


def test_cookie_follows_flushed_data_and_counts_packets() -> None:
    config = FractalServiceConfig(cookie_max_packets=3, cookie_max_time=100.0)
    calc = Calculation(PARAM, 0, config, 0.0)
    outputs, _ = drive(calc)
    sent = 0
    since_cookie = 0
    for out in outputs:
        if isinstance(out, SendData) and out.points:
            sent += out.points
            since_cookie += 1
        elif isinstance(out, SendCookie):
            # Flushed first: the cookie never points past (or behind) the data sent.
            assert out.position == sent
            param, x, y = decode_fgp_state(out.state)
            assert param == PARAM and y * PARAM.width + x == sent
            assert since_cookie == 0 or since_cookie >= 3
            since_cookie = 0
    cookies = [o for o in outputs if isinstance(o, SendCookie)]
    assert len(cookies) >= 2


def test_cookie_by_time_flushes_a_partial_message() -> None:
    config = FractalServiceConfig(cookie_max_packets=1000, cookie_max_time=0.5)
    calc = Calculation(PARAM, 0, config, 0.0)
    calc.start(0.0)
    span = calc.next_span()
    assert span is not None
    values = compute_span(PARAM, span[0], 100, kernel="numpy")
    calc.block = 100
    assert calc.add_values(values, 0.001, 0.1) == []  # too early, nothing full
    more = compute_span(PARAM, 100, 10, kernel="numpy")
    outputs = calc.add_values(more, 0.001, 0.6)
    assert [type(o) for o in outputs] == [SendData, SendCookie]
    assert isinstance(outputs[0], SendData) and outputs[0].points == 110
    assert isinstance(outputs[1], SendCookie) and outputs[1].position == 110


def test_failure_after_sends_exactly_n_messages_then_cookie_and_end() -> None:
    config = FractalServiceConfig(failure_after=4, cookie_max_packets=100, cookie_max_time=100.0)
    calc = Calculation(BIG, 0, config, 0.0)
    outputs, _ = drive(calc)
    data = [o for o in outputs if isinstance(o, SendData)]
    assert len(data) == 4
    assert isinstance(outputs[-1], EndSession) and "failure" in outputs[-1].reason
    cookie = outputs[-2]
    assert isinstance(cookie, SendCookie) and cookie.position == 4 * MAX_POINTS
    # The next PE resumes there and its run counts afresh.
    resumed = Calculation(BIG, cookie.position, config, 0.0)
    more, _ = drive(resumed)
    assert len([o for o in more if isinstance(o, SendData) and o.points]) == 4
    assert set(delivered(more, BIG.width)) == set(range(4 * MAX_POINTS, 8 * MAX_POINTS))


def test_shutdown_flushes_then_final_cookie_so_nothing_is_recomputed() -> None:
    config = FractalServiceConfig(cookie_max_packets=100, cookie_max_time=100.0)
    calc = Calculation(BIG, 0, config, 0.0)
    outputs, now = drive(calc, stop_after=2)
    outputs += calc.shutdown(now)
    assert isinstance(outputs[-1], EndSession)
    cookie = outputs[-2]
    assert isinstance(cookie, SendCookie)
    first = delivered(outputs, BIG.width)
    assert cookie.position == len(first) == calc.computed  # no computed pixel is lost
    rest, _ = drive(Calculation(BIG, cookie.position, config, 0.0))
    second = delivered(rest, BIG.width)
    assert not set(first) & set(second)
    assert len(first) + len(second) == BIG.width * BIG.height


def test_resume_mid_row_from_a_cookie_position() -> None:
    start = 3 * PARAM.width + 7
    calc = Calculation(PARAM, start, FractalServiceConfig(), 0.0)
    outputs, _ = drive(calc)
    first = outputs[0]
    assert isinstance(first, SendCookie) and first.position == start
    pixels = delivered(outputs, PARAM.width)
    assert min(pixels) == start and len(pixels) == PARAM.width * PARAM.height - start


def test_test_mode_draws_the_pattern_but_keeps_the_parameters_in_cookies() -> None:
    calc = Calculation(PARAM, 0, FractalServiceConfig(test_mode=True), 0.0)
    outputs, _ = drive(calc)
    pixels = delivered(outputs, PARAM.width)
    assert all(v == ((i % 50) * (i // 50)) % 256 for i, v in pixels.items())
    cookie = outputs[0]
    assert isinstance(cookie, SendCookie) and decode_fgp_state(cookie.state)[0] == PARAM


def test_block_sizes_follow_the_compute_time() -> None:
    calc = Calculation(PARAM, 0, FractalServiceConfig(block_time=0.03), 0.0)
    values = np.zeros(324, dtype=np.uint32)
    calc.add_values(values, 0.3, 0.0)  # slow: 10x the target -> smaller blocks
    assert calc.block < 324
    calc2 = Calculation(PARAM, 0, FractalServiceConfig(block_time=0.03), 0.0)
    calc2.add_values(values, 0.0001, 0.0)  # fast -> bigger blocks, whole messages
    assert calc2.block > 324 and calc2.block % MAX_POINTS == 0


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        FractalServiceConfig(max_threads=0)
    with pytest.raises(ValueError):
        FractalServiceConfig(cookie_max_time=0)
    with pytest.raises(ValueError):
        FractalServiceConfig(failure_after=-1)


# --------------------------------------------------------------------------- cookies


def _state(x: int = 5, y: int = 2) -> bytes:
    return encode_fgp_state(PARAM, x, y)


def guard(sealer: CookieSealer | None = None, accept_unsigned: bool = False) -> SessionCookies:
    """The library's cookie handling with the fractal PE's policy."""
    if sealer is None and not accept_unsigned:
        sealer = CookieSealer(KEY, POOL)
    return SessionCookies(fractal_cookie_policy(sealer, accept_unsigned))


def test_sealed_cookie_round_trip_resumes_at_its_position() -> None:
    cookies = guard()
    issuer = object()
    context = cookies.start(issuer)
    cookie = cookies.seal(context, _state(5, 2))
    cookies.ended(issuer)
    state, opened = cookies.open_echo(object(), cookie)
    param, x, y = decode_fgp_state(state)
    assert param == PARAM and (x, y) == (5, 2)
    assert opened.session_id == context.session_id and opened.counter == context.counter


def test_tampered_cookie_is_rejected() -> None:
    cookies = guard()
    conn = object()
    cookie = bytearray(cookies.seal(cookies.start(conn), _state()))
    cookies.ended(conn)
    cookie[40 + 70] ^= 0x01  # inside the state: CurrentY
    with pytest.raises(InvalidCookie, match="signature"):
        cookies.open_echo(object(), bytes(cookie))


def test_forged_cookie_of_another_key_is_rejected() -> None:
    forger = guard(CookieSealer(b"f" * 32, POOL))
    cookies = guard()
    cookie = forger.seal(forger.start(object()), _state())
    with pytest.raises(InvalidCookie):
        cookies.open_echo(object(), cookie)


def test_cookie_of_a_live_session_cannot_start_another_one() -> None:
    cookies = guard()
    live = object()
    cookie = cookies.seal(cookies.start(live), _state())
    with pytest.raises(InvalidCookie, match="live"):
        cookies.open_echo(object(), cookie)
    cookies.ended(live)
    cookies.open_echo(object(), cookie)  # after the session ended it may move here


def test_stale_cookie_is_rejected_after_a_newer_one() -> None:
    cookies = guard()
    conn = object()
    context = cookies.start(conn)
    old = cookies.seal(context, _state(1, 0))
    cookies.seal(context, _state(9, 0))
    cookies.ended(conn)
    with pytest.raises(InvalidCookie, match="stale"):
        cookies.open_echo(object(), old)


def test_unsigned_rsplib_cookie_needs_the_option() -> None:
    strict = guard()
    with pytest.raises(InvalidCookie, match="unsigned"):
        strict.open_echo(object(), _state())
    lenient = guard(CookieSealer(KEY, POOL), accept_unsigned=True)
    state, _ = lenient.open_echo(object(), _state(3, 1))
    assert decode_fgp_state(state) == (PARAM, 3, 1)


def test_signed_cookie_without_fractal_state_is_rejected() -> None:
    sealer = CookieSealer(KEY, POOL)
    cookies = guard(sealer)
    cookie = sealer.seal(b"not a fractal state!", b"s" * 16, 1)
    with pytest.raises(InvalidCookie, match="resume"):
        cookies.open_echo(object(), cookie)


def test_no_key_means_unsigned_only_when_allowed() -> None:
    with pytest.raises(ValueError):
        fractal_cookie_policy(None, accept_unsigned=False)
    cookies = guard(None, accept_unsigned=True)
    assert cookies.seal(cookies.start(object()), _state()) == _state()
