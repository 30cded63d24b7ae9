"""The org-wide rate limit, kept in Redis, under the adaptive control of each worker.

One Lua script (``gcra.lua``) holds a GCRA at ``--org-rate`` on the server's clock (``TIME``),
so hosts with drifting clocks agree. It is shared by every worker on the same org id and base
URL (`worker.fleet.connect.limiter_key`): the fleet never sends faster than that, whatever
each worker's controller decides. The adaptive control is the one of a single process
(`worker.run.control`, through the gate of `FleetGate`), run by each worker on its own
grants and answers: a 429 arms a sample of that worker's later grants, and the cut goes to
what the server accepted from that worker, so the workers' rates add up to the limit found;
an isolated 429 cuts nothing. A pause the controller decides (a wave of 429s far over the
limit, or an overload) is shared: written to Redis (``paused``), it stops every worker's
grants until it ends.

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
    """``await acquire()`` before every request; `pause` for everyone. State lives in Redis."""

    def __init__(
        self,
        redis: Redis,
        lifeline: Lifeline,
        key: str,
        rate: float,
        *,
        burst: int = 1,
    ) -> None:
        self.key = key
        self.rate = rate
        self.round_trips = 0
        self.grants = 0
        self._burst = max(1, burst)
        self._lifeline = lifeline
        self._redis = redis
        self._waiters: deque[asyncio.Future[float]] = deque()
        self._spare: deque[float] = deque()  # slots reserved for no waiter yet (loop time)
        self._asker: asyncio.Task[None] | None = None

    def _args(self, op: str, want: int = 1) -> list[Any]:
        return [op, self.rate, self._burst, _TTL_MS, _LOOKAHEAD_US, want]

    async def _eval(self, args: list[Any]) -> list[int]:
        self.round_trips += 1
        return [int(x) for x in await _LUA(self._redis, [self.key], args)]

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
            ahead = math.ceil(self.rate * _RESERVE_S)
            while self._waiters:
                want = min(max(len(self._waiters), ahead), _MAX_WANT)
                reply = await self._lifeline.call(
                    "limiter",
                    lambda w=want: self._eval(self._args("acquire", w)),  # type: ignore[misc]
                )
                # short of slots: the others want them too, so none are kept spare here
                ahead = 0 if reply[0] < want else math.ceil(self.rate * _RESERVE_S)
                now = asyncio.get_running_loop().time()
                for wait_us in reply[1 : 1 + reply[0]]:
                    if not self._hand_out(wait_us / 1e6):
                        self._spare.append(now + wait_us / 1e6)
                if self._waiters:  # the look-ahead is full: the next batch in a while
                    wait = reply[1] / 1e6 if reply[0] == 0 else 0.0
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

    async def pause(self, seconds: float) -> None:
        """Every worker waits ``seconds`` from now (Redis's clock) before its next grant."""
        self._spare.clear()  # a pause set now stops these too
        args = [*self._args("pause"), round(seconds * 1000)]
        await self._lifeline.call("limiter", lambda: self._eval(args))

    async def aclose(self) -> None:
        if self._asker is not None:
            self._asker.cancel()
            await asyncio.gather(self._asker, return_exceptions=True)


class FleetGate(RateGate):
    """The gate of one process (its controller, pacing and pauses) with the shared limit on
    top. A pause the controller decides is sent to Redis by one background task, so the
    reports stay synchronous for the terminator; one lost to an outage pauses this worker
    alone."""

    def __init__(
        self,
        shared: SharedLimiter,
        ceiling: float | None,
        *,
        adaptive: bool = True,
        burst: int | None = None,
        max_pause: float = 60.0,
        clock: Clock | None = None,
        on_change: RateListener | None = None,
    ) -> None:
        super().__init__(
            ceiling,
            burst=burst,
            adaptive=adaptive,
            max_pause=max_pause,
            clock=clock,
            on_change=on_change,
        )
        self.shared = shared
        self._reports: asyncio.Queue[float] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None

    def at_once(self) -> float | None:
        return None  # every grant asks the shared limiter, whatever the local rate

    async def acquire(self) -> float:
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report_pauses())
        sent = await super().acquire()
        await self.shared.acquire()
        return sent

    def throttled(self, retry_after: float | None, sent: float) -> None:
        before = self.paused_until
        super().throttled(retry_after, sent)
        self._share_pause(before)

    def overloaded(self, retry_after: float | None, sent: float) -> None:
        before = self.paused_until
        super().overloaded(retry_after, sent)
        self._share_pause(before)

    def _share_pause(self, before: float) -> None:
        """A pause the controller just decided (not a hold, which waits for this worker's
        own answers) goes to every worker."""
        control = self._control
        if control is None or control.holding or control.pause_until <= before:
            return
        if (left := control.pause_until - self.now()) > 0:
            self._reports.put_nowait(left)

    async def aclose(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
            self._reporter = None
        await self.shared.aclose()
        await super().aclose()

    async def _report_pauses(self) -> None:
        while True:
            seconds = await self._reports.get()
            try:
                await self.shared.pause(seconds)
            except Exception as exc:  # the lifeline gave up: the worker is stopping anyway
                log.warning("fleet.pause_unreported", error=str(exc))
