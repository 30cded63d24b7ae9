"""Requests in flight (worker/run/slots.py): a fixed number, or ``auto`` sized from the rate
and the answer times seen. The model runs (tests/ratemodel.py) are on a virtual clock."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from tests.ratemodel import ModelServer, drive
from tests.virtualtime import virtual
from worker.run.gate import RateGate
from worker.run.slots import CEILING, FIRST_GUESS_S, FLOOR, Slots, needed


@pytest.mark.parametrize(
    ("rate", "answer_s", "slots"),
    [
        (None, 1.0, FLOOR),  # no rate ceiling: the slots are the only bound
        (0.0, 1.0, FLOOR),
        (20.0, 0.1, FLOOR),  # 2 x 20 x 0.1 + 1 = 5: never under the floor
        (400.0, 0.03, 44),  # 2 x 400 x 0.03 + 400/20 = 24 + 20
        (400.0, 0.0, 20),  # answered at once: the gate's burst is still covered
        (20.0, 0.5, 21),  # 20 + a burst of one at least
        (100.0, 0.2525, 56),  # 50.5 + 5 rounded up, not down
        (3000.0, 0.1, CEILING),
    ],
)
def test_auto_keeps_twice_what_the_rate_needs_plus_the_burst(
    rate: float | None, answer_s: float, slots: int
) -> None:
    assert needed(rate, answer_s) == slots


async def test_fixed_slots_are_granted_in_the_order_asked() -> None:
    slots = Slots(2)
    await slots.acquire()
    await slots.acquire()
    assert slots.locked() and slots.held == 2
    order: list[int] = []

    async def take(n: int) -> None:
        await slots.acquire()
        order.append(n)

    waiting = [asyncio.create_task(take(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert order == []
    slots.release()
    await asyncio.sleep(0)
    assert order == [0]
    slots.release()
    slots.release()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2] and slots.held == 2
    slots.answered(0.0, 5.0)  # a fixed size never changes
    assert slots.limit == 2 and slots.maximum == 2


async def test_a_cancelled_waiter_takes_no_slot_and_a_granted_one_hands_it_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    gone = asyncio.create_task(slots.acquire())
    late = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while waiting: leaves the queue
    (outcome,) = await asyncio.gather(gone, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    slots.release()  # the slot goes to `late`, not to the cancelled one
    await asyncio.wait_for(late, 1)
    assert slots.held == 1
    granted = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # granted to `granted`...
    granted.cancel()  # ...which is cancelled before it runs: the slot is free again
    await asyncio.gather(granted, return_exceptions=True)
    assert slots.held == 0 and not slots.locked()


async def test_auto_follows_the_answer_times_and_the_rate() -> None:
    rate = [400.0]
    slots = Slots.auto(lambda: rate[0])
    assert slots.limit == needed(400.0, FIRST_GUESS_S) and slots.maximum == CEILING
    for _ in range(200):
        slots.answered(0.0, 0.002)
    assert slots.answer_time < 0.003  # the first guess has faded
    assert slots.limit == needed(400.0, slots.answer_time)
    assert slots.limit < 30
    for _ in range(200):
        slots.answered(0.0, 0.2)
    assert slots.limit >= needed(400.0, 0.19)
    rate[0] = 50.0  # the gate cut the rate: fewer are needed
    slots.answered(0.0, 0.2)
    assert slots.limit == needed(50.0, slots.answer_time) < needed(400.0, slots.answer_time)


async def test_auto_growing_wakes_the_waiters() -> None:
    slots = Slots.auto(lambda: 400.0)
    for _ in range(300):
        slots.answered(0.0, 0.0)
    small = slots.limit
    for _ in range(small):
        await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    for _ in range(50):
        slots.answered(0.0, 0.1)  # slower answers: more slots, and the waiter gets one at once
    await asyncio.wait_for(waiter, 1)
    assert slots.held == small + 1


@virtual
@pytest.mark.parametrize(
    ("latency", "hang_share"), [(0.05, 0.0), (0.2, 0.0), (0.005, 0.04), (0.1, 0.02)]
)
async def test_auto_lets_the_gate_not_the_round_trip_set_the_pace(
    latency: float, hang_share: float
) -> None:
    """400/s with no server limit: the run takes its sessions / rate, whether answers take
    5 ms or 200 ms, or some hang a whole second (until a timeout)."""
    server = ModelServer([(0.0, None)])
    run = await drive(
        RateGate(400.0),
        server,
        sessions=2000,
        concurrency="auto",
        latency=latency,
        jitter=0.5,
        hang_share=hang_share,
    )
    assert run.finished <= 2000 / 400 + 1.0 + latency
    assert run.slots is not None and run.slots.limit <= CEILING


@virtual
@pytest.mark.parametrize(
    ("concurrency", "at_least", "at_most"), [(8, 4.9, 6.0), ("auto", 1.9, 2.2)]
)
async def test_a_fixed_eight_is_bound_by_the_round_trip(
    concurrency: int | Literal["auto"], at_least: float, at_most: float
) -> None:
    """800 sessions at 400/s answered in 50 ms: 8 slots carry 8 / 0.05 = 160/s (5 s), auto
    the 400/s of the gate (2 s)."""
    run = await drive(
        RateGate(400.0),
        ModelServer([(0.0, None)]),
        sessions=800,
        concurrency=concurrency,
        latency=0.05,
    )
    assert at_least <= run.finished <= at_most


@virtual
async def test_before_the_first_answer_the_requests_out_size_the_slots() -> None:
    """Answers in 2 s, --rate 40, no limit: the slots grow with the age of the requests out
    (the first guess alone holds 22, 11/s) and the slow start's window with the answers to
    the grants it let lapse, so the whole run keeps 0.90 of the rate (0.79 with neither)."""
    run = await drive(
        RateGate(40.0), ModelServer([(0.0, None)]), sessions=1200, concurrency="auto", latency=2.0
    )
    assert 1200 / (run.finished - 2.0) >= 0.90 * 40
    assert run.slots is not None and run.slots.limit == needed(40.0, run.slots.answer_time)


def test_auto_measures_from_the_send_time_on_its_own_clock() -> None:
    """An answer without a time is on the slots' clock; the first one replaces the guess,
    each later one weighs 1/32 of the moving mean."""
    now = [100.2]
    slots = Slots.auto(lambda: 400.0, clock=lambda: now[0])
    slots.sending(100.0)
    slots.answered(100.0)  # taken 0.2 s
    assert slots.answer_time == pytest.approx(0.2)
    now[0] = 101.0
    slots.answered(100.6)  # taken 0.4 s
    assert slots.answer_time == pytest.approx(0.2 + (0.4 - 0.2) / 32)
    slots.answered(100.0, 100.2)  # a time given wins over the clock
    assert slots.answer_time == pytest.approx(0.20625 + (0.2 - 0.20625) / 32)
