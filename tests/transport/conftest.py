"""Helpers for the transport tests: run a coroutine with a hard time limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

Runner = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture
def run() -> Runner[Any]:
    """Run one coroutine in a fresh event loop; fail instead of hanging."""

    def _run(coro: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(coro, limit)

        return asyncio.run(bounded())

    return _run
