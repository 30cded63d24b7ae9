"""The one rate limit that every attempt passes through, retries included.

``sent = await gate.acquire()`` before every HTTP attempt; then report what the answer
was, with that grant time: ``throttled(retry_after, sent)`` for a 429,
``overloaded(retry_after, sent)`` for a 5xx that carried ``Retry-After``, ``accepted(sent)``
for anything else. The grant time tells the controller which rate a request was sent at,
whatever order the answers come back in. What each signal does to the rate and
the fleet is ``worker.run.control``'s business.

Grants follow GCRA ("virtual scheduling"): the next grant is due one interval after the
previous one, and up to ``burst`` may be granted at once after a quiet spell (a twentieth
of a second's worth by default, so that a server's bucket of a tenth of a second always has
room). One task, the pump, grants; workers wait in a FIFO of futures that it resolves in
arrival order, and it sleeps until the exact moment the next grants are due (in batches of
at most two milliseconds' worth), so waiting costs no polling, except every 2 ms while a
hold, the slow start's full window or a spent limit's probe waits for answers (a report does
not wake the pump).

Time is the running loop's (``loop.time()``) unless a clock and a sleep are injected, so
tests run the gate on a fast-forwarded loop. asyncio-throttle, which the design first
named, is not used: it reads ``time.monotonic()`` itself and polls every
``retry_interval``, so it cannot follow an injected or fast-forwarded clock, and knowing
when its window has room needs its private ``_task_logs`` (see the commit that replaced it
for the measurements).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable

from worker.run.control import Change, Clock, RateController

RateListener = Callable[[float, float, str], None]
Sleep = Callable[[float], Awaitable[None]]
BURST_S = 0.05  # after a quiet spell, this long's worth of grants may go at once
_BATCH_S = 0.002  # grants due within this much of each other are granted in one wake-up
_HOLD_POLL_S = 0.002  # how often a hold (worker.run.control) is looked at again
_EPSILON = 1e-6  # below a microsecond, a wait is float rounding (a quantised clock never moves)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class RateGate:
    """Grants at the controlled rate, in arrival order. ``rate=None``: no limit."""

    controller: type[RateController] = RateController  # (a fleet's shares its state)

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int | None = None,
        adaptive: bool = True,
        max_pause: float = 60.0,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_change: RateListener | None = None,
    ) -> None:
        self._clock: Clock = clock or _loop_time
        self._sleep: Sleep = sleep or asyncio.sleep
        self._control = (
            self.controller(
                rate, clock=self._clock, max_pause=max_pause, fallback_pause=min(1.0, max_pause)
            )
            if rate
            else None
        )
        self._adaptive = adaptive
        if self._control is not None and not adaptive:
            self._control.start = None  # a fixed rate is the caller's to choose
        self._burst = burst
        self._on_change = on_change
        self._waiters: deque[asyncio.Future[float]] = deque()
        self._arrived = asyncio.Event()
        self._due = -math.inf  # when the next grant is due (GCRA's theoretical arrival time)
        self._pump_task: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float | None:
        """The granted rate now (requests/s), or None without a limit."""
        return self._control.rate if self._control else None

    def now(self) -> float:
        """The gate's clock: the time that ``acquire`` returns and reports carry."""
        return self._clock()

    @property
    def limit(self) -> float | None:
        """The accepted rate found at the last cut (requests/s); None before any."""
        return self._control.limit if self._control else None

    @property
    def holds(self) -> int:
        """Holds begun: grants waited for the answers measuring a 429 (control's ``_hold``)."""
        return self._control.holds if self._control else 0

    @property
    def pauses(self) -> int:
        """Pauses begun or extended: every request waited out a ``Retry-After``."""
        return self._control.pauses if self._control else 0

    @property
    def paused_until(self) -> float:
        """Until when (on the gate's clock) every worker is paused."""
        return self._control.pause_until if self._control else -math.inf

    def at_once(self) -> float | None:
        """The time of a grant that needs no wait (no limit: every attempt goes at once);
        None when the attempt must `acquire` its turn."""
        return self._clock() if self._control is None else None

    async def acquire(self) -> float:
        """Wait for this attempt's turn, FIFO among waiters; returns when it was granted."""
        if self._control is None:
            return self._clock()
        loop = asyncio.get_running_loop()
        if self._pump_task is None:
            self._pump_task = loop.create_task(self._pump())
        grant: asyncio.Future[float] = loop.create_future()
        self._waiters.append(grant)
        self._arrived.set()
        return await grant

    def throttled(self, retry_after: float | None, sent: float) -> None:
        """Report a 429 (``retry_after`` in seconds, None when the server gave none) to the
        request granted at ``sent``."""
        if self._control is not None:
            self._apply(self._control.on_throttled(retry_after, sent))

    def overloaded(self, retry_after: float | None, sent: float) -> None:
        """Report a 5xx that carried ``Retry-After``."""
        if self._control is not None:
            self._apply(self._control.on_overloaded(retry_after, sent))

    def accepted(self, sent: float) -> None:
        """Report any other answer, a transport failure included."""
        if self._control is not None:
            self._apply(self._control.on_accepted(sent))

    async def aclose(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None

    def _apply(self, change: Change | None) -> None:
        if change is None or self._control is None:
            return
        if not self._adaptive:  # the pause still holds; the rate stays as configured
            self._control.rate = change.old
            return
        if self._on_change is not None:
            self._on_change(change.old, change.new, change.reason)

    def _tolerance(self, rate: float) -> int:
        """How many grants may go at once after a quiet spell."""
        window = max(1, round(rate * BURST_S))
        return min(window, self._burst) if self._burst else window

    async def _pump(self) -> None:
        """The only granter: one grant per slot, to the oldest waiter still waiting."""
        control = self._control
        assert control is not None
        while True:
            while not self._waiters:
                self._arrived.clear()
                await self._arrived.wait()
            now = self._clock()
            if (wait := control.pause_until - now) > _EPSILON:
                # a hold ends as soon as its sample is decided: look again every few ms
                holding = control.holding
                await self._sleep(min(wait, _HOLD_POLL_S) if holding else wait)
                if holding:  # a hold is no quiet spell: no burst after it
                    self._no_burst(control.rate)
                continue
            if not control.room(now):  # the slow start's window is full: an answer frees it
                await self._sleep(_HOLD_POLL_S)
                self._no_burst(control.rate)  # nor is a full window
                continue
            if self._due == -math.inf:  # the first grant: paced from the start, no burst
                self._no_burst(control.rate)
            interval = 1.0 / control.rate
            tolerance = self._tolerance(control.rate)
            if (early := self._due - (tolerance - 1) * interval - now) > _EPSILON:
                batch = min(len(self._waiters), tolerance, max(1, int(_BATCH_S / interval)))
                await self._sleep(early + (batch - 1) * interval)
                continue
            self._due = max(self._due, now) + interval
            self._grant_one()

    def _no_burst(self, rate: float) -> None:
        """No credit for the time that just passed: the next grants go one interval apart
        (GCRA grants ``tolerance`` at once to a schedule that has fallen behind)."""
        now, interval = self._clock(), 1.0 / rate
        self._due = max(self._due, now + (self._tolerance(rate) - 1) * interval)

    def _grant_one(self) -> None:
        while self._waiters:
            grant = self._waiters.popleft()
            if not grant.done():  # a waiter cancelled meanwhile has no use for it
                now = self._clock()
                grant.set_result(now)
                self._granted(now)
                return

    def _granted(self, now: float) -> None:  # (a fleet's gate tells it once the fleet has)
        assert self._control is not None
        self._control.granted(now)
