"""Failures across the fleet: reported with their reasons, requeued by id, sent again."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import cli_env
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.errors import AuthError
from worker.fleet.enqueue import enqueue
from worker.fleet.options import FleetOptions
from worker.fleet.report import disagreements, print_summary, summarise
from worker.fleet.work import run_worker
from worker.settings import load_settings


def test_failed_ids_are_reported_and_can_be_requeued(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    doomed = "devin-doomed0"  # unknown to the server; its first three answers are 500s
    sim = simulator("--sessions", "3", "--fault-script", f"{doomed}=500,500,500")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*sim.ids(), doomed]) + "\n")
    options = FleetOptions(redis_server.url, None, "q", consumer="c1", until_empty=True)
    assert enqueue(options, [str(ids)]).enqueued == 4
    flags = {"results": str(tmp_path / "r.jsonl"), "rate": 0, "max_attempts": 2}
    settings = load_settings(flags, environ=cli_env(sim))
    assert run_worker(settings, options).counts == {"terminated": 3, "failed": 1}

    summary = summarise(options)
    assert dict(summary.counts) == {"terminated": 3, "failed": 1}
    assert len(summary.finals) == 3 and max(summary.finals.values()) == 1
    table = io.StringIO()
    print_summary(summary, "table", (), table)
    assert f"failed {doomed}: gave up after 2 attempts" in table.getvalue()
    failed_ids = io.StringIO()
    print_summary(summary, "ids", ("failed",), failed_ids)
    assert failed_ids.getvalue() == f"{doomed}\n"

    requeue = tmp_path / "failed.txt"
    requeue.write_text(failed_ids.getvalue())
    assert enqueue(options, [str(requeue)]).enqueued == 1
    settings = load_settings({**flags, "max_attempts": 3}, environ=cli_env(sim))
    # sent again: one more 500, then the server's 404, checked with a GET (the 5xx may
    # have gone through): not_found, final
    assert run_worker(settings, options).counts == {"not_found": 1}
    after = summarise(options)
    assert dict(after.counts) == {"terminated": 3, "not_found": 1}
    assert set(after.finals.values()) == {1} and (after.queued, after.pending) == (0, 0)

    # a worker whose token is refused stops before it takes anything off the queue
    assert enqueue(options, [str(requeue)]).enqueued == 1
    env = {**cli_env(sim), "DEVIN_API_KEY": "cog_wrong"}
    with pytest.raises(AuthError):
        run_worker(load_settings(flags, environ=env), options)
    assert (summarise(options).queued, summarise(options).pending) == (1, 0)

    # Redis restarted without its data: the report claims nothing, and says why
    assert disagreements(summarise(options), [str(tmp_path / "r.jsonl")]) == []
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.xadd("q", {"id": doomed, "src": "x"})  # the next hour's enqueue of an older version
    client.close()
    emptied = summarise(options)
    assert (len(emptied.latest), emptied.enqueued) == (0, None)
    warnings = disagreements(emptied, [str(tmp_path / "r.jsonl")])
    assert "marker is missing" in warnings[0]
    assert "the result logs settle 4 ids, Redis 0" in warnings[1]
