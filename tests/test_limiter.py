"""The rate gate: the controller's arithmetic on a fake clock, and FIFO grants."""

from __future__ import annotations

import asyncio

from worker.limiter import RateController, RateGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _accept(control: RateController, clock: FakeClock, rate: float, seconds: float) -> None:
    for _ in range(int(rate * seconds)):
        clock.now += 1 / rate
        control.on_accepted()


def test_throttle_pauses_everyone_and_cuts_towards_what_the_server_took() -> None:
    clock = FakeClock()
    control = RateController(1000.0, clock=clock)
    _accept(control, clock, 500.0, 1.0)  # the server took 500/s
    new = control.on_throttled(2.0)
    assert new is not None and 440 < new < 470  # 0.95 * 0.97 * 500
    assert control.pause_until == clock.now + 2.0
    assert control.on_throttled(1.0) is None  # in-flight 429s of the same wave: no second cut


def test_first_moment_throttle_halves_the_rate_and_holds_it() -> None:
    clock = FakeClock()
    control = RateController(1000.0, clock=clock)
    _accept(control, clock, 1000.0, 0.05)  # 50 answers in 50 ms: nothing measurable
    assert control.on_throttled(None) == 485.0  # half, a little under
    assert control.pause_until == clock.now + 1.0  # no Retry-After: the fallback pause
    clock.now = control.pause_until
    _accept(control, clock, 485.0, 10.0)
    assert control.rate == 485.0  # held for the plateau, then probed


def test_recovery_is_quick_then_flat_then_probes() -> None:
    clock = FakeClock()
    control = RateController(400.0, clock=clock)
    _accept(control, clock, 200.0, 1.0)
    control.on_throttled(1.0)
    clock.now = control.pause_until
    rates = []
    for _ in range(60):
        _accept(control, clock, control.rate, 1.0)
        rates.append(control.rate)
    w_max = 0.97 * 200
    assert rates[4] > 0.98 * w_max  # concave: back near w_max within a few seconds
    assert rates[12] < 1.02 * w_max  # a plateau there
    assert rates[14] < 1.05 * w_max and rates[-1] == 400.0  # then a probe finds the ceiling


def test_retry_after_cap_bounds_the_pause() -> None:
    clock = FakeClock()
    control = RateController(100.0, clock=clock, max_pause=5.0)
    control.on_throttled(3600.0)
    assert control.pause_until == clock.now + 5.0


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


async def test_no_rate_means_no_wait() -> None:
    gate = RateGate(None)
    for _ in range(1000):
        await gate.acquire()
    assert gate.rate is None
