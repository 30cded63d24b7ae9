"""What the parts of one simulator share: its settings, counters, error answers, randomness
and wall clock (`Simulator` builds one and hands it to the fault injector and the handlers)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .config import SimulatorConfig
from .responses import Problems
from .stats import SimulatorStats


@dataclass(frozen=True, slots=True)
class Shared:
    config: SimulatorConfig
    stats: SimulatorStats
    problems: Problems
    rng: random.Random  # one seeded stream for latency jitter and faults alike
    now: Callable[[], float]  # unix seconds
