"""Failures across the fleet: reported with their reasons, requeued by id, sent again."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from conftest import cli_env
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.fleet.enqueue import enqueue
from worker.fleet.options import FleetOptions
from worker.fleet.report import print_summary, summarise
from worker.fleet.work import run_worker
from worker.settings import load_settings


def test_failed_ids_are_reported_and_can_be_requeued(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    probe = simulator("--sessions", "4")
    doomed = probe.ids()[0]
    sim = simulator("--sessions", "4", "--fault-script", f"{doomed}=500,500,500")
    assert sim.ids()[0] == doomed  # same seed, same population
    options = FleetOptions(redis_server.url, None, "q", consumer="c1", until_empty=True)
    assert enqueue(options, [str(sim.ids_path)]).enqueued == 4
    flags = {"results": str(tmp_path / "r.jsonl"), "rate": 0, "max_attempts": 2}
    settings = load_settings(flags, environ=cli_env(sim))
    assert run_worker(settings, options).counts == {"terminated": 3, "failed": 1}

    summary = summarise(options)
    assert dict(summary.counts) == {"terminated": 3, "failed": 1}
    table = io.StringIO()
    print_summary(summary, "table", None, table)
    assert f"failed {doomed}: gave up after 2 attempts" in table.getvalue()
    ids = io.StringIO()
    print_summary(summary, "ids", "failed", ids)
    assert ids.getvalue() == f"{doomed}\n"

    requeue = tmp_path / "failed.txt"
    requeue.write_text(ids.getvalue())
    assert enqueue(options, [str(requeue)]).enqueued == 1
    settings = load_settings({**flags, "max_attempts": 3}, environ=cli_env(sim))
    assert run_worker(settings, options).counts == {"terminated": 1}
    assert dict(summarise(options).counts) == {"terminated": 4}
