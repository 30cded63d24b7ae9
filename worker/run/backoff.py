"""How long to wait before the next attempt: full-jitter backoff, ``Retry-After``, a retry budget.
(The header itself is read by ``worker.devin.retry_after``.)

Full jitter (AWS, "Exponential Backoff and Jitter"): ``uniform(0, min(cap, base * 2**n))``.
``Retry-After`` wins over the formula when the server sent one; a little jitter is added so
that workers paused together do not all come back in the same millisecond.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays between attempts. ``base=0`` makes every wait zero (tests)."""

    base: float = 0.1
    cap: float = 5.0
    retry_after_max: float = 120.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None, spread: bool = True) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based). A Retry-After
        is waited with a little jitter when ``spread`` (a wave of 429s must not come back
        in one instant), else as it is (a 5xx's: each session's came at its own time)."""
        if retry_after is not None:
            wanted = min(max(retry_after, 0.0), self.retry_after_max)
            if not (spread and self.base):
                return wanted
            return wanted + self.rng.uniform(0.0, 0.1 * wanted + 0.05)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


@dataclass(slots=True)
class RetryBudget:
    """A run-wide allowance of retries, in the manner of botocore's retry quota.

    Each retry costs tokens (a timeout costs more: it held a connection for long); each
    session that succeeds on its first attempt gives one back. When the budget is spent no
    session is retried any more, so a broken API does not get hammered by retries.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    available: int = -1

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.capacity

    def take(self, *, timeout: bool = False) -> bool:
        cost = self.timeout_cost if timeout else self.retry_cost
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def refund(self, *, retried: bool = False, timeout: bool = False) -> None:
        """A session succeeded: give back 1, or what its last retry cost when it was retried."""
        amount = (self.timeout_cost if timeout else self.retry_cost) if retried else 1
        self.available = min(self.capacity, self.available + amount)
