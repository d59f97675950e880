"""State every part of the registrar core shares: configuration, identity, handlespace,
the action queue, the registrar-level timers and the random source (for jitter)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from rsplib.handlespace import Handlespace
from rsplib.registrar.config import RegistrarConfig
from rsplib.registrar.outbox import Outbox
from rsplib.registrar.schedule import Schedule


@dataclass(slots=True)
class CoreContext:
    config: RegistrarConfig
    server_id: int
    handlespace: Handlespace
    outbox: Outbox
    schedule: Schedule
    rng: random.Random

    def jittered(self, period: float) -> float:
        """``period`` varied uniformly by +-12.5 % (rsplib's announce/presence jitter)."""
        return period - 0.125 * period + self.rng.uniform(0.0, 0.25 * period)
