"""The rate gate on a virtual-clock loop (tests/virtualtime.py): seconds in milliseconds.

Grant order and pacing, pauses, and the whole control loop against a model server (a
token bucket on the loop's clock, ``tests/ratemodel.py``): convergence from 2x and 10x
the limit, a limit that drops then rises, 5xx with Retry-After that must not slow the run.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile import FakeClock
from tests.ratemodel import LIMITERS, ModelServer, drive, now
from tests.virtualtime import virtual
from worker.run.gate import RateGate


@virtual
async def test_grants_come_in_arrival_order() -> None:
    gate = RateGate(2000.0, burst=1)
    order: list[int] = []

    async def worker(n: int) -> None:
        await gate.acquire()
        order.append(n)

    tasks = []
    for n in range(40):
        tasks.append(asyncio.create_task(worker(n)))
        await asyncio.sleep(0)  # arrive one after another
    await asyncio.gather(*tasks)
    await gate.aclose()
    assert order == list(range(40))


@virtual
async def test_the_rate_holds_in_every_window() -> None:
    # no answers are reported here: adaptive=False, so no slow start's window waits for them
    gate = RateGate(200.0, adaptive=False)  # bursts of 200/20 = 10 after a quiet spell
    times: list[float] = []

    async def worker() -> None:
        for _ in range(20):
            await gate.acquire()
            times.append(now())

    start = now()
    await asyncio.gather(*(worker() for _ in range(50)))
    await gate.aclose()
    assert times == sorted(times)
    # 1000 grants, one every 5 ms from the start
    assert 4.9 <= now() - start <= 5.0
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u < t + 1.0)
        assert in_window <= 200 + 10
    for i in range(10, 1000):
        assert times[i] - times[i - 1] == pytest.approx(0.005, abs=0.0021)


@virtual
async def test_no_rate_means_no_wait() -> None:
    gate = RateGate(None)
    start = now()
    for _ in range(1000):
        await gate.acquire()
    assert gate.rate is None and now() == start
    assert gate.at_once() == start  # granted without awaiting: no task to race a halt
    limited = RateGate(100.0)
    assert limited.at_once() is None  # a limit: every grant waits its turn
    await limited.aclose()


async def _acquire_at(gate: RateGate) -> float:
    await gate.acquire()
    return now()


async def _wave(gate: RateGate, retry_after: float | None, *, until_paused: bool = True) -> None:
    """Up to 40 requests, 429s carrying ``retry_after`` but one in ten: most of them (not
    all: see test_a_wave_of_nothing_but_429s_is_probed_one_request_at_a_time)."""
    for i in range(40):
        sent = await gate.acquire()
        if i % 10 == 1:
            gate.accepted(sent)
        else:
            gate.throttled(retry_after, sent)
        if until_paused and gate.paused_until > now():
            break


@virtual
async def test_a_wave_of_429s_pauses_every_worker_until_retry_after() -> None:
    gate = RateGate(100.0)
    await _wave(gate, 2.0)
    paused_at = now()
    assert gate.paused_until == pytest.approx(paused_at + 2.0, abs=0.05)
    assert await _acquire_at(gate) >= paused_at + 1.95
    await gate.aclose()


@virtual
async def test_a_retry_after_over_the_cap_pauses_nobody() -> None:
    gate = RateGate(100.0, max_pause=120.0)
    await _wave(gate, 3600.0, until_paused=False)
    before, interval = now(), 1 / (gate.rate or 1.0)  # the 429s lowered the rate, they
    assert gate.paused_until < before  # did not pause: the next grant comes at that rate
    assert await _acquire_at(gate) <= before + interval + 0.01
    await gate.aclose()


@virtual
async def test_not_adaptive_keeps_the_rate_but_still_pauses() -> None:
    changes: list[str] = []
    gate = RateGate(100.0, adaptive=False, on_change=lambda old, new, why: changes.append(why))
    await _wave(gate, 1.0)
    assert gate.rate == 100.0 and gate.paused_until > now() and changes == []
    await gate.aclose()


@virtual
async def test_5xx_with_retry_after_at_5_percent_neither_pauses_nor_slows() -> None:
    changes: list[str] = []
    gate = RateGate(200.0, on_change=lambda old, new, why: changes.append(why))
    server = ModelServer([(0.0, None)], overload_rate=0.05)
    run = await drive(gate, server, sessions=1000)
    requests = sum(server.accepted.values())
    assert changes == [] and gate.rate == 200.0
    # the ideal is requests / rate; the last sessions to get a 503 wait Retry-After (1 s)
    # once, or twice at worst in this run
    assert run.finished <= requests / 200.0 + 2.2


@virtual
async def test_5xx_with_retry_after_as_a_large_share_cuts_the_rate() -> None:
    changes: list[tuple[str, float]] = []
    gate = RateGate(200.0, on_change=lambda old, new, why: changes.append((why, new)))
    server = ModelServer([(0.0, None)], overload_rate=0.5)
    await drive(gate, server, sessions=200)
    assert min(new for why, new in changes if why == "overloaded") < 150


@pytest.mark.parametrize("limiter", LIMITERS)
@pytest.mark.parametrize("ceiling", [2.0, 10.0])
@virtual
async def test_converges_to_the_limit_from_above(ceiling: float, limiter: str) -> None:
    """Whatever the server counts with: a bucket with a small or a whole second's burst, a
    fixed window, a sliding log; answers come back with jitter, 429s as fast as the rest."""
    limit = 100.0
    server = ModelServer([(0.0, limit)], limiter=limiter)
    gate = RateGate(ceiling * limit)
    run = await drive(gate, server, sessions=2000, concurrency=16, jitter=0.5)
    last = int(run.finished) - 1
    assert server.accepted_rate(3, last) >= (0.95 if ceiling == 2 else 0.9) * limit
    # measured: 1.3-2.7% (a window's probes cost a run of 429s at each crossing)
    assert server.share_429 <= 0.035
    assert server.throttled[0] + server.throttled[1] <= 45  # the start: one or two waves
    # never cascades to the floor (1% of the ceiling): it stays near what was accepted
    assert run.min_rate_after(0.5) >= 0.6 * limit


@pytest.mark.parametrize("phase", [0.15, 0.55, 0.85])
@virtual
async def test_a_fixed_window_is_found_at_twice_its_limit_whatever_its_phase(phase: float) -> None:
    """The run starts ``phase`` into the server's one-second window. Where its first 429s
    come as a window closes, the next one stayed spent for half a second: sending on at
    the rate drew a wave of 429s every round trip (7.4% and 3.5% of this run's requests
    at phases 0.55 and 0.85); one probe at a time until a window opens again costs a few."""
    await asyncio.sleep(phase)
    server = ModelServer([(0.0, 300.0)], limiter="window")
    run = await drive(RateGate(600.0), server, sessions=2400, concurrency="auto", latency=0.015)
    assert server.share_429 <= 0.03  # measured 1.8-1.9%
    assert server.accepted_rate(2, int(run.finished) - 2) >= 0.95 * 300  # 0.985-0.995


@virtual
async def test_requests_that_hang_do_not_hold_a_cut() -> None:
    """3% of requests hang for a second (until the client's timeout): the 429 sample does
    not wait for them, so the first wave is cut within milliseconds, not a second."""
    server = ModelServer([(0.0, 100.0)])
    run = await drive(RateGate(200.0), server, sessions=600, concurrency=32, hang_share=0.03)
    assert server.throttled[0] <= 40
    assert run.rate_at(0.3) < 150  # cut in the first wave: the hung ones were not waited for
    assert server.accepted_rate(2, 4) >= 0.95 * 100  # the body: the last seconds wait for hangs


@pytest.mark.parametrize("limiter", LIMITERS)
@virtual
async def test_follows_a_limit_that_drops_then_rises(limiter: str) -> None:
    server = ModelServer([(0.0, 50.0), (8.0, 25.0), (16.0, 50.0)], limiter=limiter)
    run = await drive(RateGate(100.0), server, sessions=1250, concurrency=16, jitter=0.5)
    assert run.finished > 26
    assert server.accepted_rate(10, 15) >= 0.85 * 25
    assert run.rate_at(15.9) <= 30  # followed it down
    assert server.accepted_rate(21, 25) >= 0.85 * 50  # and up again within 5 s
    assert server.share_429 <= 0.065  # measured 4.4-5.8% at this small limit


@virtual
async def test_an_isolated_429_paces_nobody() -> None:
    gate = RateGate(100.0)
    for _ in range(200):
        gate.accepted(await gate.acquire())
    gate.throttled(1.0, await gate.acquire())
    throttled_at = now()
    for n in range(1, 21):
        assert await _acquire_at(gate) == pytest.approx(throttled_at + n * 0.01)
        gate.accepted(now())  # granted now: the virtual clock moves only by waits
    assert gate.paused_until < throttled_at and gate.rate == 100.0
    await gate.aclose()


# -- the pump's arithmetic, exactly (each test pins a rule a mutant of gate.py broke) --------


async def _acquire_each(gate: RateGate, count: int) -> list[float]:
    """``count`` acquisitions one after another (a single waiter at a time)."""
    return [await _acquire_at(gate) for _ in range(count)]


async def _acquire_all(gate: RateGate, count: int) -> list[float]:
    """``count`` waiters queued at once."""
    return list(await asyncio.gather(*(_acquire_at(gate) for _ in range(count))))


async def _after_a_quiet_spell(gate: RateGate) -> float:
    """One grant, then a second of nothing (the start of a run is not a quiet spell: it
    grants no burst); returns the time from which the next grants are measured."""
    await gate.acquire()
    await asyncio.sleep(1.0)
    return now()


@virtual
async def test_the_first_grants_are_paced_from_the_start_not_a_burst() -> None:
    """A run's first second could go to a server far below --rate: no burst at once."""
    gate = RateGate(1000.0, adaptive=False)  # bursts of 50 after a quiet spell
    times = await _acquire_all(gate, 5)
    # one at once, then at the rate (a wake-up every 2 ms grants the two slots due by then)
    assert times == pytest.approx([0.0, 0.002, 0.002, 0.004, 0.004], abs=1e-9)
    start = await _after_a_quiet_spell(gate)
    times = await _acquire_all(gate, 60)
    assert [t - start for t in times[:50]] == pytest.approx([0.0] * 50, abs=1e-9)
    assert times[50] - start == pytest.approx(0.002, abs=1e-9)  # then at the rate again
    await gate.aclose()


@virtual
async def test_a_slow_rate_grants_no_burst() -> None:
    gate = RateGate(10.0)  # a twentieth of a second's worth rounds to 0: a burst of one
    times = await _acquire_each(gate, 3)
    assert times == pytest.approx([0.0, 0.1, 0.2], abs=1e-9)
    await gate.aclose()


@virtual
async def test_burst_caps_the_grants_after_a_quiet_spell() -> None:
    gate = RateGate(1000.0, burst=3)  # a twentieth of a second's worth would be 50
    start = await _after_a_quiet_spell(gate)
    times = [t - start for t in await _acquire_each(gate, 6)]
    # three at once, then a lone waiter is granted the moment its slot is due, not later
    assert times == pytest.approx([0.0, 0.0, 0.0, 0.001, 0.002, 0.003], abs=1e-9)
    await gate.aclose()


@virtual
async def test_a_queue_is_granted_in_batches_of_two_milliseconds() -> None:
    gate = RateGate(1000.0, burst=3)
    start = await _after_a_quiet_spell(gate)
    times = [t - start for t in await _acquire_all(gate, 9)]
    # the burst, then one wake-up every 2 ms grants the two slots due by then
    expected = [0.0, 0.0, 0.0, 0.002, 0.002, 0.004, 0.004, 0.006, 0.006]
    assert times == pytest.approx(expected, abs=1e-9)
    await gate.aclose()


@virtual
async def test_a_small_burst_does_not_slow_a_fast_rate() -> None:
    gate = RateGate(10_000.0, burst=2, adaptive=False)  # 2 ms: 20 slots, a batch the burst
    start = await _after_a_quiet_spell(gate)
    times = [t - start for t in await _acquire_all(gate, 200)]
    for i in range(0, 200, 2):  # pairs, every two slots of 0.1 ms: 10,000 a second
        assert times[i] == times[i + 1] == pytest.approx(i * 0.0001, abs=1e-9)
    await gate.aclose()


@virtual
async def test_a_wait_of_a_microsecond_is_rounding_and_not_slept() -> None:
    clock = FakeClock(now=0.0)  # moves only when the gate sleeps
    gate = RateGate(1_000_000.0, burst=1, clock=clock, sleep=clock.sleep)
    await gate.acquire()
    await gate.acquire()  # due in exactly 1 µs: granted now
    assert clock.waits == []
    await gate.acquire()  # due in 2 µs: slept
    assert clock.waits == [pytest.approx(2e-6, abs=1e-12)]
    await gate.aclose()


@virtual
async def test_a_pause_ending_within_a_microsecond_is_not_slept() -> None:
    clock = FakeClock(now=0.0)  # moves only when the gate sleeps
    gate = RateGate(1_000_000.0, clock=clock, sleep=clock.sleep)
    await gate.acquire()
    clock.now = 1.0  # a quiet spell: the next 50,000 may go at once
    for _ in range(100):  # 5xx answers with Retry-After, all of them: the fleet pauses
        gate.overloaded(1e-6, await gate.acquire())
        if gate.paused_until > clock.now:
            break
    assert gate.paused_until == 1.0 + 1e-6 and clock.now == 1.0
    await gate.acquire()
    assert clock.waits == []
    await gate.aclose()


@virtual
async def test_an_overload_pauses_for_the_retry_after_it_carried() -> None:
    gate = RateGate(100.0)
    for _ in range(40):
        sent = await gate.acquire()
        gate.overloaded(3.0, sent)  # not the 1 s assumed when a 429 names no Retry-After
        if gate.paused_until > now():
            break
    assert gate.paused_until == pytest.approx(now() + 3.0, abs=1e-9)
    await gate.aclose()


@virtual
async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    gate = RateGate(10.0)
    first, second, third = (asyncio.create_task(_acquire_at(gate)) for _ in range(3))
    await asyncio.sleep(0.01)
    assert first.done() and not second.done()
    second.cancel()
    async with asyncio.timeout(5.0):  # a dead pump fails the test instead of hanging it
        assert await first == 0.0 and await third == pytest.approx(0.1, abs=1e-9)
    assert second.cancelled()
    await gate.aclose()


@virtual
async def test_a_closed_gate_grants_again_on_the_next_acquire() -> None:
    gate = RateGate(10.0)
    await gate.acquire()
    await gate.aclose()
    await gate.aclose()  # closing twice is harmless
    async with asyncio.timeout(5.0):  # a pump left cancelled fails the test, not hangs it
        assert await _acquire_at(gate) == pytest.approx(0.1, abs=1e-9)  # the slot still counts
    await gate.aclose()


@virtual
async def test_the_listener_hears_each_change_of_rate() -> None:
    changes: list[tuple[float, float, str]] = []
    gate = RateGate(100.0, on_change=lambda old, new, why: changes.append((old, new, why)))
    for _ in range(40):
        sent = await gate.acquire()
        gate.throttled(1.0, sent)
        if changes:
            break
    assert changes == [(100.0, gate.rate, "throttled")] and (gate.rate or 100.0) < 100.0
    await gate.aclose()


@virtual
async def test_closing_leaves_no_task_behind() -> None:
    gate = RateGate(10.0)
    await gate.acquire()
    await gate.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def _pauses_for(gate: RateGate, retry_after: float) -> bool:
    """Whether a wave of 429s carrying ``retry_after`` pauses every worker."""
    await _wave(gate, retry_after)
    await gate.aclose()
    return gate.paused_until > now()


@pytest.mark.parametrize(("retry_after", "paused"), [(60.0, True), (60.5, False)])
@virtual
async def test_a_pause_is_capped_at_a_minute_by_default(retry_after: float, paused: bool) -> None:
    assert await _pauses_for(RateGate(100.0), retry_after) is paused


@pytest.mark.parametrize(("max_pause", "pause"), [(60.0, 1.0), (0.5, 0.5)])
@virtual
async def test_a_429_without_retry_after_pauses_a_second_or_the_cap(
    max_pause: float, pause: float
) -> None:
    gate = RateGate(100.0, max_pause=max_pause)
    await _wave(gate, None)
    assert gate.paused_until == pytest.approx(now() + pause, abs=1e-9)
    await gate.aclose()
