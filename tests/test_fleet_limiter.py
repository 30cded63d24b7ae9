"""The org-wide limiter against a real Redis: one limit for N workers, a shared pause and cut."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.fleet.connect import limiter_key, open_redis
from worker.fleet.gate import FleetGate
from worker.fleet.lifeline import Lifeline
from worker.fleet.limiter import SharedLimiter

RATE, BURST = 60.0, 3


Make = Callable[[str], SharedLimiter]


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[Make]:  # noqa: F811
    """Limiters on the test's Redis, each on a client of its own, closed whatever the test
    did (a client left open is collected in a later test, on a closed loop)."""
    made: list[SharedLimiter] = []

    def make(key: str) -> SharedLimiter:
        redis = open_redis(redis_server.url)
        made.append(SharedLimiter(redis, Lifeline(redis_server.url, 5), key, RATE, burst=BURST))
        return made[-1]

    yield make
    for limiter in made:
        await limiter._redis.aclose()


async def _hammer(limiter: SharedLimiter, until: float, grants: list[float]) -> None:
    while time.monotonic() < until:
        await limiter.acquire()
        grants.append(time.monotonic())


def _peak(grants: list[float]) -> int:
    grants.sort()
    peak, start = 0, 0
    for end, at in enumerate(grants):
        while at - grants[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def test_workers_share_one_limit(limiters: Make) -> None:
    key = limiter_key("org-test", "http://127.0.0.1:1")
    workers = [limiters(key) for _ in range(3)]
    grants: list[float] = []
    until = time.monotonic() + 1.5
    # three workers, each with four tasks asking at once: the org still gets RATE + BURST
    await asyncio.gather(*(_hammer(w, until, grants) for w in workers for _ in range(4)))
    # stamped on this side when acquire returns: on a loaded machine a few grants can be
    # stamped late, across the edge of a one-second window (the limit holds on Redis's
    # clock; the e2e test checks it at the server)
    assert _peak(grants) <= RATE + BURST + 5
    assert len(grants) >= 0.8 * RATE * 1.5  # the limit is used, not just respected
    assert all(w.grants > 0.1 * len(grants) for w in workers)  # every worker gets a share
    trips = sum(w.round_trips for w in workers) / len(grants)
    assert trips < 1.0  # a tenth of a second's worth a call (three workers share 60/s here)


async def test_a_pause_stops_every_worker(limiters: Make) -> None:
    key = limiter_key("org-test", "http://127.0.0.1:2")
    one, other = limiters(key), limiters(key)
    await one.acquire()
    started = time.monotonic()  # before the report: the pause runs on Redis's clock from it
    await one.pause(0.3)  # one worker's controller decided a pause (a wave of 429s)
    await other.acquire()
    assert time.monotonic() - started >= 0.28  # the other worker waited it out


async def test_a_flushed_script_cache_is_reloaded(limiters: Make) -> None:
    limiter = limiters(limiter_key("org-test", "http://127.0.0.1:3"))
    await limiter.acquire()
    await limiter._redis.script_flush()
    limiter._spare.clear()  # no slot reserved ahead: the next grant asks Redis
    await limiter.acquire()  # NOSCRIPT: loaded again, sent again
    assert limiter.grants == 2


@contextlib.asynccontextmanager
async def _two_workers(limiters: Make, port: int) -> AsyncIterator[tuple[FleetGate, FleetGate]]:
    """The gates of two workers under one fleet limit (on a key of their own)."""
    key = limiter_key("org-test", f"http://127.0.0.1:{port}")
    one, other = FleetGate(limiters(key), RATE), FleetGate(limiters(key), RATE)
    try:
        yield one, other
    finally:
        await one.aclose()
        await other.aclose()


async def test_the_fleet_runs_one_controller_with_its_state_in_redis(limiters: Make) -> None:
    async with _two_workers(limiters, 4) as (one, other):
        # one worker's cut opens the next generation; the other adopts it from any reply
        assert await one.shared.decide("cut", 0, 30.0, 32.0)
        await other.shared.acquire()
        assert (other.rate, other.limit, other.generation) == (30.0, 32.0, 1)
        # the other's measure of the same wave, made before it knew: the cut is the mean
        assert await other.shared.decide("cut", 0, 50.0, 52.0)
        assert one.shared.state is not None and other.shared.state is not None
        assert (other.shared.state.generation, other.shared.state.rate) == (1, 40.0)
        # a worker measuring a 429 stops the others' probes higher
        assert await one.shared.decide("measure", 1, 0.0, 0.0)
        assert not await other.shared.decide("probe", 1, 55.0, 42.0)
        # a decision made in a generation that has gone by is refused
        assert not await other.shared.decide("probe", 0, 58.0, 42.0)
        await one.shared.acquire()
        assert one.shared.state.rate == 40.0 and one.rate == 40.0  # one adopted the mean


async def test_a_probe_the_fleet_refuses_is_taken_back_here(limiters: Make) -> None:
    async with _two_workers(limiters, 5) as (one, other):
        assert await one.shared.decide("cut", 0, 30.0, 32.0)
        await other.shared.acquire()
        assert other.rate == 30.0
        assert await one.shared.decide("measure", 1, 0.0, 0.0)  # one measures a 429
        assert other._control is not None
        other._control.rate = 33.0  # the other's controller probed higher meanwhile...
        other._deciding += 1  # (as _apply counts a decision on its way)
        await other._send("probe", 1, 33.0, 32.0)  # ...and the fleet refused it
        assert other.rate == 30.0 and other._deciding == 0
