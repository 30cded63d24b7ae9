"""Requests in flight at most (``--concurrency``): a fixed number, or ``auto``.

The rate gate sets how many requests go out a second; the slots only have to be enough that
the gate, not the round trip, is what holds a run back. A worker sustains about ``slots ÷
answer time`` requests a second (Little's law), so a fixed 8 slots caps a run at 160/s when
answers take 50 ms, whatever ``--rate`` says. ``auto`` therefore keeps

    2 × rate × mean answer time  +  the gate's burst (a twentieth of a second's worth)

slots, between 8 and 256: twice what the rate needs at the answer times seen, so a spell of
slow answers or of requests hanging until ``--timeout`` does not starve the gate. The mean is
a moving one (each answer weighs 1/32) that starts at the first answer's time. Before it,
a quarter of a second is assumed, or the mean age of the requests out if that is longer:
each of them will have taken at least its age, so with answers in 2 s the slots have grown
to what the rate needs before the first answer (a guess alone would hold a run at
``--rate 40`` to 11/s until then). With no rate ceiling (``--rate 0``) nothing bounds the
load but the slots: ``auto`` is then 8.

A session waiting out a backoff or a ``Retry-After`` hands its slot on (``release``, then
``acquire`` before its retry). Slots are granted in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

from worker.run.gate import BURST_S
from worker.settings import AUTO_CONCURRENCY_MAX

FLOOR = 8  # auto never keeps fewer (and is this without a rate ceiling)
CEILING = AUTO_CONCURRENCY_MAX  # nor more: the connections one worker opens at most
FIRST_GUESS_S = 0.25  # the answer time assumed before the first answer, at least
WEIGHT = 1 / 32  # of each answer in the moving mean
HEADROOM = 2.0  # slots kept per slot the rate needs at the mean answer time

RateNow = Callable[[], float | None]
Clock = Callable[[], float]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def needed(rate: float | None, answer_s: float) -> int:
    """The slots ``auto`` keeps for ``rate`` requests/s answered in ``answer_s`` on average."""
    if not rate:
        return FLOOR
    want = math.ceil(HEADROOM * rate * answer_s + max(1.0, rate * BURST_S))
    return max(FLOOR, min(CEILING, want))


class Slots:
    """A semaphore whose size can change: fixed (``Slots(n)``), or ``Slots.auto(rate)``
    which resizes itself on each answer (``answered``) from the gate's rate now."""

    def __init__(
        self, limit: int, *, rate: RateNow | None = None, clock: Clock = _loop_time
    ) -> None:
        self._limit = limit
        self._held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rate = rate  # None: fixed
        self._clock = clock
        self._mean = FIRST_GUESS_S
        self._guessing = True  # no answer yet
        self._out = 0  # requests out, and the sum of their send times, until the first answer
        self._out_sum = 0.0
        self._timer: asyncio.TimerHandle | None = None  # when the requests out want more

    @classmethod
    def auto(cls, rate: RateNow, clock: Clock = _loop_time) -> Slots:
        """``clock``: the one the send times given to ``sending`` and ``answered`` are on."""
        return cls(needed(rate(), FIRST_GUESS_S), rate=rate, clock=clock)

    @property
    def limit(self) -> int:
        """The slots there are now."""
        return self._limit

    @property
    def answer_time(self) -> float:
        """The moving mean of the answer times seen (auto), in seconds."""
        return self._mean

    @property
    def held(self) -> int:
        return self._held

    @property
    def maximum(self) -> int:
        """The most there can ever be: the size of the connection pool."""
        return self._limit if self._rate is None else CEILING

    def locked(self) -> bool:
        """True when ``acquire`` would wait."""
        return self._held >= self._limit  # free slots never leave anyone waiting (_wake)

    async def acquire(self) -> None:
        if not self.locked():
            self._held += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._arm()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, but its taker is gone: hand it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self._held -= 1
        self._wake()

    def sending(self, sent: float) -> None:
        """A request goes out (sent at ``sent``); ``answered`` must follow, whatever comes."""
        if self._rate is not None and self._guessing:
            self._out += 1
            self._out_sum += sent
            if self._waiters:
                self._arm()

    def answered(self, sent: float, now: float | None = None) -> None:
        """The request sent at ``sent`` was answered (or failed, or was given up) at ``now``
        (default: the slots' clock now; a fixed size never reads it)."""
        if self._rate is None:
            return
        seconds = max(0.0, (self._clock() if now is None else now) - sent)
        if self._guessing:  # the first answer replaces the guess: it is no measurement
            self._guessing, self._mean = False, seconds
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._mean += WEIGHT * (seconds - self._mean)
        self._limit = needed(self._rate(), self._mean)
        self._wake()

    def _answer_time(self) -> float:
        """The mean answer time to size on: the moving mean, or before any answer the
        guess or the mean age of the requests out, whichever is longer."""
        if not self._guessing or not self._out:
            return self._mean
        return max(self._mean, self._clock() - self._out_sum / self._out)

    def _arm(self) -> None:
        """Before any answer, with sessions waiting: wake them when the requests out will
        have been out long enough to want one more slot (Little's law)."""
        if self._timer is not None or not self._guessing or not self._out:
            return
        if self._limit >= CEILING:
            return
        rate = self._rate() if self._rate is not None else None
        if not rate:
            return
        # needed(rate, age) = ceil(HEADROOM x rate x age + burst) reaches limit + 1 at:
        age = (self._limit + 1 - max(1.0, rate * BURST_S)) / (HEADROOM * rate)
        due = self._out_sum / self._out + age - self._clock()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due), self._grown)

    def _grown(self) -> None:
        self._timer = None
        if not self._guessing:
            return
        before = self._limit
        self._limit = needed(self._rate() if self._rate else None, self._answer_time())
        self._wake()
        if self._waiters and self._limit > before:  # else the next send or answer re-arms
            self._arm()

    def _wake(self) -> None:
        while self._waiters and self._held < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                waiter.set_result(None)
