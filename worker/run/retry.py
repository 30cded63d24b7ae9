"""One retry policy for every loop that retries: a session's DELETEs, its reconciling GETs,
its archive call, and the ``list`` pager's pages.

The stop rule is ``Tries.next_wait``, in this order:

1. the server asked (``Retry-After``) for a wait above ``retry_after_max``: stop at once,
   with that reason; waiting for the cap would hold the slot for nothing;
2. ``max_attempts`` were made;
3. the per-session deadline: a retry is made only if its wait plus one whole request
   (``request_timeout``) still ends within ``session_timeout`` of the first attempt; the
   rate gate's wait is bounded by the same deadline (``Tries.remaining``), so a slot is
   held at most ``session_timeout`` plus one request, never for minutes;
4. the run's retry budget is spent. A retry after a 429 costs none of it: a throttled API
   is not a broken one, the rate gate paces those retries and ``ThrottleBreaker`` bounds
   them; a wave of 429s at the start of a run must not leave real faults without retries.

Otherwise the wait is full-jitter exponential backoff, or ``Retry-After`` when the server
sent one. ``retry_after_max = 0`` means "do not wait for Retry-After" (backoff alone),
and ``Backoff(base=0)`` with an injected ``sleep`` makes every wait zero in tests.

``ThrottleBreaker`` ends a run the API keeps throttling, in bounded time. It trips on a
429 asking to wait longer than ``retry_after_max`` when no other answer came for
``window`` seconds (``throttle_timeout``; at the start of a run, at once: the fleet is
paused by such a 429, so no second one would come before the pause ends), or on
``hopeless`` of them in a row; and when every HTTP answer for ``window`` seconds was a
429, at least ``min_count`` of them. Any other HTTP answer resets the counts; a transport
failure neither counts nor resets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker.run.backoff import Backoff, RetryBudget

if TYPE_CHECKING:
    from worker.devin.answer import Answer
    from worker.settings import Settings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def over_cap(retry_after: float | None, cap: float) -> bool:
    """True when the server asked for a wait the run will not make (a cap of 0: no cap)."""
    return retry_after is not None and cap > 0 and retry_after > cap


@dataclass(slots=True)
class ThrottleBreaker:
    """Tells when throttling is sustained enough to end the run (see the module docstring)."""

    window: float = 60.0
    retry_after_max: float = 120.0
    hopeless: int = 3
    min_count: int = 10
    clock: Clock = time.monotonic
    _since: float | None = None
    _count: int = 0
    _over_cap: int = 0
    _other: float | None = None  # when the last HTTP answer that was not a 429 came

    def _silent(self, now: float) -> bool:
        return self._other is None or now - self._other >= self.window

    def observe(self, status: int | None, retry_after: float | None) -> str | None:
        """Count one answer; the reason to end the run when the breaker trips, else None."""
        if status is None:
            return None
        now = self.clock()
        if status != 429:
            self._since, self._count, self._over_cap, self._other = None, 0, 0, now
            return None
        if self._since is None:
            self._since = now
        self._count += 1
        if over_cap(retry_after, self.retry_after_max):
            self._over_cap += 1
        else:
            self._over_cap = 0
        if self._over_cap and (self._over_cap >= self.hopeless or self._silent(now)):
            asked = (
                f"the API kept throttling: {self._over_cap} answer(s) in a row asked to wait "
                f"{retry_after:.0f} s, more than retry_after_max ({self.retry_after_max:g} s)"
            )
            if self._over_cap >= self.hopeless:
                return asked
            return f"{asked}, and no other answer came for {self.window:g} s"
        span = now - self._since
        if self._count >= self.min_count and span >= self.window:
            return f"the API kept throttling: only 429 answers for {span:.0f} s ({self._count})"
        return None


@dataclass(slots=True)
class RetryPolicy:
    """Attempts, per-session deadline, backoff, the run's budget and Retry-After, in one
    place; ``start()`` gives the counter of one session (or one page)."""

    max_attempts: int = 10
    session_timeout: float = 120.0
    request_timeout: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    budget: RetryBudget = field(default_factory=RetryBudget)
    throttle: ThrottleBreaker = field(default_factory=ThrottleBreaker)
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep

    @classmethod
    def from_settings(
        cls, s: Settings, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> RetryPolicy:
        return cls(
            max_attempts=s.max_attempts,
            session_timeout=s.session_timeout,
            request_timeout=s.timeout,
            backoff=Backoff(s.backoff_base, s.backoff_max, s.retry_after_max),
            budget=RetryBudget(capacity=s.retry_budget),
            throttle=ThrottleBreaker(
                window=s.throttle_timeout, retry_after_max=s.retry_after_max, clock=clock
            ),
            clock=clock,
            sleep=sleep,
        )

    def start(self, started: float | None = None) -> Tries:
        """The attempts of one session; ``started`` shares an earlier deadline."""
        return Tries(self, self.clock() if started is None else started)


@dataclass(slots=True)
class Tries:
    """The attempts of one session (or one page) under a policy."""

    policy: RetryPolicy
    started: float
    attempts: int = 0
    last_failure: str | None = None
    gave_up: bool = False  # the policy stopped the attempts (not a halt, not the gate)

    def elapsed(self) -> float:
        return self.policy.clock() - self.started

    def remaining(self) -> float:
        """Seconds left before the deadline (bounds a wait at the rate gate)."""
        return max(0.0, self.policy.session_timeout - self.elapsed())

    def next_wait(self, answer: Answer, error: str | None = None) -> float | str:
        """Seconds to wait before the next attempt, or why there is none (the stop rule).

        ``error`` describes the answer when its own text would not (an odd 200)."""
        p = self.policy
        text = error or answer.error
        retry_after = answer.retry_after
        if retry_after is not None and over_cap(retry_after, p.backoff.retry_after_max):
            return (
                f"the API asked to wait {retry_after:.0f} s, more than retry_after_max "
                f"({p.backoff.retry_after_max:g} s): {text}"
            )
        if self.attempts >= p.max_attempts:
            return f"gave up after {self.attempts} attempts: {text}"
        wait = p.backoff.delay(self.attempts, retry_after, spread=answer.status == 429)
        if self.elapsed() + wait + p.request_timeout > p.session_timeout:
            return (
                f"session_timeout ({p.session_timeout:g} s) would pass before attempt "
                f"{self.attempts + 1}: {text}"
            )
        if answer.status == 429:  # the rate gate's business, bounded by the throttle breaker
            self.last_failure = "throttled"
            return wait
        timeout = answer.failure == "timeout"
        if not p.budget.take(timeout=timeout):
            return f"retry budget of the run spent: {text}"
        self.last_failure = answer.failure
        return wait

    def refund(self) -> None:
        """The session settled well: give its retries back to the run's budget (what the
        last one cost; a retry after a 429 cost nothing)."""
        paid = self.attempts > 1 and self.last_failure != "throttled"
        self.policy.budget.refund(retried=paid, timeout=self.last_failure == "timeout")
