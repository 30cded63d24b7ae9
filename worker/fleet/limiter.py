"""The org-wide rate limit, kept in Redis, layered over the per-process gate.

One Lua script (``gcra.lua``) holds a GCRA on the server's clock (``TIME``), so hosts with
drifting clocks agree. It is shared by every worker on the same org id and base URL
(`worker.fleet.connect.limiter_key`). The adaptive rules of the local gate carry over: a 429
seen by any worker pauses every worker until its ``Retry-After`` (``paused`` in the same hash,
read by the same script) and cuts the shared rate, at most once per cool-down, to a little
under what the server accepted; the rate then climbs back along the same cubic, computed from
server time in every grant, so the recovery is shared too and costs no extra round trip.

Cost: one EVALSHA for a tenth of a second's worth of grants. Per process, one task asks Redis,
for as many slots as there are waiters and at least that tenth of a second's worth; the
script reserves those less than 200 ms away, each waiter sleeps until its own slot, slots
reserved beyond the waiters are kept for the next ones (dropped once 5 ms late, and on a
429), and a slot further away is refused with the time to ask again, so a pause set by a 429
stops every worker within that look-ahead.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any

import structlog

from worker.fleet.lifeline import Lifeline
from worker.fleet.scripts import Lua
from worker.run.control import Clock
from worker.run.gate import RateGate, RateListener

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet.limiter")

_LUA = Lua(resources.files("worker.fleet").joinpath("gcra.lua").read_text(encoding="utf-8"))
_TTL_MS = 3_600_000  # an idle limiter forgets its state after an hour
_LOOKAHEAD_US = 200_000  # slots reserved at most this far ahead
_MAX_WANT = 64  # slots reserved in one round trip at most
_RESERVE_S = 0.1  # a round trip reserves this long's worth of slots, for later waiters too
_STALE_S = 0.005  # a spare slot this far in the past is dropped, not used as a burst


class SharedLimiter:
    """``await acquire()`` before every request; `throttled` on a 429. State lives in Redis."""

    def __init__(
        self,
        redis: Redis,
        lifeline: Lifeline,
        key: str,
        rate: float,
        *,
        burst: int = 1,
        max_pause: float = 60.0,
        plateau: float = 12.0,
        cooldown: float = 1.0,
        on_change: RateListener | None = None,
    ) -> None:
        self.key = key
        self.rate = rate
        self.round_trips = 0
        self.grants = 0
        self._ceiling = rate
        self._burst = max(1, burst)
        self._plateau = plateau
        self._cooldown = cooldown
        self._max_pause = max_pause
        self._lifeline = lifeline
        self._redis = redis
        self._waiters: deque[asyncio.Future[float]] = deque()
        self._spare: deque[float] = deque()  # slots reserved for no waiter yet (loop time)
        self._asker: asyncio.Task[None] | None = None
        self._on_change = on_change

    def _args(self, op: str, want: int = 1) -> list[Any]:
        return [op, self._ceiling, self._burst, self._plateau, _TTL_MS, _LOOKAHEAD_US, want]

    async def _eval(self, args: list[Any]) -> list[int]:
        self.round_trips += 1
        reply = [int(x) for x in await _LUA(self._redis, [self.key], args)]
        self._seen_rate(reply[1] / 1000)
        return reply

    async def acquire(self) -> None:
        """Wait for a slot of the org-wide limit (FIFO within this process)."""
        loop = asyncio.get_running_loop()
        if (spare := self._take_spare(loop.time())) is not None:
            self.grants += 1
            if spare > 0:
                await asyncio.sleep(spare)
            return
        slot: asyncio.Future[float] = loop.create_future()
        self._waiters.append(slot)
        if self._asker is None or self._asker.done():
            self._asker = loop.create_task(self._ask())
        wait = await slot
        self.grants += 1
        if wait > 0:  # the reserved slot is that far ahead
            await asyncio.sleep(wait)

    async def _ask(self) -> None:
        """The one task that asks Redis: for as many slots as there are waiters."""
        try:
            while self._waiters:
                want = min(max(len(self._waiters), math.ceil(self.rate * _RESERVE_S)), _MAX_WANT)
                reply = await self._lifeline.call(
                    "limiter",
                    lambda w=want: self._eval(self._args("acquire", w)),  # type: ignore[misc]
                )
                now = asyncio.get_running_loop().time()
                for wait_us in reply[2 : 2 + reply[0]]:
                    if not self._hand_out(wait_us / 1e6):
                        self._spare.append(now + wait_us / 1e6)
                if self._waiters:  # the look-ahead is full: the next batch in a while
                    wait = reply[2] / 1e6 if reply[0] == 0 else 0.0
                    await asyncio.sleep(min(max(wait, _RESERVE_S), 1.0))
        except BaseException as exc:  # Redis lost (or cancelled): every waiter learns it
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def _hand_out(self, wait: float) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter cancelled meanwhile: the slot goes to the next
                waiter.set_result(wait)
                return True
        return False

    def _take_spare(self, now: float) -> float | None:
        """The wait until the next spare slot, or None when there is none still fresh."""
        while self._spare:
            at = self._spare.popleft()
            if at >= now - _STALE_S:
                return at - now
        return None

    async def throttled(self, retry_after: float | None) -> None:
        """Tell the fleet: pause everyone, and lower the shared rate (once per cool-down)."""
        self._spare.clear()  # a pause set now stops these too
        ms = -1 if retry_after is None else round(retry_after * 1000)
        args = [*self._args("throttle"), ms, round(self._max_pause * 1000), self._cooldown]
        await self._lifeline.call("limiter", lambda: self._eval(args))

    async def aclose(self) -> None:
        if self._asker is not None:
            self._asker.cancel()
            await asyncio.gather(self._asker, return_exceptions=True)

    def _seen_rate(self, rate: float) -> None:
        if abs(rate - self.rate) < 0.01 * self.rate:
            return
        old, self.rate = self.rate, rate
        if self._on_change is not None:
            self._on_change(old, rate, "fleet throttled" if rate < old else "fleet recovering")


class FleetGate(RateGate):
    """The local gate (per-process pacing and pause) with the shared limiter on top.

    Throttle reports are sent to Redis by one background task, so `throttled` stays
    synchronous for the terminator; a report lost to an outage only delays the shared cut.
    """

    def __init__(
        self,
        shared: SharedLimiter,
        local_rate: float | None,
        *,
        burst: int | None = None,
        max_pause: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(local_rate, burst=burst, adaptive=False, max_pause=max_pause, clock=clock)
        self.shared = shared
        self._reports: asyncio.Queue[float | None] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float | None:
        return self.shared.rate

    def at_once(self) -> float | None:
        return None  # every grant asks the shared limiter, whatever the local rate

    async def acquire(self) -> float:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_throttles())
        sent = await super().acquire()
        await self.shared.acquire()
        return sent

    def throttled(self, retry_after: float | None, sent: float) -> None:
        super().throttled(retry_after, sent)
        self._reports.put_nowait(retry_after)

    async def aclose(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
            self._reporter = None
        await self.shared.aclose()
        await super().aclose()

    async def _report_throttles(self) -> None:
        while True:
            retry_after = await self._reports.get()
            try:
                await self.shared.throttled(retry_after)
            except Exception as exc:  # the lifeline gave up: the worker is stopping anyway
                log.warning("fleet.throttle_unreported", error=str(exc))
