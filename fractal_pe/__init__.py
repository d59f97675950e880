"""Fractal generator pool element: FGP codec, Mandelbrot kernel, signed cookies."""
