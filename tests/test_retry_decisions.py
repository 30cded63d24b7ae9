"""The retry loop every request of a session goes through (``Exchange.ask``), on a fake
clock: what it sends, the waits it asks for, why it stops. No server: ``send`` answers
from a script, so each case runs in microseconds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from hostile import FakeClock, pause_gate
from hypothesis import given
from hypothesis import strategies as st

from worker.devin.answer import Answer
from worker.outcomes import Tally
from worker.run.backoff import Backoff, RetryBudget
from worker.run.breaker import Breaker
from worker.run.exchange import Exchange
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy, ThrottleBreaker
from worker.settings import Settings


@dataclass
class Script:
    answers: Sequence[Answer]
    sent: int = 0
    heard: list[int | None] = field(default_factory=list)

    async def send(self) -> Answer:
        answer = self.answers[min(self.sent, len(self.answers) - 1)]
        self.sent += 1
        return answer


def exchange(policy: RetryPolicy, halt: Halt | None = None) -> Exchange:
    return Exchange(RateGate(None), policy, Halt() if halt is None else halt, Tally())


async def ask(x: Exchange, script: Script) -> tuple[Answer | None, str | None]:
    tries = x.policy.start()
    answer, stop = await x.ask(
        tries, script.send, lambda a: a.ok, heard=lambda a: script.heard.append(a.status)
    )
    assert tries.attempts == script.sent  # every request sent is one attempt
    return answer, stop


def settings(**kw: object) -> Settings:
    values: dict[str, object] = {
        "max_attempts": 4,
        "session_timeout": 100,
        "timeout": 5,
        "backoff_base": 1.0,
        "backoff_max": 8.0,
        "retry_after_max": 30,
        "retry_budget": 100,
        "throttle_timeout": 20,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


async def test_a_policy_from_settings_waits_through_the_injected_sleep() -> None:
    clock = FakeClock(now=500.0)
    policy = RetryPolicy.from_settings(settings(), clock=clock, sleep=clock.sleep)
    policy.backoff.rng = random.Random(5)
    x = exchange(policy)
    script = Script([Answer(503), Answer(503, retry_after=2.0), Answer(204)])
    answer, stop = await ask(x, script)
    assert stop is None and answer is not None and answer.status == 204
    assert script.sent == 3 and x.tally.requests == 3 and script.heard == [503, 503, 204]
    # attempt 1: full jitter under base 1 s; attempt 2: Retry-After 2 s plus a little jitter
    assert len(clock.waits) == 2 and 0 <= clock.waits[0] <= 1.0
    assert 2.0 <= clock.waits[1] <= 2.0 + 0.25
    assert clock.now == 500.0 + sum(clock.waits)


async def test_the_loop_stops_with_the_policy_reason_and_the_last_answer() -> None:
    clock = FakeClock(now=500.0)
    policy = RetryPolicy.from_settings(settings(max_attempts=3), clock=clock, sleep=clock.sleep)
    x = exchange(policy)
    script = Script([Answer(500)])
    answer, stop = await ask(x, script)
    assert stop == "gave up after 3 attempts: HTTP 500"
    assert answer is not None and answer.status == 500
    assert script.sent == 3 and len(clock.waits) == 2 and x.tally.requests == 3
    # two retries taken from the run's budget, nothing given back
    assert policy.budget.available == 100 - 2 * 5


async def test_a_retry_after_over_the_cap_stops_without_waiting() -> None:
    clock = FakeClock(now=500.0)
    policy = RetryPolicy.from_settings(settings(), clock=clock, sleep=clock.sleep)
    x = exchange(policy)
    _, stop = await ask(x, Script([Answer(429, retry_after=31.0)]))
    assert stop == "the API asked to wait 31 s, more than retry_after_max (30 s): HTTP 429"
    assert clock.waits == [] and policy.budget.available == 100


async def test_a_halt_during_the_wait_stops_the_retry() -> None:
    clock = FakeClock(now=500.0)
    halt = Halt()

    async def sleep(seconds: float) -> None:
        clock.waits.append(seconds)
        halt("signal received")
        await asyncio.sleep(3600)  # would wait an hour: the halt ends it

    policy = RetryPolicy(backoff=Backoff(base=0.0), clock=clock, sleep=sleep)
    x = exchange(policy, halt)
    script = Script([Answer(503)])
    answer, stop = await ask(x, script)
    assert stop == "not sent: signal received" and script.sent == 1
    assert answer is not None and answer.status == 503 and clock.waits == [0.0]


async def test_a_halted_run_sends_nothing() -> None:
    halt = Halt()
    halt("token refused", auth=True)
    x = exchange(RetryPolicy(), halt)
    script = Script([Answer(204)])
    assert await ask(x, script) == (None, "not sent: token refused")
    assert script.sent == 0 and x.tally.requests == 0


async def test_a_gate_wait_past_the_deadline_is_not_a_halt() -> None:
    gate = RateGate(10.0, max_pause=3600.0)
    pause_gate(gate, 3600.0)
    x = Exchange(gate, RetryPolicy(session_timeout=0.02), Halt(), Tally())
    try:
        stop = await asyncio.wait_for(x.turn(x.policy.start()), 5)
    finally:
        await gate.aclose()
    assert stop == "session_timeout (0.02 s) passed waiting for the rate gate"


def test_the_library_defaults_are_the_documented_settings() -> None:
    # RetryPolicy() (the library's default) retries as a run with default settings does
    mine, theirs = RetryPolicy(), RetryPolicy.from_settings(Settings())
    assert (mine.max_attempts, mine.session_timeout, mine.request_timeout) == (
        theirs.max_attempts,
        theirs.session_timeout,
        theirs.request_timeout,
    )
    assert (mine.backoff.base, mine.backoff.cap, mine.backoff.retry_after_max) == (
        theirs.backoff.base,
        theirs.backoff.cap,
        theirs.backoff.retry_after_max,
    )
    assert mine.budget.capacity == theirs.budget.capacity
    assert (mine.throttle.window, mine.throttle.retry_after_max) == (
        theirs.throttle.window,
        theirs.throttle.retry_after_max,
    )


def test_a_timeout_retry_costs_more_and_its_refund_gives_it_back() -> None:
    clock = FakeClock(now=500.0)
    policy = RetryPolicy(backoff=Backoff(base=0.0), budget=RetryBudget(capacity=30), clock=clock)
    tries = policy.start()
    tries.attempts = 1
    assert tries.next_wait(Answer(None, failure="timeout")) == 0.0
    assert policy.budget.available == 20
    tries.attempts = 2
    assert tries.next_wait(Answer(503)) == 0.0  # the last failure is a 503 now
    assert policy.budget.available == 15
    tries.attempts = 3
    tries.refund()  # refunds what the last retry cost: a plain one
    assert policy.budget.available == 20


def test_the_breaker_default_window_is_a_minute() -> None:
    clock = FakeClock(now=500.0)
    b = ThrottleBreaker(retry_after_max=10.0, clock=clock)
    assert b.observe(204, None) is None
    clock.now += 59.0
    assert b.observe(429, 3600.0) is None  # an answer came 59 s ago
    clock.now += 1.0
    assert b.observe(429, 3600.0) is not None


async def test_a_race_lost_to_its_timeout_cancels_the_wait() -> None:
    gate_open, went_on = asyncio.Event(), []

    async def wait_for_the_gate() -> None:
        await gate_open.wait()
        went_on.append(True)

    assert not await Halt().race(wait_for_the_gate(), timeout=0.001)
    gate_open.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert went_on == []  # the abandoned wait does not take a turn later


def test_a_plain_halt_is_not_fatal_and_the_first_reason_stays() -> None:
    heard: list[str | None] = []
    halt = Halt()
    halt.listener = lambda: heard.append(halt.reason)
    halt("SIGTERM received")
    halt("token refused", auth=True)
    assert (halt.reason, halt.fatal, halt.auth, heard) == (
        "SIGTERM received",
        False,
        False,
        ["SIGTERM received"],
    )


@given(
    st.lists(st.booleans(), max_size=60),
    st.integers(min_value=1, max_value=8),
    st.sampled_from([0.1, 0.5, 0.75, 1.0]),
)
def test_the_failure_breaker_counts_the_last_window(
    failures: list[bool], window: int, threshold: float
) -> None:
    """The running count of failures is the count of the last ``window`` sessions: the
    breaker trips exactly when the window is full and at least ``threshold`` of it failed."""
    breaker = Breaker(window, threshold)
    for n, failed in enumerate(failures, start=1):
        last = failures[max(0, n - window) : n]
        expected = len(last) == window and sum(last) >= threshold * window
        assert breaker.record(failed) is expected
