"""The fractal PE's pixel kernel: rsplib's iteration, bit for bit, in three speeds.

Semantics (the same in every implementation; ``scalar_reference`` is the truth):

* Pixel (x, y) of a W x H rectangle maps to
  c = (C1R + x*stepX) + i*(C1I + y*stepY), stepX = (C2R-C1R)/W, stepY = (C2I-C1I)/H.
* Mandelbrot: z = 0; for i = 0 .. max-1: z <- z*z - c; stop with value i as soon as
  |z|^2 = zr*zr + zi*zi is not below 2.0. Value max if it never stops. Note the minus
  sign and the bound 2 (not 4): that is what rsplib computes.
* MandelbrotN: the same with z <- z**N - c, where the power is the one C++'s
  ``std::pow(complex<double>, double)`` computes: 0 for a zero base (also when
  |z|^2 underflows to 0), the real power for a positive real base, otherwise
  polar(exp(N*log|z|), N*arg z). |z| is taken as sqrt(zr*zr + zi*zi) rather than
  hypot(): sqrt is correctly rounded on every platform, hypot is not.
* Escape test: a pixel stops when ``not (|z|^2 < 2.0)``. So an overflow to
  infinity and a NaN count as escaped in this very iteration. rsplib's C++ would
  let a NaN iterate to MaxIterations; we deliberately treat "no longer a finite
  small number" as escaped, which Python's OverflowError also forces on us.
* Anything else than algorithm 1 or 2: test pattern (x*y) mod 256.

The numpy kernel performs exactly the scalar operations in the same order on
whole arrays (z*z as zr*zr - zi*zi and zr*zi + zr*zi, then minus c), so the
rounding and therefore every count is identical. It keeps only the points
still iterating (the active set), compacting every few iterations; a
sticky "alive" mask counts each point's surviving iterations, which is its
value. The numba kernel (kernel_numba.py) is a plain loop with the same
operations. For MandelbrotN the transcendental functions of numpy must agree
with the C library's (they do on x86-64 without AVX-512; tests check it).

Selection: argument ``kernel`` ("auto", "numpy", "numba"), else the
environment variable FRACTAL_KERNEL, else "auto" = numba when it imports.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fractal_pe.fgp import Algorithm, FgpParameter

KernelName = Literal["numpy", "numba"]
KERNEL_ENV = "FRACTAL_KERNEL"
KERNEL_CHOICES = ("auto", "numpy", "numba")

CountArray = npt.NDArray[np.uint32]
FloatArray = npt.NDArray[np.float64]

# Points per numpy work unit: large enough to amortise the per-call overhead of
# the ufuncs, small enough for the working arrays to stay in the CPU caches.
_CHUNK = 32768
# Iterations between two compactions of the active set.
_COMPACT_EVERY = 4
ESCAPE_BOUND = 2.0


class KernelUnavailableError(RuntimeError):
    """The requested kernel cannot be used here (e.g. numba is not installed)."""


# -- the scalar ground truth ---------------------------------------------------------------------


def _steps(param: FgpParameter) -> tuple[float, float]:
    return (
        (param.c2_real - param.c1_real) / param.width,
        (param.c2_imag - param.c1_imag) / param.height,
    )


def power_reference(zr: float, zi: float, n: float) -> tuple[float, float]:
    """z**n as C++ std::pow(complex, double) computes it (see module docstring).

    Raises OverflowError/ValueError where C would return inf/NaN; the caller
    counts that as an escape.
    """
    mag2 = zr * zr + zi * zi
    if mag2 == 0.0:
        return 0.0, 0.0
    if zi == 0.0 and zr > 0.0:
        return math.pow(zr, n), 0.0
    rho = math.exp(n * math.log(math.sqrt(mag2)))
    theta = n * math.atan2(zi, zr)
    return rho * math.cos(theta), rho * math.sin(theta)


def scalar_reference(param: FgpParameter, x: int, y: int) -> int:
    """The value of pixel (x, y), computed one operation at a time in plain Python."""
    if not (0 <= x < param.width and 0 <= y < param.height):
        raise ValueError(f"pixel ({x}, {y}) outside the {param.width}x{param.height} rectangle")
    if param.algorithm not in (Algorithm.MANDELBROT, Algorithm.MANDELBROT_N):
        return (x * y) % 256
    step_x, step_y = _steps(param)
    cr = param.c1_real + x * step_x
    ci = param.c1_imag + y * step_y
    if param.algorithm == Algorithm.MANDELBROT:
        # Python's complex product is (ar*br - ai*bi) + (ar*bi + ai*br)i, like C++'s.
        c = complex(cr, ci)
        z = 0j
        for i in range(param.max_iterations):
            z = z * z - c
            if not (z.real * z.real + z.imag * z.imag < ESCAPE_BOUND):
                return i
        return param.max_iterations
    zr = zi = 0.0
    for i in range(param.max_iterations):
        try:
            wr, wi = power_reference(zr, zi, param.n)
        except (OverflowError, ValueError):
            return i  # C gives inf/NaN here, which fails the escape test
        zr = wr - cr
        zi = wi - ci
        if not (zr * zr + zi * zi < ESCAPE_BOUND):
            return i
    return param.max_iterations


# -- numpy kernel -------------------------------------------------------------------------------


def _grid(param: FgpParameter, start: int, count: int) -> tuple[FloatArray, FloatArray]:
    """c for pixels start .. start+count-1 (row-major), rounded exactly as the scalar code."""
    step_x, step_y = _steps(param)
    index = np.arange(start, start + count, dtype=np.int64)
    xs = (index % param.width).astype(np.float64)
    ys = (index // param.width).astype(np.float64)
    cr = param.c1_real + xs * step_x
    ci = param.c1_imag + ys * step_y
    return cr, ci


def _test_pattern(param: FgpParameter, start: int, count: int) -> CountArray:
    index = np.arange(start, start + count, dtype=np.int64)
    values = ((index % param.width) * (index // param.width)) % 256
    return values.astype(np.uint32)


# step(zr, zi, zr2, zi2, cr, ci, scratch)
StepFunction = Callable[
    [FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray], None
]


def _active_set(
    cr: FloatArray, ci: FloatArray, max_iterations: int, step: StepFunction
) -> CountArray:
    """Iterate ``step`` over the points that have not escaped; return their counts.

    ``step(zr, zi, zr2, zi2, cr, ci, scratch)`` must update z in place and leave
    zr2 = zr*zr, zi2 = zi*zi of the new z (the escape test reads them).
    """
    n = len(cr)
    out = np.full(n, max_iterations, dtype=np.uint32)
    index = np.arange(n)
    zr = np.zeros(n)
    zi = np.zeros(n)
    zr2 = np.zeros(n)
    zi2 = np.zeros(n)
    mag = np.empty(n)
    scratch = np.empty(n)
    below = np.empty(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    survived = np.zeros(n, dtype=np.uint32)
    done = 0
    while done < max_iterations and n:
        burst = min(_COMPACT_EVERY, max_iterations - done)
        for _ in range(burst):
            step(zr, zi, zr2, zi2, cr, ci, scratch)
            np.add(zr2, zi2, out=mag)
            np.less(mag, ESCAPE_BOUND, out=below)  # NaN compares False: escaped
            # Sticky: a point that escaped once stays escaped, whatever z does later.
            np.logical_and(alive, below, out=alive)
            # Iterations survived before escaping == the iteration index of the escape.
            np.add(survived, alive, out=survived)
        done += burst
        remaining = int(np.count_nonzero(alive))
        if remaining < n:
            dead = ~alive
            out[index[dead]] = survived[dead]
            index = index[alive]
            survived = survived[alive]
            zr, zi, zr2, zi2, cr, ci = (a[alive] for a in (zr, zi, zr2, zi2, cr, ci))
            n = remaining
            mag = mag[:n]
            scratch = scratch[:n]
            below = below[:n]
            alive = np.ones(n, dtype=bool)
    return out


def _mandelbrot_step(
    zr: FloatArray,
    zi: FloatArray,
    zr2: FloatArray,
    zi2: FloatArray,
    cr: FloatArray,
    ci: FloatArray,
    scratch: FloatArray,
) -> None:
    # z*z - c with the complex product's rounding: imag = zr*zi + zi*zr (the doubling
    # of one product is exact), real = zr*zr - zi*zi (both squares kept from the test).
    np.multiply(zr, zi, out=scratch)
    np.add(scratch, scratch, out=scratch)
    np.subtract(scratch, ci, out=zi)
    np.subtract(zr2, zi2, out=zr)
    np.subtract(zr, cr, out=zr)
    np.multiply(zr, zr, out=zr2)
    np.multiply(zi, zi, out=zi2)


def _mandelbrot_n_step(n: float) -> StepFunction:
    def step(
        zr: FloatArray,
        zi: FloatArray,
        zr2: FloatArray,
        zi2: FloatArray,
        cr: FloatArray,
        ci: FloatArray,
        scratch: FloatArray,
    ) -> None:
        mag2 = zr2 + zi2
        rho = np.exp(n * np.log(np.sqrt(mag2)))
        theta = n * np.arctan2(zi, zr)
        wr = rho * np.cos(theta)
        wi = rho * np.sin(theta)
        positive_real = (zi == 0.0) & (zr > 0.0)
        if positive_real.any():
            wr[positive_real] = np.power(zr[positive_real], n)
            wi[positive_real] = 0.0
        zero = mag2 == 0.0
        if zero.any():
            wr[zero] = 0.0
            wi[zero] = 0.0
        np.subtract(wr, cr, out=zr)
        np.subtract(wi, ci, out=zi)
        np.multiply(zr, zr, out=zr2)
        np.multiply(zi, zi, out=zi2)

    return step


def _numpy_span(param: FgpParameter, start: int, count: int) -> CountArray:
    if param.algorithm not in (Algorithm.MANDELBROT, Algorithm.MANDELBROT_N):
        return _test_pattern(param, start, count)
    step = (
        _mandelbrot_step if param.algorithm == Algorithm.MANDELBROT else _mandelbrot_n_step(param.n)
    )
    out = np.empty(count, dtype=np.uint32)
    # Overflow, inf - inf and the like are expected on escaped points; they are counted
    # as escapes, so the warnings would only be noise.
    with np.errstate(all="ignore"):
        for offset in range(0, count, _CHUNK):
            size = min(_CHUNK, count - offset)
            cr, ci = _grid(param, start + offset, size)
            out[offset : offset + size] = _active_set(cr, ci, param.max_iterations, step)
    return out


# -- numba kernel (optional) ----------------------------------------------------------------


@cache
def _numba_module() -> Any:
    try:
        from fractal_pe import kernel_numba
    except ImportError as exc:
        raise KernelUnavailableError(f"numba kernel unavailable: {exc}") from exc
    return kernel_numba


def _numba_span(param: FgpParameter, start: int, count: int) -> CountArray:
    if param.algorithm not in (Algorithm.MANDELBROT, Algorithm.MANDELBROT_N):
        return _test_pattern(param, start, count)
    module = _numba_module()
    step_x, step_y = _steps(param)
    out = np.empty(count, dtype=np.uint32)
    module.compute_span(
        int(param.algorithm),
        param.c1_real,
        param.c1_imag,
        step_x,
        step_y,
        param.width,
        start,
        param.max_iterations,
        float(param.n),
        out,
    )
    return out


# -- selection and public entry points --------------------------------------------------------


def numba_available() -> bool:
    try:
        _numba_module()
    except KernelUnavailableError:
        return False
    return True


def available_kernels() -> tuple[KernelName, ...]:
    return ("numpy", "numba") if numba_available() else ("numpy",)


def resolve_kernel(choice: str | None = None) -> KernelName:
    """Turn "auto"/"numpy"/"numba"/None (None: $FRACTAL_KERNEL or auto) into a kernel."""
    name = (choice if choice is not None else os.environ.get(KERNEL_ENV, "auto")).strip().lower()
    if name not in KERNEL_CHOICES:
        raise ValueError(f"unknown kernel {name!r}; choose one of {', '.join(KERNEL_CHOICES)}")
    if name == "numpy":
        return "numpy"
    if name == "numba":
        _numba_module()  # raises KernelUnavailableError with the reason
        return "numba"
    return "numba" if numba_available() else "numpy"


def prepare_kernel(choice: str | None = None) -> KernelName:
    """Resolve the kernel and compile it now (numba), so the first job is not slow."""
    name = resolve_kernel(choice)
    warm = FgpParameter(4, 2, 8, Algorithm.MANDELBROT, -1.0, -1.0, 1.0, 1.0, 2.0)
    compute_span(warm, 0, 8, kernel=name)
    compute_span(
        FgpParameter(4, 2, 8, Algorithm.MANDELBROT_N, -1.0, -1.0, 1.0, 1.0, 3.0), 0, 8, kernel=name
    )
    return name


def compute_span(
    param: FgpParameter, start: int, count: int, *, kernel: str | None = None
) -> CountArray:
    """Values of ``count`` pixels from row-major index ``start`` (clipped at the end).

    Safe to call from worker threads: numpy releases the GIL inside its loops and
    the numba kernel runs entirely without it.
    """
    total = param.width * param.height
    if start < 0 or count < 0 or start > total:
        raise ValueError(f"span ({start}, {count}) outside a rectangle of {total} pixels")
    count = min(count, total - start)
    if count == 0:
        return np.empty(0, dtype=np.uint32)
    if resolve_kernel(kernel) == "numba":
        return _numba_span(param, start, count)
    return _numpy_span(param, start, count)


def compute_rows(param: FgpParameter, y0: int, y1: int, *, kernel: str | None = None) -> CountArray:
    """Rows y0 .. y1-1, all columns, as a (y1-y0, width) uint32 array."""
    if not 0 <= y0 <= y1 <= param.height:
        raise ValueError(f"rows {y0}..{y1} outside a rectangle of height {param.height}")
    values = compute_span(param, y0 * param.width, (y1 - y0) * param.width, kernel=kernel)
    return values.reshape(y1 - y0, param.width)


def compute_from(
    param: FgpParameter, x: int, y: int, count: int, *, kernel: str | None = None
) -> CountArray:
    """Up to ``count`` values starting at pixel (x, y), wrapping at the row end.

    This is how a PE resumes mid-row from a cookie's (CurrentX, CurrentY).
    """
    if not (0 <= x <= param.width and 0 <= y <= param.height):
        raise ValueError(f"pixel ({x}, {y}) outside the {param.width}x{param.height} rectangle")
    start = min(y * param.width + x, param.width * param.height)
    return compute_span(param, start, count, kernel=kernel)
