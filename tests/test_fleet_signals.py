"""SIGTERM drains a long-running worker as it drains `run`; the rest waits in the queue."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from conftest import session_results
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture
from test_fleet_e2e import (
    _assert_one_final_each,
    _enqueue_now,
    _finish,
    _wait_for_results,
    _worker,
)


def test_sigterm_drains_and_a_restart_finishes(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    sim = simulator("--sessions", "60", "--latency-ms", "50")
    assert _enqueue_now(redis_server, sim.ids_path) == 60
    slow = ("--rate", "20", "--concurrency", "2")
    proc = _worker(sim, redis_server, tmp_path, "w0", *slow)
    _wait_for_results(tmp_path / "w0.jsonl", 5)
    proc.send_signal(signal.SIGTERM)
    assert _finish([proc]) == [143]
    first = session_results(tmp_path / "w0.jsonl")
    assert 5 <= sum(r["outcome"] == "terminated" for r in first) < 60
    # in flight: drained to an answer; waiting for the gate: not sent, left pending
    assert {r["outcome"] for r in first} <= {"terminated", "cancelled"}
    assert all(r["error"].startswith("not sent") for r in first if r["outcome"] == "cancelled")

    assert _finish([_worker(sim, redis_server, tmp_path, "w0", "--rate", "0")]) == [0]
    _assert_one_final_each(redis_server, sim.ids())
    assert max(sim.stats()["deletes_by_session"].values()) == 1
