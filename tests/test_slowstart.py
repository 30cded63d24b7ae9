"""The start of a run (worker/run/slowstart.py): requests unanswered at most, until the
window no longer binds or a 429 has been measured."""

from __future__ import annotations

import asyncio

import pytest

from tests.ratemodel import ModelServer, drive
from tests.virtualtime import virtual
from worker.run.control import RateController
from worker.run.gate import RateGate
from worker.run.sample import OVERWHELMED
from worker.run.slowstart import EXPIRE_S, INITIAL, SlowStart


def test_a_full_window_grows_by_one_per_accepted_answer_unless_told_not_to() -> None:
    start = SlowStart()
    for n in range(INITIAL):
        assert start.room(0.0)
        start.granted(n / 1000)
    assert not start.room(0.016)  # INITIAL unanswered: full
    start.answered(0.0, accepted=False, grow=True)  # a 429 frees a place, grows nothing
    assert start.window == INITIAL and start.room(0.016)
    start.granted(0.016)  # full again
    start.answered(0.001, accepted=True, grow=True)
    assert start.window == INITIAL + 1
    start.granted(0.017)
    start.granted(0.018)  # full again
    start.answered(0.002, accepted=True, grow=False)  # a 429 being measured: no growth
    assert start.window == INITIAL + 1
    start.answered(0.003, accepted=True, grow=True)  # 16 of 17 were out: not full
    assert start.window == INITIAL + 1
    start.answered(99.0, accepted=True, grow=True)  # never granted here: nothing to free
    assert start.window == INITIAL + 1


def test_a_window_that_is_not_full_does_not_grow_whatever_comes_back() -> None:
    """Answers keep coming while few are out: the window stays, so that when they stop
    (a window spent, a stalled loop) no more than it are out."""
    start = SlowStart()
    for n in range(1000):
        start.granted(n / 1000)
        start.answered(n / 1000, accepted=True, grow=True)
    assert start.window == INITIAL


def test_a_grant_unanswered_for_a_second_no_longer_holds_the_window() -> None:
    start = SlowStart(window=2)
    start.granted(0.0)
    start.granted(0.5)
    assert not start.room(0.9)
    assert not start.room(EXPIRE_S)  # a second old: still out
    assert start.room(EXPIRE_S + 0.01)  # the first has expired (a hang, a lost report)


def test_a_grant_that_lapsed_from_a_full_window_widens_it_when_answered() -> None:
    start = SlowStart(window=2)
    start.granted(0.0)
    start.granted(0.5)
    assert start.room(EXPIRE_S + 0.01)  # the first lapsed from a full window: one may go
    start.granted(1.1)
    start.answered(0.0, accepted=True, grow=True)  # 2 s later, accepted: it held others back
    assert start.window == 3
    start.answered(0.5, accepted=True, grow=True)  # answered in time, window not full
    assert start.window == 3
    quiet = SlowStart(window=2)
    quiet.granted(0.0)
    assert quiet.room(EXPIRE_S + 0.01)  # lapsed from a window that was not full
    quiet.answered(0.0, accepted=True, grow=True)
    assert quiet.window == 2


def test_in_the_slow_start_a_429_or_two_among_accepted_answers_cut_nothing() -> None:
    """The run's first moments: a 429, then the window's next grants held back 70 ms (the
    first answers late, connections being opened), 15 of them at once and accepted. The
    sample reads 230/s at --rate 1000 against a server that takes 500: the window set that
    pace, not the server, and a cut to it took seconds to climb back."""
    now = [0.0]
    control = RateController(1000.0, clock=lambda: now[0])
    control.granted(0.0)  # the request that draws the 429
    control.granted(0.0001)
    now[0] = 0.001
    control.on_throttled(1.0, 0.0)  # a sample of the next 16 grants
    control.on_throttled(1.0, 0.0001)
    now[0] = 0.0695
    late = [0.0695 + n * 1e-6 for n in range(15)]
    for at in late:
        control.granted(at)
    now[0] = 0.071
    for at in late:
        control.on_accepted(at)
    assert control.rate == 1000.0 and control.limit is None and control.start is not None
    control.granted(0.072)  # another wave: three 429s in 16 are more than the window's noise
    now[0] = 0.073
    control.on_throttled(1.0, 0.072)
    wave = [0.08 + n * 0.002 for n in range(16)]
    for at in wave:
        control.granted(at)
    now[0] = 0.12
    for n, at in enumerate(wave):
        if n < 3:
            control.on_throttled(1.0, at)
        else:
            control.on_accepted(at)
    assert control.rate < 1000.0 and control.start is None


