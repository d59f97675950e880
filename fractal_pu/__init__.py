"""Fractal pool user: parameter files, job splitting, session workers, viewer."""
