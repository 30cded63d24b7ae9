"""The stream reader against a real Redis: what it sends, skips, drops and keeps alive."""

from __future__ import annotations

import asyncio

from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.fleet.connect import Keys, open_redis
from worker.fleet.lease import ReadOptions
from worker.fleet.lifeline import Lifeline
from worker.fleet.reader import StreamReader
from worker.outcomes import Tally

GOOD, SETTLED = "devin-good1", "devin-done1"


async def test_reader_sends_new_ids_once_and_acknowledges_the_rest(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = open_redis(redis_server.url)
    keys = Keys("q")
    tally = Tally()
    options = ReadOptions(group="g", consumer="c1", until_empty=True, claim_idle_ms=60_000)
    reader = StreamReader(redis, Lifeline(redis_server.url, 5), keys, options, tally)
    await reader.open()
    await redis.hset(keys.settled, SETTLED, "terminated")
    await redis.hset(keys.claims, GOOD, "0 1-0 c0")  # a lapsed claim: it may have been sent
    for fields in (
        {"id": GOOD, "src": "a.csv:2"},
        {"id": GOOD, "src": "a.csv:3"},  # the same id twice: sent once
        {"id": SETTLED, "src": "a.csv:4"},  # settled by another worker: never sent
        {"id": "devin-../admin", "src": "a.csv:5"},  # hostile: never sent
        {"other": "x"},  # not ours
    ):
        await redis.xadd(keys.stream, fields)
    items = [item async for item in reader.items()]
    assert [(i.session_id, i.source) for i in items] == [(GOOD, "a.csv:2")]
    assert GOOD in reader.uncertain and len(reader.inflight[GOOD]) == 2
    assert tally.counts["skipped"] == 1
    pending = await redis.xpending(keys.stream, "g")
    assert pending["pending"] == 2  # only the two entries of the id in flight
    assert await redis.xlen(keys.stream) == 2

    await asyncio.sleep(0.2)
    await reader._touch()  # what keep_alive does every third of the name's lease
    rows = await redis.xpending_range(keys.stream, "g", min="-", max="+", count=10)
    assert all(row["time_since_delivered"] < 150 for row in rows)
    assert all(row["times_delivered"] == 1 for row in rows)  # JUSTID: not a new delivery
    await redis.aclose()
