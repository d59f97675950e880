"""Compiled (numba) version of the fractal kernel; imported only when numba is installed.

Same operations in the same order as ``kernel.scalar_reference`` (see the
semantics in kernel.py), one pixel at a time. Compiled without fast-math so
LLVM neither reorders nor fuses (FMA) the floating-point operations, which
keeps every count identical to the reference. ``nogil`` lets PE sessions in
several threads compute at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", bound=Callable[..., Any])

# numba ships no type information; this keeps the decorated functions typed.
_jit = cast(Callable[[_F], _F], numba.njit(nogil=True, cache=True, fastmath=False))

MANDELBROT = 1
MANDELBROT_N = 2
ESCAPE_BOUND = 2.0


@_jit
def _mandelbrot(cr: float, ci: float, max_iterations: int) -> int:
    zr = 0.0
    zi = 0.0
    zr2 = 0.0
    zi2 = 0.0
    for i in range(max_iterations):
        product = zr * zi
        zi = (product + product) - ci
        zr = (zr2 - zi2) - cr
        zr2 = zr * zr
        zi2 = zi * zi
        if not (zr2 + zi2 < ESCAPE_BOUND):
            return i
    return max_iterations


@_jit
def _mandelbrot_n(cr: float, ci: float, max_iterations: int, n: float) -> int:
    zr = 0.0
    zi = 0.0
    for i in range(max_iterations):
        mag2 = zr * zr + zi * zi
        if mag2 == 0.0:
            wr = 0.0
            wi = 0.0
        elif zi == 0.0 and zr > 0.0:
            wr = math.pow(zr, n)
            wi = 0.0
        else:
            rho = math.exp(n * math.log(math.sqrt(mag2)))
            theta = n * math.atan2(zi, zr)
            wr = rho * math.cos(theta)
            wi = rho * math.sin(theta)
        zr = wr - cr
        zi = wi - ci
        if not (zr * zr + zi * zi < ESCAPE_BOUND):
            return i
    return max_iterations


@_jit
def compute_span(
    algorithm: int,
    c1_real: float,
    c1_imag: float,
    step_x: float,
    step_y: float,
    width: int,
    start: int,
    max_iterations: int,
    n: float,
    out: npt.NDArray[np.uint32],
) -> None:
    """Fill ``out`` with the values of pixels start, start+1, ... (row-major)."""
    for k in range(out.shape[0]):
        index = start + k
        x = index % width
        y = index // width
        cr = c1_real + float(x) * step_x
        ci = c1_imag + float(y) * step_y
        if algorithm == MANDELBROT:
            out[k] = _mandelbrot(cr, ci, max_iterations)
        else:
            out[k] = _mandelbrot_n(cr, ci, max_iterations, n)
