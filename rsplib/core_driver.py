"""The two chores every asyncio driver of a sans-IO core repeats: drain its actions and keep
one timer armed at its next deadline.

A driver feeds the core an input (bytes, a connection event, a timer tick, an API call),
then calls :meth:`ActionPump.pump`, which hands every action the core queued to the
driver's ``perform`` -- also the actions that performing queues in turn, since carrying
out one action can feed the core again (a send that fails at once, an event listener that
makes a request). Afterwards the pump re-arms the :class:`DeadlineTimer`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

A = TypeVar("A")
T = TypeVar("T")

log = logging.getLogger("rsplib")


class DeadlineTimer:
    """One ``call_at`` timer, moved whenever the core's next deadline moves."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_due: Callable[[], None]) -> None:
        self._loop = loop
        self._on_due = on_due
        self._handle: asyncio.TimerHandle | None = None

    def rearm(self, deadline: float | None) -> None:
        handle = self._handle
        if handle is not None:
            if deadline is not None and handle.when() == deadline:
                return
            handle.cancel()
            self._handle = None
        if deadline is not None:
            self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._on_due()


class ActionPump(Generic[A]):
    """Carries out a core's queued actions in order, including those queued meanwhile.

    Re-entrant calls (an action whose performance feeds the core again) do not recurse:
    the outer pump picks the new actions up in its next round.
    """

    def __init__(
        self,
        pop_actions: Callable[[], Sequence[A]],
        perform: Callable[[A], None],
        next_deadline: Callable[[], float | None] | None = None,
        timer: DeadlineTimer | None = None,
    ) -> None:
        self._pop = pop_actions
        self._perform = perform
        self._next_deadline = next_deadline
        self._timer = timer
        self._busy = False

    def pump(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            while actions := self._pop():
                for action in actions:
                    self._perform(action)
        finally:
            self._busy = False
        if self._timer is not None and self._next_deadline is not None:
            self._timer.rearm(self._next_deadline())


class Listeners(Generic[T]):
    """Callbacks that want every ``T``; a failing callback is logged, the others still run."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._callbacks: list[Callable[[T], None]] = []

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes again."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def emit(self, item: T) -> None:
        for callback in list(self._callbacks):
            try:
                callback(item)
            except Exception:
                log.exception("%s listener failed on %s", self._what, type(item).__name__)

    def __len__(self) -> int:
        return len(self._callbacks)