def test_the_controller_drops_the_window_once_the_rate_is_cut() -> None:
    now = [0.0]
    control = RateController(600.0, clock=lambda: now[0])
    _answers_after_a_429 = [(n + 1) / 600 for n in range(16)]
    for at in _answers_after_a_429:
        control.granted(at)
    assert not control.room(0.03) and control.start is not None
    now[0] = 0.03
    control.on_throttled(1.0, 0.0)  # the sample: the 16 after it, one in two accepted
    for n, at in enumerate(_answers_after_a_429):
        if n % 2:
            control.on_accepted(at)
        else:
            control.on_throttled(1.0, at)
    assert control.rate < 600.0 and control.start is None and control.room(now[0])


def test_quick_429s_after_a_sample_of_slow_answers_hold_the_gate() -> None:
    """A gateway answers 429s at once while accepted requests take 60 ms. The first 429
    arms a sample of the next 16 grants; when most of those are slow accepted requests the
    sample waits for them, and each quick 429 meanwhile frees its place in the window for
    another (measured: 135 requests in 0.1 s at 10x a limit of 300, 4% of the run 429s).
    Eight 429s to requests sent after the sample hold the gate until it is decided."""
    now = [0.0]
    control = RateController(3000.0, clock=lambda: now[0])
    for n in range(INITIAL):  # the window, filled at the gate's pace: slow answers
        control.granted(n * 0.002)
    now[0] = 0.031
    control.on_throttled(1.0, 0.0)  # the first 429: the sample is the 15 slow ones and...
    sent = 0
    while now[0] < 0.06 and sent < 1000:  # ...until the slow answers come back
        now[0] += 0.0002
        if now[0] >= control.pause_until and control.room(now[0]):
            control.granted(now[0])
            sent += 1
            control.on_throttled(1.0, now[0])  # answered at once: another 429
    assert control.holding and control.start is not None  # the sample is still out
    assert sent <= 1 + OVERWHELMED  # the sample's last grant, then eight more at most
    for n in range(1, INITIAL):  # the slow answers: accepted; the sample is decided
        control.on_accepted(n * 0.002)
    assert not control.holding and control.rate < 3000.0


@virtual
async def test_at_the_start_no_more_than_the_window_goes_before_the_first_answers() -> None:
    gate = RateGate(1000.0)
    granted: list[float] = []

    async def take() -> None:
        granted.append(await gate.acquire())

    tasks = [asyncio.create_task(take()) for _ in range(60)]
    await asyncio.sleep(0.5)  # nothing answered yet: 16 went, the rest wait
    assert len(granted) == INITIAL
    for sent in granted[:INITIAL]:  # one round trip: each answer to the full window...
        gate.accepted(sent)
        await asyncio.sleep(0.005)  # (the gate refills it meanwhile)
    assert len(granted) == 3 * INITIAL  # ...let two more go: 32 out now
    await asyncio.sleep(0.5)
    assert len(granted) == 3 * INITIAL  # and no more without answers
    for sent in granted[INITIAL:]:
        gate.accepted(sent)
    await asyncio.gather(*tasks)
    await gate.aclose()


@virtual
@pytest.mark.parametrize("fast_429s", [True, False])
async def test_ten_times_a_bucket_with_slow_answers_draws_few_429s(fast_429s: bool) -> None:
    """Answers take 50 ms (±50%), 429s as long or 1 ms (a gateway): the first wave is
    what was in flight, not 50 ms of --rate (measured: 61 and 9 429s in the first second;
    123 and 15 without the window, 3.6% of all requests with slow 429s)."""
    server = ModelServer([(0.0, 300.0)])
    run = await drive(
        RateGate(3000.0),
        server,
        sessions=4500,
        concurrency="auto",
        latency=0.05,
        jitter=0.5,
        throttled_latency=0.001 if fast_429s else None,
    )
    assert server.throttled[0] <= (20 if fast_429s else 80)
    assert server.share_429 <= 0.03
    assert server.accepted_rate(3, int(run.finished) - 1) >= 0.9 * 300


@virtual
async def test_a_full_window_is_no_quiet_spell_no_burst_follows_it() -> None:
    """Waiting for answers is not idleness: when room comes, grants go at the rate (in the
    gate's 2 ms batches), not as a burst of rate/20 (50 here) at once."""
    gate = RateGate(1000.0)
    granted: list[float] = []

    async def take() -> None:
        granted.append(await gate.acquire())

    tasks = [asyncio.create_task(take()) for _ in range(80)]
    await asyncio.sleep(0.5)
    assert len(granted) == INITIAL
    for sent in list(granted):
        gate.accepted(sent)
    await asyncio.gather(*tasks)
    later = granted[INITIAL:]
    assert max(later.count(at) for at in later) <= 2  # two a batch, no 50 at once
    assert later[-1] - later[0] >= 0.9 * (len(later) - 2) / 1000
    await gate.aclose()
