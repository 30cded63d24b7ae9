"""RetryPolicy's stop rule and the throttle breaker: pure logic on a fake clock."""

from __future__ import annotations

import random
import statistics

import pytest

from worker.devin.answer import Answer
from worker.run.backoff import Backoff, RetryBudget
from worker.run.retry import RetryPolicy, ThrottleBreaker, over_cap


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: object) -> RetryPolicy:
    values: dict[str, object] = {
        "max_attempts": 3,
        "session_timeout": 100.0,
        "request_timeout": 10.0,
        "backoff": Backoff(base=1.0, cap=8.0, retry_after_max=60.0, rng=random.Random(7)),
        "budget": RetryBudget(capacity=100, retry_cost=5, timeout_cost=10),
        "clock": clock,
    }
    values.update(kw)
    return RetryPolicy(**values)  # type: ignore[arg-type]


FAIL = Answer(503)


def test_full_jitter_is_uniform_over_zero_to_the_ceiling() -> None:
    backoff = Backoff(base=0.5, cap=4.0, rng=random.Random(3))
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 4.0)]:
        delays = [backoff.delay(attempt) for _ in range(4000)]
        assert 0 <= min(delays) < 0.02 * ceiling and ceiling * 0.98 < max(delays) <= ceiling
        # uniform: mean half the ceiling, a quarter of them under a quarter of it
        assert statistics.fmean(delays) == pytest.approx(ceiling / 2, rel=0.05)
        below = sum(d < ceiling / 4 for d in delays) / len(delays)
        assert below == pytest.approx(0.25, abs=0.03)


def test_retry_after_is_waited_with_a_little_jitter_and_cut_to_the_cap() -> None:
    backoff = Backoff(base=0.5, retry_after_max=10.0, rng=random.Random(4))
    waits = [backoff.delay(1, retry_after=4.0) for _ in range(500)]
    assert min(waits) >= 4.0 and max(waits) <= 4.0 + 0.45
    assert statistics.fmean(waits) == pytest.approx(4.0 + 0.225, abs=0.03)
    assert Backoff(base=0.0, retry_after_max=10.0).delay(3, retry_after=30.0) == 10.0


def test_a_5xx_retry_after_is_waited_as_it_is_a_429s_with_jitter() -> None:
    """A wave of 429s must not come back in one instant; a 503's Retry-After came at its
    own time, and jitter on it only lengthens the run's tail."""
    clock = Clock()
    p = make(clock, backoff=Backoff(base=0.5, retry_after_max=60.0, rng=random.Random(3)))
    tries = p.start()
    tries.attempts = 1
    assert tries.next_wait(Answer(503, retry_after=1.0)) == 1.0
    assert tries.next_wait(Answer(502, retry_after=2.0)) == 2.0
    throttled = [tries.next_wait(Answer(429, retry_after=1.0)) for _ in range(10)]
    assert all(isinstance(w, float) and 1.0 < w <= 1.15 for w in throttled)


def test_over_cap() -> None:
    assert over_cap(121.0, 120.0) and not over_cap(120.0, 120.0)
    assert over_cap(0.9, 0.5) and not over_cap(0.4, 0.5)
    assert not over_cap(None, 120.0) and not over_cap(3600.0, 0.0)  # 0: no cap


def test_stops_after_max_attempts_and_spends_nothing_then() -> None:
    p = make(Clock())
    tries = p.start()
    tries.attempts = 2
    wait = tries.next_wait(FAIL)
    assert isinstance(wait, float) and 0 <= wait <= 2.0  # attempt 2: ceiling base * 2
    assert p.budget.available == 95
    tries.attempts = 3
    assert tries.next_wait(FAIL) == "gave up after 3 attempts: HTTP 503"
    assert p.budget.available == 95


def test_a_retry_after_over_the_cap_stops_first_whatever_is_left() -> None:
    p = make(Clock())
    tries = p.start()
    tries.attempts = 1
    stop = tries.next_wait(Answer(429, retry_after=61.0), "why")
    assert stop == "the API asked to wait 61 s, more than retry_after_max (60 s): why"
    assert tries.next_wait(Answer(429, retry_after=60.0)) == pytest.approx(60.0, abs=6.1)


def test_the_deadline_counts_the_wait_and_one_whole_request() -> None:
    clock = Clock()
    p = make(clock, backoff=Backoff(base=0.0, retry_after_max=60.0))
    tries = p.start()
    tries.attempts = 1
    clock.now += 60.0
    assert tries.next_wait(Answer(503, retry_after=30.0)) == 30.0  # 60 + 30 + 10 == 100
    clock.now += 0.5
    stop = tries.next_wait(Answer(503, retry_after=30.0))
    assert stop == "session_timeout (100 s) would pass before attempt 2: HTTP 503"
    assert tries.remaining() == 39.5 and tries.elapsed() == 60.5
    clock.now += 100
    assert tries.remaining() == 0.0


def test_a_shared_start_shares_the_deadline() -> None:
    clock = Clock()
    p = make(clock)
    first = p.start()
    clock.now += 30
    later = p.start(first.started)
    assert later.elapsed() == 30 and later.attempts == 0
    assert p.start().elapsed() == 0


