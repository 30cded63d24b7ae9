"""The one rate limit that every attempt passes through, retries included.

asyncio-throttle is a sliding-window log: it never grants more than ``rate_limit`` in any
``period``, but it polls, grants a whole period's quota in one burst, and is not fair
between waiters. So exactly one task, the pump, talks to it, with a period of a twentieth
of a second (bursts of ``rate/20`` at most, so that a server's bucket of a tenth of a
second always has room for them). Workers wait in a FIFO of futures that the pump resolves
one per slot: grants come smooth and strictly in arrival order (an ``asyncio.Queue`` of
permits would let a newcomer barge past a woken waiter), nothing is banked while nobody
waits, and polling costs one task, not ``concurrency`` of them.

On top sits adaptive control (``RateController``): a 429 (or a 503 that says when to come
back) pauses every worker until ``Retry-After`` and lowers the granted rate, at most once
per cool-down, towards the throughput the server actually accepted; clean answers raise the
rate again along a cubic curve: fast while far below the rate that was throttled, slowly
near it, then probing beyond it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from asyncio_throttle.throttler import Throttler

Clock = Callable[[], float]
RateListener = Callable[[float, float, str], None]


@dataclass(slots=True)
class RateController:
    """CUBIC-style control of the granted rate. Pure logic; the clock is injected.

    A throttle sets ``w_max`` a little under the rate the server accepted before it and
    restarts at ``beta * w_max``; a throttle in the first moments, before anything could be
    measured, halves the rate instead. The rate then follows a cubic from where it
    restarted: a quick, concave climb back to ``w_max`` over ``plateau`` seconds, a plateau
    there, and a probe beyond, slow then faster, so that throttles stay rare while a limit
    that was lifted is found again.
    """

    ceiling: float
    clock: Clock = time.monotonic
    beta: float = 0.95
    margin: float = 0.97
    plateau: float = 12.0
    cooldown: float = 1.0
    fallback_pause: float = 1.0
    max_pause: float = 60.0
    rate: float = 0.0
    pause_until: float = 0.0
    _w_max: float = 0.0
    _start: float = 0.0  # the rate the cubic restarted from
    _last_decrease: float = float("-inf")
    _last_update: float = float("-inf")
    _accepted: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rate = self.rate or self.ceiling
        self._w_max = self._start = self.ceiling

    @property
    def floor(self) -> float:
        return max(0.1, self.ceiling / 100)

    def on_throttled(self, retry_after: float | None) -> float | None:
        """A 429: pause everyone, lower the rate (once per cool-down). Returns the new rate."""
        now = self.clock()
        accepted = self._accepted_rate(now)  # before the pause below moves the window
        pause = self.fallback_pause if retry_after is None else retry_after
        self.pause_until = max(self.pause_until, now + min(pause, self.max_pause))
        if now - self._last_decrease < self.cooldown:
            return None
        self._last_decrease = self._last_update = now
        self._accepted.clear()
        if accepted is None:  # nothing measured yet: halve, hold there, then probe
            self.rate = self._start = self._w_max = max(self.floor, self.margin * self.rate / 2)
            return self.rate
        # plateau a little under what the server took (its burst inflates the measure)
        self._w_max = max(self.floor, self.margin * min(self.rate, accepted))
        self.rate = self._start = max(self.floor, self.beta * self._w_max)
        return self.rate

    def on_accepted(self) -> float | None:
        """An answer that was not a throttle. Returns the new rate when it changed."""
        now = self.clock()
        self._accepted.append(now)
        if self.rate >= self.ceiling or now - self._last_update < 0.25:
            return None
        self._last_update = now
        t = max(0.0, now - max(self._last_decrease, self.pause_until))
        # below w_max: from the restart rate back to w_max in ``plateau`` seconds; beyond:
        # a probe that adds 5% of w_max in half a plateau, 40% in a whole one
        gap = self._w_max - self._start if t < self.plateau else 0.4 * self._w_max
        target = self._w_max + gap * ((t - self.plateau) / self.plateau) ** 3
        new = min(self.ceiling, max(self.rate, target))
        if new < self.ceiling and new - self.rate < 0.01 * self.rate:
            return None  # changes under 1% are not worth a reconfiguration and a log line
        self.rate = new
        return new

    def _accepted_rate(self, now: float, window: float = 2.0) -> float | None:
        """Answers accepted per second over the last ``window`` of sending, if measurable.

        Measured from the first answer after the last pause (or of the run), so neither a
        pause nor the start of the run dilutes it.
        """
        since = max(now - window, self.pause_until)
        while self._accepted and self._accepted[0] < since:
            self._accepted.popleft()
        if len(self._accepted) < 10:
            return None
        span = now - self._accepted[0]
        return len(self._accepted) / span if span >= 0.25 else None


class RateGate:
    """``await gate.acquire()`` before every HTTP attempt. ``rate=None``: no limit."""

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int | None = None,
        adaptive: bool = True,
        max_pause: float = 60.0,
        clock: Clock = time.monotonic,
        on_change: RateListener | None = None,
    ) -> None:
        self._control = (
            RateController(
                rate, clock=clock, max_pause=max_pause, fallback_pause=min(1.0, max_pause)
            )
            if rate
            else None
        )
        self._adaptive = adaptive
        self._burst = burst
        self._clock = clock
        self._on_change = on_change
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._arrived = asyncio.Event()
        self._throttler = Throttler(rate_limit=1, period=1.0)
        self._pump_task: asyncio.Task[None] | None = None
        if self._control:
            self._configure(self._control.rate)

    @property
    def rate(self) -> float | None:
        return self._control.rate if self._control else None

    async def acquire(self) -> None:
        if self._control is None:
            return
        loop = asyncio.get_running_loop()
        if self._pump_task is None:
            self._pump_task = loop.create_task(self._pump())
        grant: asyncio.Future[None] = loop.create_future()
        self._waiters.append(grant)
        self._arrived.set()
        await grant

    def throttled(self, retry_after: float | None) -> None:
        """Report a 429 (or a 503 with Retry-After)."""
        if self._control is None:
            return
        old = self._control.rate
        new = self._control.on_throttled(retry_after)
        if new is not None and self._adaptive:
            self._changed(old, new, "throttled")

    def accepted(self) -> None:
        """Report an answer that was not a throttle."""
        if self._control is None or not self._adaptive:
            return
        old = self._control.rate
        new = self._control.on_accepted()
        if new is not None:
            self._changed(old, new, "recovering")

    async def aclose(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None

    def _changed(self, old: float, new: float, reason: str) -> None:
        self._configure(new)
        if self._on_change is not None:
            self._on_change(old, new, reason)

    def _configure(self, rate: float) -> None:
        window = max(1, round(rate * 0.05))
        count = min(window, self._burst) if self._burst else window
        self._throttler.rate_limit = count
        self._throttler.period = count / rate
        self._throttler.retry_interval = max(0.001, min(0.01, count / rate / 50))

    def _slot_frees_in(self) -> float:
        """Seconds until the throttler's window has room: sleeping that long first turns its
        polling (every ``retry_interval``, CPU for nothing at low rates) into one timer.
        Reads the library's one piece of state, its log of grant times (time.monotonic)."""
        log: deque[float] = self._throttler._task_logs
        if len(log) < self._throttler.rate_limit:
            return 0.0
        return float(log[0] + self._throttler.period - time.monotonic())

    async def _pump(self) -> None:
        """The only caller of the throttler: one grant per slot, to the oldest waiter."""
        control = self._control
        assert control is not None
        while True:
            while not self._waiters:
                self._arrived.clear()
                await self._arrived.wait()
            while (wait := control.pause_until - self._clock()) > 0:
                await asyncio.sleep(wait)
            if (wait := self._slot_frees_in()) > 0:
                await asyncio.sleep(wait)
            await self._throttler.acquire()  # type: ignore[no-untyped-call]
            while self._waiters:
                grant = self._waiters.popleft()
                if not grant.done():  # a waiter cancelled meanwhile has no use for it
                    grant.set_result(None)
                    break
