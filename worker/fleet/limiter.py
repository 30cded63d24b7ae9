"""The org-wide rate limit, kept in Redis: one rate controller for the fleet, two stores.

One Lua script (``gcra.lua``) holds a GCRA on the server's clock (``TIME``), so hosts with
drifting clocks agree. It is shared by every worker on the same org id and base URL
(`worker.fleet.connect.limiter_key`), and paces the fleet at the rate of its one adaptive
controller, never above ``--org-rate``. That controller is the one of a single process
(`worker.run.control`, through the gate of `FleetGate`) with its state in Redis: the rate,
the limit found, the generation of cuts and when the last was made. Every worker runs it on
its own grants and answers, scaled to the fleet by its share of the fleet's grants (a 429
arms a sample of that worker's later grants; what the server accepted of them, ÷ the
worker's share, is what it accepted of the fleet), and each decision is written to Redis
with the generation it was made in: the first cut of a wave opens the next generation, and
takes effect once the slots reserved at the old rate have gone; the other workers' measures
of the same wave (within half a second) make the cut their mean; a later one is refused (it
was decided on answers sent at an old rate, as one process drops answers to requests granted
before its last cut). A probe raises the rate of its own generation, and none goes while a
worker measures a 429. Every reply of the script carries the state, and each worker adopts
it (`worker.fleet.gate`). A pause the controller decides (a wave of 429s far over the limit,
or an overload) is shared too: written to Redis (``paused``), it stops every worker's grants
until it ends.

Cost: one EVALSHA for a tenth of a second's worth of grants. Per process, one task asks Redis,
for as many slots as there are waiters and at least its share of that tenth of a second
(none in its first calls, which measure the share); the
script reserves those less than 200 ms away, each waiter sleeps until its own slot, slots
reserved beyond the waiters are kept for the next ones (dropped once 5 ms late, at a cut,
and at a pause), and a slot further away is refused with the time to ask again, so a pause
set by a 429 stops every worker within that look-ahead.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from worker.fleet.lifeline import Lifeline
from worker.fleet.scripts import Lua

if TYPE_CHECKING:
    from redis.asyncio import Redis

_LUA = Lua(resources.files("worker.fleet").joinpath("gcra.lua").read_text(encoding="utf-8"))
_TTL_MS = 3_600_000  # an idle limiter forgets its state after an hour
_LOOKAHEAD_US = 200_000  # slots reserved at most this far ahead
_MAX_WANT = 64  # slots reserved in one round trip at most
_RESERVE_S = 0.1  # a round trip reserves this long's worth of slots, for later waiters too
_STALE_S = 0.005  # a spare slot this far in the past is dropped, not used as a burst
_SHARE_S = 1.0  # a worker's share of the fleet's grants: over this long
_HEAD = 6  # the controller's state that begins every reply of the script


@dataclass(frozen=True, slots=True)
class FleetState:
    """The fleet's controller as Redis holds it (see ``gcra.lua``)."""

    generation: int  # cuts so far
    rate: float | None  # requests/s; None: none decided yet (the ceiling)
    limit: float | None  # found at the last cut
    cut_age: float  # seconds since the last cut (negative: it takes effect later, gcra.lua)
    version: int  # writes so far


def _state(reply: list[int]) -> FleetState:
    rate, limit = reply[2] / 1000 or None, reply[3] / 1000 or None
    return FleetState(reply[1], rate, limit, reply[4] / 1e6, reply[5])


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
        self.on_state: Callable[[FleetState], None] | None = None  # each reply's state
        self.state: FleetState | None = None  # the last reply's
        # (loop time, the fleet's grants so far, this worker's): its share over _SHARE_S
        self._counts: deque[tuple[float, int, int]] = deque()
        self._reserved = 0  # slots this worker reserved

    def _args(self, op: str, want: int = 1) -> list[Any]:
        return [op, self.rate, self._burst, _TTL_MS, _LOOKAHEAD_US, want]

    async def _eval(self, args: list[Any]) -> list[int]:
        self.round_trips += 1
        reply = [int(x) for x in await _LUA(self._redis, [self.key], args)]
        if args[0] == "acquire" and reply[_HEAD] > 0:
            self._reserved += reply[_HEAD]
            now = asyncio.get_running_loop().time()
            if not self._counts:  # before this reply: the fleet's count less these slots
                self._counts.append((now, reply[0] - reply[_HEAD], 0))
            self._counts.append((now, reply[0], self._reserved))
            while len(self._counts) > 2 and self._counts[1][0] < now - _SHARE_S:
                self._counts.popleft()
        self.state = _state(reply)
        if self.on_state is not None:
            self.on_state(self.state)
        return reply[_HEAD:]

    def share(self) -> float:
        """This worker's share of the slots the fleet reserved over the last second or so
        (1 before it knows, and alone)."""
        if len(self._counts) < 2:
            return 1.0
        (_, fleet0, own0), (_, fleet1, own1) = self._counts[0], self._counts[-1]
        return min(1.0, max(0.01, (own1 - own0) / max(1, fleet1 - fleet0)))

    async def decide(self, change: str, generation: int, rate: float, limit: float) -> bool:
        """Write a decision of this worker's controller ("cut", "probe", or "measure": it
        measures a 429) made in ``generation``; False when it was refused (a generation gone
        by, or a probe while a worker measures)."""
        args = [*self._args("decide"), change, generation, rate, limit]
        reply = await self._lifeline.call("limiter", lambda: self._eval(args))
        return reply[0] == 1

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
            ahead = self._ahead()
            while self._waiters:
                want = min(max(len(self._waiters), ahead), _MAX_WANT)
                reply = await self._lifeline.call(
                    "limiter",
                    lambda w=want: self._eval(self._args("acquire", w)),  # type: ignore[misc]
                )
                # short of slots: the others want them too, so none are kept spare here
                ahead = 0 if reply[0] < want else self._ahead()
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

    def _ahead(self) -> int:
        """Slots to reserve at least: this worker's share of a tenth of a second at the
        fleet's rate (reserved slots go at the rate they were reserved at, after a cut too);
        none in its first few calls, whose replies measure that share."""
        if len(self._counts) < 4:  # the share not known yet: small reservations tell it
            return 0
        state = self.state
        rate = min(self.rate, state.rate) if state is not None and state.rate else self.rate
        return math.ceil(rate * _RESERVE_S * self.share())

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

    def drop_spare(self) -> None:
        """Forget the slots reserved for no waiter yet (a cut: they were at the old rate)."""
        self._spare.clear()

    async def pause(self, seconds: float) -> None:
        """Every worker waits ``seconds`` from now (Redis's clock) before its next grant."""
        self._spare.clear()  # a pause set now stops these too
        args = [*self._args("pause"), round(seconds * 1000)]
        await self._lifeline.call("limiter", lambda: self._eval(args))

    async def aclose(self) -> None:
        if self._asker is not None:
            self._asker.cancel()
            await asyncio.gather(self._asker, return_exceptions=True)
