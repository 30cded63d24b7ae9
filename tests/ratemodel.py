"""A model of a rate-limited server and of the run's workers, on the running loop's clock.

Used by the gate tests on a fast-forwarded loop (looptime): every worker takes a grant,
"sends" (the server model answers at once), waits a fixed latency, reports the answer to
the gate and, when the answer was not final, waits its Retry-After (or a short backoff)
before the next attempt, as terminate does. Seconds of virtual time cost milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass, field

from worker.run.gate import RateGate
from worker.simulator.ratelimit import TokenBucket


def now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(slots=True)
class ModelServer:
    """A token bucket (a tenth of a second's burst) whose limit follows ``schedule``
    ((seconds since start, limit or None), sorted), and 503s with Retry-After at
    ``overload_rate``. Counts answers per whole second of the run."""

    schedule: list[tuple[float, float | None]]
    overload_rate: float = 0.0
    retry_after: float | None = 1.0
    seed: int = 1
    started: float = 0.0
    accepted: Counter[int] = field(default_factory=Counter)
    throttled: Counter[int] = field(default_factory=Counter)
    _bucket: TokenBucket | None = None
    _limit: float | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def start(self) -> None:
        self.started = now()
        self._rng.seed(self.seed)

    def answer(self) -> tuple[int, float | None]:
        """(status, Retry-After) for a request arriving now."""
        at = now() - self.started
        self._follow(at)
        second = int(at)
        if self._bucket is not None and self._bucket.take() > 0:
            self.throttled[second] += 1
            return 429, self.retry_after
        self.accepted[second] += 1
        if self.overload_rate and self._rng.random() < self.overload_rate:
            return 503, 1.0
        return 200, None

    def _follow(self, at: float) -> None:
        limit = next((lim for t, lim in reversed(self.schedule) if t <= at), None)
        if limit == self._limit and (limit is None or self._bucket is not None):
            return
        self._limit = limit
        if limit is None:
            self._bucket = None
        elif self._bucket is None:
            self._bucket = TokenBucket(limit, max(1, int(limit / 10)), now)
        else:
            self._bucket.set_rate(limit, max(1, int(limit / 10)))

    def accepted_rate(self, first: int, last: int) -> float:
        """Accepted answers per second over whole seconds ``first`` to ``last`` inclusive."""
        return sum(self.accepted[s] for s in range(first, last + 1)) / (last - first + 1)

    @property
    def share_429(self) -> float:
        total = sum(self.accepted.values()) + sum(self.throttled.values())
        return sum(self.throttled.values()) / max(1, total)


@dataclass(slots=True)
class Run:
    """What the workers saw: the granted rate each tenth of a second, pauses seen."""

    rates: list[tuple[float, float]] = field(default_factory=list)
    finished: float = 0.0

    def min_rate_after(self, t: float) -> float:
        return min(rate for at, rate in self.rates if at >= t)

    def rate_at(self, t: float) -> float:
        return next(rate for at, rate in reversed(self.rates) if at <= t)


async def drive(
    gate: RateGate,
    server: ModelServer,
    *,
    sessions: int,
    concurrency: int = 32,
    latency: float = 0.005,
) -> Run:
    """Run ``sessions`` sessions through ``gate`` against ``server``; returns the record."""
    run = Run()
    pending = iter(range(sessions))
    server.start()

    async def worker() -> None:
        for _ in pending:
            while True:
                await gate.acquire()
                status, retry_after = server.answer()
                await asyncio.sleep(latency)
                if status == 429:
                    gate.throttled(retry_after)
                elif status >= 500 and retry_after is not None:
                    gate.overloaded(retry_after)
                else:
                    gate.accepted()
                if status == 200:
                    break
                await asyncio.sleep(0.05 if retry_after is None else retry_after)

    async def sample() -> None:
        while True:
            run.rates.append((now() - server.started, gate.rate or math.inf))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        sampler.cancel()
        await gate.aclose()
    run.finished = now() - server.started
    return run
