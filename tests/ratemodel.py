"""A model of a rate-limited server and of the run's workers, on the running loop's clock.

Used by the gate tests on a fast-forwarded loop (tests/virtualtime.py): every session goes
through the run's own attempt loop (`worker.run.exchange.Exchange.ask`, as terminate does):
it takes a grant, "sends" (the server model answers at once, after a latency), the loop
reports the answer to the gate and the slots and, when the answer was not final, hands
the concurrency slot on and waits the Retry-After (or a short backoff) before the next
attempt. Seconds of virtual time cost milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from worker.devin.answer import Answer
from worker.outcomes import Tally
from worker.run.backoff import Backoff, RetryBudget
from worker.run.exchange import Exchange
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy, ThrottleBreaker
from worker.run.slots import Slots
from worker.simulator.ratelimit import LIMITERS as SIMULATOR_LIMITERS
from worker.simulator.ratelimit import Limiter, TokenBucket


def now() -> float:
    return asyncio.get_running_loop().time()


LIMITERS = ("bucket", "bucket-1s", "window", "sliding")


def make_limiter(kind: str, limit: float) -> Limiter:
    """The simulator's limiters on the loop's clock: ``bucket``, a token bucket with a tenth
    of a second's burst (the simulator's default); ``bucket-1s``, a whole second's burst;
    ``window``, a fixed one-second window; ``sliding``, a sliding one-second log."""
    if kind == "bucket-1s":
        return TokenBucket(limit, max(1, int(limit)), now)
    return SIMULATOR_LIMITERS[kind](limit, max(1, int(limit / 10)), now)


@dataclass(slots=True)
class ModelServer:
    """A rate limit (``limiter``: see ``make_limiter``) whose limit follows ``schedule``
    ((seconds since start, limit or None), sorted), and 503s with Retry-After at
    ``overload_rate``. Counts answers per whole second of the run."""

    schedule: list[tuple[float, float | None]]
    overload_rate: float = 0.0
    retry_after: float | None = 1.0
    limiter: str = "bucket"
    seed: int = 1
    started: float = 0.0
    accepted: Counter[int] = field(default_factory=Counter)
    throttled: Counter[int] = field(default_factory=Counter)
    _bucket: Limiter | None = None
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
            self._bucket = make_limiter(self.limiter, limit)
        else:
            burst = limit if self.limiter == "bucket-1s" else limit / 10
            self._bucket.set_rate(limit, max(1, int(burst)))

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
    slots: Slots | None = None

    def min_rate_after(self, t: float) -> float:
        return min(rate for at, rate in self.rates if at >= t)

    def rate_at(self, t: float) -> float:
        return next(rate for at, rate in reversed(self.rates) if at <= t)


async def drive(
    gate: RateGate,
    server: ModelServer,
    *,
    sessions: int,
    concurrency: int | Literal["auto"] = 32,
    latency: float = 0.005,
    jitter: float = 0.0,
    hang_share: float = 0.0,
    hang: float = 1.0,
    reorder: float = 0.0,
    throttled_latency: float | None = None,
) -> Run:
    """Run ``sessions`` sessions through ``gate`` against ``server``; returns the record."""
    run = Run()
    rng = random.Random(server.seed)
    server.start()

    slots = Slots.auto(lambda: gate.rate, gate.now) if concurrency == "auto" else Slots(concurrency)
    run.slots = slots

    def answer_time() -> float:
        return _answer_time(rng, latency, jitter, hang_share, hang)

    policy = _policy(rng)

    async def send() -> Answer:
        if reorder:  # on its way: requests sent together reach the server in any order
            await asyncio.sleep(rng.uniform(0.0, reorder))
        status, retry_after = server.answer()
        fast = status == 429 and throttled_latency is not None
        await asyncio.sleep(throttled_latency if fast else answer_time())  # type: ignore[arg-type]
        return Answer(status, retry_after=retry_after)

    async def session() -> None:
        """One session through the run's own attempt loop (`Exchange.ask`): the gate, the
        slots (told each answer's time, handed on while it waits to retry), the policy."""
        x = Exchange(gate, policy, Halt(), Tally(), slots)
        try:
            await x.ask(policy.start(), send, lambda answer: answer.status == 200)
        finally:
            slots.release()

    async def intake() -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(sessions):
                await slots.acquire()
                group.create_task(session())

    async def sample() -> None:
        while True:
            run.rates.append((now() - server.started, gate.rate or math.inf))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    try:
        await intake()
    finally:
        sampler.cancel()
        await gate.aclose()
    run.finished = now() - server.started
    return run


def _answer_time(
    rng: random.Random, latency: float, jitter: float, hang_share: float, hang: float
) -> float:
    if hang_share and rng.random() < hang_share:
        return hang  # a request that hangs until the client's timeout
    return latency * (1.0 + jitter * (2 * rng.random() - 1))


def _policy(rng: random.Random) -> RetryPolicy:
    """Retries as terminate's, never given up on: a short backoff, or the Retry-After."""
    forever = 1e9
    return RetryPolicy(
        max_attempts=1_000_000,
        session_timeout=forever,
        backoff=Backoff(base=0.05, cap=0.05, retry_after_max=forever, rng=rng),
        budget=RetryBudget(capacity=1_000_000_000),
        throttle=ThrottleBreaker(window=forever, retry_after_max=forever, clock=now),
        clock=now,
    )
