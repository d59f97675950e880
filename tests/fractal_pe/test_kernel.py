"""The pixel kernel: hand-computed values, and every kernel equal to the scalar reference."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from fractal_pe import kernel
from fractal_pe.fgp import Algorithm, FgpParameter
from fractal_pe.kernel import (
    KERNEL_ENV,
    KernelUnavailableError,
    available_kernels,
    compute_from,
    compute_rows,
    compute_span,
    resolve_kernel,
    scalar_reference,
)

KERNELS = available_kernels()


def single_point(
    c_real: float, c_imag: float, algorithm: int, n: float, iterations: int
) -> FgpParameter:
    """A 1x1 rectangle whose only pixel has c = c_real + i*c_imag."""
    return FgpParameter(1, 1, iterations, algorithm, c_real, c_imag, c_real + 1.0, c_imag + 1.0, n)


# -- the reference against values worked out by hand --------------------------------------------

# (c, algorithm, N, max, value). z <- z*z - c, escape when |z|^2 >= 2.
HAND_VALUES = [
    # c = 1.5: z = -1.5, |z|^2 = 2.25 -> escapes in the first update: value 0
    (1.5, 0.0, Algorithm.MANDELBROT, 2.0, 100, 0),
    # c = -0.5: z = 0.5, 0.75, 1.0625, 1.62890625 (|z|^2 = 2.65) -> value 3
    (-0.5, 0.0, Algorithm.MANDELBROT, 2.0, 100, 3),
    # the same point with only 3 iterations never reaches the test that fails
    (-0.5, 0.0, Algorithm.MANDELBROT, 2.0, 3, 3),
    # c = 1: z = -1, 0, -1, ... never escapes
    (1.0, 0.0, Algorithm.MANDELBROT, 2.0, 50, 50),
    # c = -1 with |z|^2 >= 2 (not 4!): z = 1, then 2 -> value 1 (z*z + c would give 0)
    (-1.0, 0.0, Algorithm.MANDELBROT, 2.0, 50, 1),
    # c = 1.2i: z = -1.2i (1.44), then -1.44 - 1.2i (3.51) -> value 1
    (0.0, 1.2, Algorithm.MANDELBROT, 2.0, 50, 1),
    # MandelbrotN, N = 3, c = -1: z = 0**3 + 1 = 1, then 1 + 1 = 2 -> value 1
    (-1.0, 0.0, Algorithm.MANDELBROT_N, 3.0, 50, 1),
    # zero base stays zero: c = 0 never escapes, even for negative N
    (0.0, 0.0, Algorithm.MANDELBROT_N, -2.0, 40, 40),
    # N = 5000, c = -1.2: z = 1.2, then 1.2**5000 overflows -> counted as escape, value 1
    (-1.2, 0.0, Algorithm.MANDELBROT_N, 5000.0, 50, 1),
    # the same overflow through the polar branch (negative real base): value 1
    (1.2, 0.0, Algorithm.MANDELBROT_N, 5001.0, 50, 1),
    # max_iterations 0: nothing is iterated, value 0 = MaxIterations
    (5.0, 5.0, Algorithm.MANDELBROT, 2.0, 0, 0),
]


@pytest.mark.parametrize(("cr", "ci", "algorithm", "n", "iterations", "value"), HAND_VALUES)
def test_reference_matches_hand_computation(
    cr: float, ci: float, algorithm: int, n: float, iterations: int, value: int
) -> None:
    assert scalar_reference(single_point(cr, ci, algorithm, n, iterations), 0, 0) == value


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize(("cr", "ci", "algorithm", "n", "iterations", "value"), HAND_VALUES)
def test_kernels_match_hand_computation(
    name: str, cr: float, ci: float, algorithm: int, n: float, iterations: int, value: int
) -> None:
    param = single_point(cr, ci, algorithm, n, iterations)
    assert compute_rows(param, 0, 1, kernel=name).tolist() == [[value]]


def test_grid_mapping_uses_steps_from_c1() -> None:
    # 4x2 over Re -2..2, Im 0..1: stepX = 1, stepY = 0.5; pixel (3, 1) is c = 1 + 0.5i.
    param = FgpParameter(4, 2, 64, Algorithm.MANDELBROT, -2.0, 0.0, 2.0, 1.0)
    expected = scalar_reference(single_point(1.0, 0.5, Algorithm.MANDELBROT, 2.0, 64), 0, 0)
    assert scalar_reference(param, 3, 1) == expected
    with pytest.raises(ValueError):
        scalar_reference(param, 4, 0)


def test_nan_coordinates_count_as_escaped_at_once() -> None:
    param = single_point(math.nan, 0.0, Algorithm.MANDELBROT, 2.0, 10)
    assert scalar_reference(param, 0, 0) == 0
    for name in KERNELS:
        assert compute_rows(param, 0, 1, kernel=name).tolist() == [[0]]


# -- kernels against the reference on whole test images -------------------------------------


def _numpy_agrees_with_libm() -> bool:
    """numpy's exp/log/atan2/cos/sin/power equal the C library's (math) on a sample.

    With AVX-512, numpy uses its own vector versions of some of these, which may
    differ in the last bit; then MandelbrotN cannot be bit-identical in numpy.
    """
    rng = np.random.default_rng(7)
    x = rng.uniform(-40.0, 40.0, 4000)
    y = rng.uniform(1e-6, 2.0, 4000)
    checks = [
        (np.exp(x), [math.exp(v) for v in x]),
        (np.log(y), [math.log(v) for v in y]),
        (np.cos(x), [math.cos(v) for v in x]),
        (np.sin(x), [math.sin(v) for v in x]),
        (np.arctan2(x, y - 1.0), [math.atan2(a, b - 1.0) for a, b in zip(x, y, strict=True)]),
        (np.power(y, x), [math.pow(b, a) for a, b in zip(x, y, strict=True)]),
    ]
    return all(vector.tolist() == scalar for vector, scalar in checks)


TEST_IMAGES = {
    # the whole z*z - c set (mirror image of the usual one)
    "whole_set": FgpParameter(72, 48, 200, Algorithm.MANDELBROT, -1.0, -1.2, 2.0, 1.2),
    # a boundary zoom where counts are large and chaotic
    "seahorse": FgpParameter(48, 32, 600, Algorithm.MANDELBROT, 0.70, 0.05, 0.80, 0.12),
    # real axis inside the rectangle (zi == 0 rows)
    "real_axis": FgpParameter(40, 21, 300, Algorithm.MANDELBROT, 1.3, -0.1, 1.9, 0.1),
    "cubic": FgpParameter(48, 32, 150, Algorithm.MANDELBROT_N, -1.4, -1.4, 1.4, 1.4, 3.0),
    # real axis hit exactly (row 10): positive real bases take the pow() branch
    "quartic_axis": FgpParameter(40, 21, 150, Algorithm.MANDELBROT_N, -1.2, -1.0, 1.2, 1.0, 4.0),
    "fractional": FgpParameter(40, 30, 120, Algorithm.MANDELBROT_N, -1.5, -1.5, 1.5, 1.5, 2.5),
    "negative": FgpParameter(32, 24, 80, Algorithm.MANDELBROT_N, -2.0, -2.0, 2.0, 2.0, -2.0),
    "seventh": FgpParameter(32, 24, 100, Algorithm.MANDELBROT_N, 0.6, 0.6, 0.9, 0.9, 7.0),
    # huge powers overflow to infinity all the time (counted as escapes)
    "high_power": FgpParameter(32, 24, 100, Algorithm.MANDELBROT_N, 0.95, 0.2, 1.05, 0.3, 1234.0),
    "test_pattern": FgpParameter(300, 7, 100, 0, 0.0, 0.0, 1.0, 1.0),
}


def reference_image(param: FgpParameter) -> list[list[int]]:
    return [
        [scalar_reference(param, x, y) for x in range(param.width)] for y in range(param.height)
    ]


@pytest.fixture(scope="module")
def references() -> dict[str, list[list[int]]]:
    return {name: reference_image(param) for name, param in TEST_IMAGES.items()}


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("image", sorted(TEST_IMAGES))
def test_kernel_equals_reference(
    name: str, image: str, references: dict[str, list[list[int]]]
) -> None:
    param = TEST_IMAGES[image]
    if (
        name == "numpy"
        and param.algorithm == Algorithm.MANDELBROT_N
        and not _numpy_agrees_with_libm()
    ):
        pytest.skip("numpy's vector exp/log/sin/cos differ from the C library on this CPU")
    values = compute_rows(param, 0, param.height, kernel=name)
    assert values.dtype == np.uint32
    assert values.shape == (param.height, param.width)
    expected = references[image]
    assert len({v for row in expected for v in row}) > 3  # the image is not trivial
    assert values.tolist() == expected


@pytest.mark.parametrize("name", KERNELS)
def test_row_blocks_and_resume_mid_row_equal_the_whole(name: str) -> None:
    param = TEST_IMAGES["whole_set"]
    whole = compute_rows(param, 0, param.height, kernel=name)
    blocks = np.vstack(
        [
            compute_rows(param, y, min(y + 5, param.height), kernel=name)
            for y in range(0, param.height, 5)
        ]
    )
    assert np.array_equal(blocks, whole)
    resumed = compute_from(param, 31, 17, 100, kernel=name)  # wraps into row 18
    assert np.array_equal(resumed, whole.ravel()[17 * param.width + 31 :][:100])
    tail = compute_from(param, 70, 47, 1000, kernel=name)  # clipped at the last pixel
    assert tail.tolist() == whole[47, 70:].tolist()
    assert compute_from(param, 0, param.height, 10, kernel=name).size == 0


def test_spans_longer_than_one_work_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    param = TEST_IMAGES["seahorse"]
    whole = compute_rows(param, 0, param.height, kernel="numpy")
    monkeypatch.setattr(kernel, "_CHUNK", 100)
    assert np.array_equal(compute_rows(param, 0, param.height, kernel="numpy"), whole)


def test_empty_and_bad_ranges() -> None:
    param = TEST_IMAGES["whole_set"]
    assert compute_rows(param, 5, 5).shape == (0, param.width)
    assert compute_rows(FgpParameter(0, 0, 10, 1, 0.0, 0.0, 1.0, 1.0), 0, 0).size == 0
    with pytest.raises(ValueError):
        compute_rows(param, 0, param.height + 1)
    with pytest.raises(ValueError):
        compute_from(param, param.width + 1, 0, 1)
    with pytest.raises(ValueError):
        compute_span(param, -1, 5)


@pytest.mark.parametrize("name", KERNELS)
def test_worker_threads_compute_the_same(name: str) -> None:
    param = TEST_IMAGES["seahorse"]
    expected = compute_rows(param, 0, param.height, kernel=name)
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        results[index] = compute_rows(param, 0, param.height, kernel=name)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3
    assert all(np.array_equal(r, expected) for r in results.values())


# -- kernel selection -------------------------------------------------------------------------


def test_selection_by_argument_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_kernel("numpy") == "numpy"
    assert resolve_kernel(" NumPy ") == "numpy"
    monkeypatch.setenv(KERNEL_ENV, "numpy")
    assert resolve_kernel() == "numpy"
    monkeypatch.setenv(KERNEL_ENV, "bogus")
    with pytest.raises(ValueError):
        resolve_kernel()
    with pytest.raises(ValueError):
        resolve_kernel("cuda")


def test_auto_falls_back_to_numpy_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise KernelUnavailableError("numba kernel unavailable: No module named 'numba'")

    monkeypatch.setattr(kernel, "_numba_module", missing)
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    assert resolve_kernel() == "numpy"
    assert resolve_kernel("auto") == "numpy"
    assert available_kernels() == ("numpy",)
    with pytest.raises(KernelUnavailableError):
        resolve_kernel("numba")


@pytest.mark.skipif("numba" not in KERNELS, reason="numba is not installed")
def test_auto_prefers_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    assert resolve_kernel() == "numba"
    assert kernel.prepare_kernel() == "numba"
