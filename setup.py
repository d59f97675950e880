"""Build hook for the one optional C extension (the project metadata lives in pyproject.toml).

``rsplib.wire._slots`` speeds up building decoded values; without a compiler
the install goes on and rsplib.wire.fastvalues uses its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("rsplib.wire._slots", ["rsplib/wire/_slots.c"], optional=True),
    ]
)
