"""The figures of a running job, read from its ``Tally``: counts, rates, what is left."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from worker.outcomes import Tally

_WINDOW = 10.0  # seconds over which rates are measured


@dataclass(frozen=True, slots=True)
class Figures:
    """One reading of a run's tally: what both displays show."""

    settled: int
    expected: int | None
    requests: int
    elapsed_s: float
    requests_per_s: float
    eta_s: float | None
    counts: dict[str, int]
    rate_limit: float | None  # only when adaptive control holds it below the ceiling

    def as_event(self) -> dict[str, Any]:
        return {
            "settled": self.settled,
            "expected": self.expected,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 1),
            "requests_per_s": round(self.requests_per_s, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "counts": self.counts,
            "rate_limit": None if self.rate_limit is None else round(self.rate_limit, 2),
        }


class Meter:
    """Reads a `Tally` from any thread; rates are over the last ten seconds of readings."""

    def __init__(self, tally: Tally, ceiling: float, clock: Any = time.monotonic) -> None:
        self._tally = tally
        self._ceiling = ceiling or None  # 0 = no limit
        self._clock = clock
        self._samples: deque[tuple[float, int, int]] = deque()

    def read(self) -> Figures:
        tally, now = self._tally, self._clock()
        # dict() of a Counter copies in one C call, under the GIL: safe against the loop.
        counts = {k: v for k, v in dict(tally.counts).items() if v}
        settled, requests = sum(counts.values()), tally.requests
        self._samples.append((now, requests, settled))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _WINDOW:
            self._samples.popleft()
        then, old_requests, old_settled = self._samples[0]
        span = now - then
        rps = (requests - old_requests) / span if span > 0 else 0.0
        pace = (settled - old_settled) / span if span > 0 else 0.0
        left = None if tally.expected is None else max(tally.expected - settled, 0)
        eta = None if left is None or pace <= 0 else left / pace
        return Figures(
            settled,
            tally.expected,
            requests,
            now - tally.started,
            rps,
            eta,
            counts,
            self._lowered(tally.rate_limit),
        )

    def _lowered(self, rate: float | None) -> float | None:
        if rate is None or (self._ceiling is not None and rate >= self._ceiling - 1e-9):
            return None
        return rate
