"""The simulator's rate limit on an injected clock: a token bucket, a fixed window or a
sliding log (servers count in each of these ways), and Retry-After values."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from email.utils import formatdate


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` banked; starts full.

    ``take()`` spends a token and returns 0.0, or returns the seconds until a token
    will be available and spends nothing (a throttled request does not refill slower).
    """

    __slots__ = ("_burst", "_clock", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def set_rate(self, rate: float, burst: int) -> None:
        """A new limit from now on; the tokens banked so far are kept (up to the new burst)."""
        self._refill(self._clock())
        self._rate, self._burst = rate, float(burst)
        self._tokens = min(self._tokens, self._burst)

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        self._updated = now
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)

    def take(self) -> float:
        self._refill(self._clock())
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class FixedWindow:
    """At most ``rate`` requests in each whole second of the clock (a counter that resets
    at every second's start, as many gateways keep); ``take`` as ``TokenBucket.take``."""

    __slots__ = ("_clock", "_count", "_limit", "_second")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._limit = rate
        self._second, self._count = -math.inf, 0

    def set_rate(self, rate: float, burst: int) -> None:
        self._limit = rate

    def take(self) -> float:
        now = self._clock()
        if now - self._second >= 1.0:
            self._second, self._count = math.floor(now), 0
        if self._count + 1 > self._limit:
            return self._second + 1.0 - now
        self._count += 1
        return 0.0


class SlidingLog:
    """At most ``rate`` requests accepted in any one second (a log of their times)."""

    __slots__ = ("_clock", "_limit", "_log")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._limit = rate
        self._log: deque[float] = deque()

    def set_rate(self, rate: float, burst: int) -> None:
        self._limit = rate

    def take(self) -> float:
        now, log = self._clock(), self._log
        while log and log[0] <= now - 1.0:
            log.popleft()
        if len(log) + 1 > self._limit:
            return log[0] + 1.0 - now
        log.append(now)
        return 0.0


Limiter = TokenBucket | FixedWindow | SlidingLog
LIMITERS: dict[str, type[Limiter]] = {
    "bucket": TokenBucket,
    "window": FixedWindow,
    "sliding": SlidingLog,
}


class ScheduledLimit:
    """A limit (``kind``: see ``LIMITERS``) that follows ``schedule``: ((seconds since the
    first request, requests/s), ...), the first at 0 s. Without a schedule, the one limit."""

    __slots__ = ("_bucket", "_burst_for", "_clock", "_next", "_schedule", "_started")

    def __init__(
        self,
        schedule: tuple[tuple[float, float], ...],
        burst_for: Callable[[float], int],
        clock: Callable[[], float],
        kind: str = "bucket",
    ) -> None:
        self._schedule = schedule
        self._burst_for = burst_for
        self._clock = clock
        first = schedule[0][1]
        self._bucket: Limiter = LIMITERS[kind](first, burst_for(first), clock)
        self._next = 1
        self._started: float | None = None

    def take(self) -> float:
        """As ``TokenBucket.take``, under the limit in force now."""
        now = self._clock()
        if self._started is None:
            self._started = now
        while (
            self._next < len(self._schedule)
            and now - self._started >= self._schedule[self._next][0]
        ):
            limit = self._schedule[self._next][1]
            self._bucket.set_rate(limit, self._burst_for(limit))
            self._next += 1
        return self._bucket.take()


class RetryAfter:
    """Renders the Retry-After header of a 429/503 in the configured mode.

    ``seconds``: whole seconds, rounded up, at least 1; ``http-date``: the wall-clock
    moment as an IMF-fixdate; ``absent``: no header; ``mixed``: those three in turn.
    """

    __slots__ = ("_mode", "_now", "_turn")

    _CYCLE = ("seconds", "http-date", "absent")

    def __init__(self, mode: str, now: Callable[[], float]) -> None:
        self._mode = mode
        self._now = now
        self._turn = 0

    def header(self, wait_s: float) -> dict[str, str]:
        mode = self._mode
        if mode == "mixed":
            mode = self._CYCLE[self._turn % len(self._CYCLE)]
            self._turn += 1
        return self.render(mode, wait_s)

    def render(self, mode: str, wait_s: float) -> dict[str, str]:
        """The header in ``mode`` (``seconds``, ``http-date`` or ``absent``)."""
        seconds = max(1, math.ceil(wait_s))
        if mode == "seconds":
            return {"Retry-After": str(seconds)}
        if mode == "http-date":
            # HTTP-dates have whole-second resolution: round up so the client never comes early.
            return {"Retry-After": formatdate(math.ceil(self._now()) + seconds, usegmt=True)}
        return {}