def test_the_budget_is_taken_per_retry_and_given_back_on_success() -> None:
    p = make(Clock(), max_attempts=100)
    tries = p.start()
    tries.attempts = 1
    assert isinstance(tries.next_wait(Answer(None, failure="timeout")), float)
    assert p.budget.available == 90 and tries.last_failure == "timeout"
    tries.attempts = 2
    tries.refund()
    assert p.budget.available == 100
    p.budget.available = 4
    assert tries.next_wait(FAIL) == "retry budget of the run spent: HTTP 503"
    first_time = p.start()
    first_time.attempts = 1
    first_time.refund()
    assert p.budget.available == 5


def test_a_retry_after_a_429_costs_no_budget_and_gets_nothing_back() -> None:
    p = make(Clock(), max_attempts=100)
    p.budget.available = 4  # too little for any other retry
    tries = p.start()
    tries.attempts = 1
    assert isinstance(tries.next_wait(Answer(429, retry_after=1.0)), float)
    assert p.budget.available == 4 and tries.last_failure == "throttled"
    tries.attempts = 2
    tries.refund()
    assert p.budget.available == 5  # as for a first-attempt success: one
    p.budget.available = 0
    assert tries.next_wait(FAIL) == "retry budget of the run spent: HTTP 503"
    assert isinstance(tries.next_wait(Answer(429)), float)  # still retried: the gate paces it


def test_a_hopeless_429_with_nothing_else_heard_trips_at_once() -> None:
    clock = Clock()
    b = ThrottleBreaker(window=60.0, retry_after_max=120.0, clock=clock)
    assert b.observe(429, 120.0) is None  # at the cap: waited for, not hopeless
    assert b.observe(None, None) is None
    assert b.observe(429, 3600.0) == (
        "the API kept throttling: 1 answer(s) in a row asked to wait 3600 s, more than "
        "retry_after_max (120 s), and no other answer came for 60 s"
    )
    b = ThrottleBreaker(window=60.0, retry_after_max=120.0, clock=clock)
    assert b.observe(200, None) is None
    clock.now += 59.9
    assert b.observe(429, 3600.0) is None  # an answer came 59.9 s ago
    clock.now += 0.1
    assert b.observe(429, 3600.0) is not None  # and now 60 s ago


def test_throttle_breaker_trips_on_three_hopeless_429s_in_a_row() -> None:
    clock = Clock()
    b = ThrottleBreaker(retry_after_max=120.0, clock=clock)
    assert b.observe(200, None) is None
    assert b.observe(429, 3600.0) is None and b.observe(429, 3600.0) is None
    assert b.observe(200, None) is None  # an answer that is not a throttle resets
    assert b.observe(429, 3600.0) is None and b.observe(429, 3600.0) is None
    assert b.observe(None, None) is None  # a transport failure neither counts nor resets
    reason = b.observe(429, 3600.0)
    assert reason == (
        "the API kept throttling: 3 answer(s) in a row asked to wait 3600 s, more than "
        "retry_after_max (120 s)"
    )


def test_a_throttle_under_the_cap_breaks_a_hopeless_run() -> None:
    b = ThrottleBreaker(retry_after_max=120.0, clock=Clock())
    assert b.observe(200, None) is None
    for retry_after in (3600.0, 3600.0, 120.0, 3600.0, 3600.0):
        assert b.observe(429, retry_after) is None


def test_no_cap_means_nothing_is_hopeless() -> None:
    b = ThrottleBreaker(retry_after_max=0.0, clock=Clock())
    assert all(b.observe(429, 3600.0) is None for _ in range(9))


def test_throttle_breaker_trips_after_a_window_of_nothing_but_429s() -> None:
    clock = Clock()
    b = ThrottleBreaker(window=60.0, min_count=10, clock=clock)
    for _ in range(9):
        assert b.observe(429, None) is None
        clock.now += 7.5
    # the ninth came at 60 s: too few; the tenth, at 67.5 s, trips it
    assert b.observe(429, None) == "the API kept throttling: only 429 answers for 68 s (10)"
    b = ThrottleBreaker(window=60.0, min_count=10, clock=clock)
    for _ in range(9):
        assert b.observe(429, None) is None
    clock.now += 59.9
    assert b.observe(429, None) is None  # ten, but under the window
    clock.now += 0.1
    reason = b.observe(429, 1.0)
    assert reason == "the API kept throttling: only 429 answers for 60 s (11)"


def test_throttle_breaker_needs_enough_429s_and_no_other_answer() -> None:
    clock = Clock()
    b = ThrottleBreaker(window=60.0, min_count=10, clock=clock)
    for _ in range(8):
        assert b.observe(429, None) is None
    clock.now += 100
    assert b.observe(429, None) is None  # nine only
    assert b.observe(503, 1.0) is None  # any other answer starts over
    for _ in range(8):
        assert b.observe(429, None) is None
    clock.now += 60
    assert b.observe(429, None) is None  # nine since the 503
    assert b.observe(429, None) is not None


def test_from_settings_maps_every_knob() -> None:
    from worker.settings import Settings

    s = Settings(
        max_attempts=4,
        session_timeout=90,
        timeout=7,
        backoff_base=0.2,
        backoff_max=3,
        retry_after_max=30,
        retry_budget=40,
        throttle_timeout=20,
    )
    clock = Clock()
    p = RetryPolicy.from_settings(s, clock=clock)
    assert p.clock is clock and p.throttle.clock is clock
    assert (p.max_attempts, p.session_timeout, p.request_timeout) == (4, 90, 7)
    assert (p.backoff.base, p.backoff.cap, p.backoff.retry_after_max) == (0.2, 3, 30)
    assert (p.budget.capacity, p.throttle.window, p.throttle.retry_after_max) == (40, 20, 30)
