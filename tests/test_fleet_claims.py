"""Claims and names against a real Redis: one id is taken by one worker, one name by one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.fleet.connect import Keys, open_redis
from worker.fleet.lease import ConsumerClash, ReadOptions
from worker.fleet.lifeline import Lifeline, QueueLost
from worker.fleet.reader import StreamReader
from worker.fleet.sink import FleetSink
from worker.outcomes import SessionResult, Tally

Make = Callable[..., StreamReader]


@pytest.fixture
async def readers(redis_server: RedisServer) -> AsyncIterator[Make]:  # noqa: F811
    made: list[StreamReader] = []

    def make(name: str, **options: Any) -> StreamReader:
        redis = open_redis(redis_server.url)
        read = ReadOptions(group="g", consumer=name, until_empty=True, **options)
        reader = StreamReader(redis, Lifeline(redis_server.url, 5), Keys("q"), read, Tally())
        made.append(reader)
        return reader

    yield make
    for reader in made:
        await reader.redis.aclose()


async def _take(reader: StreamReader) -> list[str]:
    """What ``items`` hands on, pass by pass (claim, read new, admit) until nothing comes;
    without its wait for the others' pending entries, which these workers never settle."""
    taken: list[str] = []
    while True:
        entries = await reader._call("claim", reader._claim) if reader._claim_due() else []
        entries += await reader._call("read", reader._read, ">")
        if not entries:
            return taken
        taken += [item.session_id or "" for item in await reader._admit(entries)]


async def test_ids_enqueued_twice_are_taken_by_one_worker_each(readers: Make) -> None:
    workers = [readers(f"w{n}", batch=7) for n in range(3)]
    for reader in workers:
        await reader.open()
    ids = [f"devin-{n:04d}" for n in range(120)]
    redis = workers[0].redis
    for session_id in ids + ids:  # `list | enqueue -` twice while the first batch drains
        await redis.xadd("q", {"id": session_id, "src": "x"})

    taken = await asyncio.gather(*(_take(reader) for reader in workers))

    every = [session_id for batch in taken for session_id in batch]
    assert sorted(every) == ids  # each id handed to one worker, once
    assert all(taken)  # the three shared the work
    duplicates = sum(reader._tally.counts["skipped"] for reader in workers)
    in_flight = sum(len(e) for reader in workers for e in reader.inflight.values())
    # every second entry was acknowledged unsent, or rides with its id in flight
    assert duplicates + in_flight == 2 * len(ids)
    assert duplicates > 0  # the race of the issue: second entries met another worker's claim
    assert (await redis.xpending("q", "g"))["pending"] == in_flight
    assert not any(reader.uncertain for reader in workers)  # nobody sent them before


async def test_a_dead_workers_claim_lapses_and_is_reconciled(readers: Make) -> None:
    dead, alive = readers("dead", claim_idle_ms=300), readers("alive", claim_idle_ms=300)
    await dead.open()
    await alive.open()
    await dead.redis.xadd("q", {"id": "devin-aaa", "src": "x"})
    assert await _take(dead) == ["devin-aaa"]  # then it dies: no keep-alive, no settle
    await dead.redis.xadd("q", {"id": "devin-aaa", "src": "again"})
    assert await _take(alive) == []  # the second entry, while the claim lives: not sent
    assert alive._tally.counts["skipped"] == 1

    await asyncio.sleep(0.35)  # the entry turns claimable, its claim has lapsed
    alive._next_claim = 0.0
    assert await _take(alive) == ["devin-aaa"]
    assert alive.uncertain == {"devin-aaa"}  # a DELETE may have gone: reconciled by a GET


async def test_a_second_live_worker_with_the_same_name_is_refused(readers: Make) -> None:
    first, second = readers("same"), readers("same")
    await first.open()
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ConsumerClash, match="another live worker is named 'same'"):
        await second.open(clock=lambda: now[0], sleep=sleep)
    assert now[0] >= first.options.name_lease_ms / 1000  # it waited for the name one lease

    await first.close()  # a worker that stops frees its name at once
    await second.open(clock=lambda: now[0], sleep=sleep)


async def test_a_queue_emptied_under_the_workers_is_lost(readers: Make) -> None:
    reader = readers("w0")
    await reader.open()
    await reader.redis.flushdb()  # what a Redis restarted without persistence holds
    await reader.redis.xadd("q", {"id": "devin-bbb", "src": "x"})
    with pytest.raises(QueueLost, match="was lost"):
        await _take(reader)
    assert reader.lifeline.lost.is_set()


async def _commands(redis: Any) -> int:
    """Every command Redis ran since the last ``CONFIG RESETSTAT``, scripts' own included
    (``INFO commandstats``, less the INFO and RESETSTAT calls themselves)."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


async def test_a_batch_costs_a_fixed_number_of_commands_whatever_its_size(readers: Make) -> None:
    """The issue's reading: Redis commands per DELETE from INFO commandstats, which counts
    what the scripts run inside Redis too; per-id commands there would be several per id."""
    reader = readers("w0", batch=200)
    await reader.open()
    redis = reader.redis
    ids = [f"devin-{n:04d}" for n in range(200)]
    for session_id in ids + ids[:50]:  # 50 enqueued twice: their second entries dropped
        await redis.xadd("q", {"id": session_id, "src": "x"})
    sink = FleetSink(None, reader)  # type: ignore[arg-type] # no log: _send is Redis alone
    await redis.config_resetstat()

    taken = await _take(reader)
    results = [
        SessionResult(sid, "failed" if n % 10 == 0 else "terminated") for n, sid in enumerate(taken)
    ]
    await sink._send([(r, reader.inflight.pop(r.session_id or "")) for r in results])

    assert sorted(taken) == ids
    assert (await redis.xlen("q")) == 0  # every entry acknowledged and deleted
    records = [
        line for _, f in await redis.xrange("q:results") for line in f["records"].splitlines()
    ]
    assert len(records) == 200  # one record per id, in one entry
    # reads (2 XREADGROUP, XAUTOCLAIM), BEGIN, DISCARD, SETTLE: about 30, not 3 per id
    assert await _commands(redis) <= 36


async def test_a_keep_alive_renews_this_workers_claims_and_no_one_elses(readers: Make) -> None:
    worker = readers("w")
    await worker.open()
    await worker.redis.xadd("q", {"id": "devin-aaa", "src": "x"})
    assert await _take(worker) == ["devin-aaa"]
    claims = worker.redis
    held = (await claims.hget("q:sending", "devin-aaa")).split(" ", 1)[1]
    await claims.hset("q:sending", mapping={"devin-aaa": f"1 {held}", "devin-bbb": "1 0-1 other"})
    await worker.lease.renew({"devin-aaa": [], "devin-bbb": []})
    mine, theirs = await claims.hmget("q:sending", ["devin-aaa", "devin-bbb"])
    assert int(mine.split()[0]) > 1 and mine.endswith(" w")  # renewed, still ours
    assert theirs == "1 0-1 other"  # another worker's claim is its own business
