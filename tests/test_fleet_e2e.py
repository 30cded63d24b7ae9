"""The fleet end to end: workers as subprocesses, a real Redis, the simulator on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from conftest import Simulator, cli_env, run_cli, session_results
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.fleet.enqueue import enqueue
from worker.fleet.options import FleetOptions
from worker.fleet.work import run_worker
from worker.outcomes import FINAL_OUTCOMES
from worker.settings import load_settings

STREAM = "devin-terminate:ids"


def _worker(
    sim: Simulator, server: RedisServer, tmp: Path, name: str, *extra: str
) -> subprocess.Popen[str]:
    args = ["work", "--redis", server.url, "--until-empty", "--consumer", name]
    args += ["--results", str(tmp / f"{name}.jsonl"), "--claim-idle", "2", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=cli_env(sim),
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_results(path: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count('"session.result"') >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} results")


def _finish(procs: list[subprocess.Popen[str]]) -> list[int]:
    codes = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:  # say what it was doing, rather than only time out
            proc.kill()
            _, err = proc.communicate()
            print("did not finish:", err[-6000:])
        print(err[-3000:])
        codes.append(proc.returncode)
    return codes


def _fleet_results(server: RedisServer) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        entries = client.xrange(f"{STREAM}:results")
        return [json.loads(line) for _, f in entries for line in f["records"].splitlines()]
    finally:
        client.close()


def _queue_state(server: RedisServer) -> tuple[int, int]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return client.xlen(STREAM), client.xpending(STREAM, "devin-terminate")["pending"]
    finally:
        client.close()


def _enqueue(
    sim: Simulator, server: RedisServer, tmp: Path, *inputs: str, stdin: str | None = None
) -> Any:
    args = ["enqueue", *inputs, "--redis", server.url]
    return run_cli(args, cli_env(sim), cwd=tmp, stdin=stdin)


def _enqueue_now(server: RedisServer, path: Path) -> int:
    """In-process: no interpreter start-up where the CLI is not what is tested."""
    return enqueue(FleetOptions(server.url, None, STREAM), [str(path)]).enqueued


def _assert_one_final_each(server: RedisServer, ids: list[str]) -> None:
    records = [r for r in _fleet_results(server) if r["outcome"] in FINAL_OUTCOMES]
    # a DELETE re-sent after a crash is reconciled as ours, never "already_terminated"
    assert {r["outcome"] for r in records} == {"terminated"}
    finals = Counter(r["session_id"] for r in records)
    assert set(finals) == set(ids)
    assert max(finals.values()) == 1
    assert _queue_state(server) == (0, 0)  # nothing queued, nothing pending


def test_three_workers_one_killed_then_requeued(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    limit, burst = 150, 15
    sim = simulator(
        "--sessions",
        "240",
        "--rate-limit",
        str(limit),
        "--rate-burst",
        str(burst),
        "--latency-ms",
        "20",
    )
    stdin = f"{sim.ids()[0]}\nnot-a-session\n"  # `list ... | enqueue -` style
    done = _enqueue(sim, redis_server, tmp_path, str(sim.ids_path), "-", stdin=stdin)
    assert done.returncode == 1  # an invalid line, reported with its file and line
    assert "source=-:2" in done.stderr  # the invalid line, named by file and line
    assert "enqueued 240 ids" in done.stderr
    assert _enqueue_now(redis_server, sim.ids_path) == 240  # the next hour's batch, meanwhile

    fleet = ("--rate", "0", "--org-rate", str(limit), "--burst", "6", "--concurrency", "6")
    procs = [_worker(sim, redis_server, tmp_path, f"w{i}", *fleet) for i in range(3)]
    _wait_for_results(tmp_path / "w0.jsonl", 15)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate(timeout=10)
    procs[0] = _worker(sim, redis_server, tmp_path, "w0", *fleet)  # restarted under its name
    assert _finish(procs) == [0, 0, 0]

    _assert_one_final_each(redis_server, sim.ids())
    stats = sim.stats()
    assert stats["peak_requests_per_second"] <= limit + burst
    assert set(stats["deletes_by_session"].values()) == {1}  # enqueued twice, sent once
    every_log = [r for p in tmp_path.glob("w*.jsonl") for r in session_results(p, strict=False)]
    assert {r["session_id"] for r in every_log} == set(sim.ids())

    # enqueued again after being settled: acknowledged, never sent again (in-process, fast)
    options = FleetOptions(redis_server.url, None, STREAM, consumer="w9", until_empty=True)
    assert enqueue(options, [str(sim.ids_path)]).enqueued == 240
    settings = load_settings(
        {"results": str(tmp_path / "w9.jsonl"), "rate": 0},
        environ=cli_env(sim),
    )
    report = run_worker(settings, options)
    assert report.counts == {"skipped": 240}
    assert sim.stats()["deletes_total"] == stats["deletes_total"]  # no DELETE sent again
    _assert_one_final_each(redis_server, sim.ids())


def test_enqueue_quiet_says_nothing_on_a_clean_run(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    sim = simulator("--sessions", "5")
    done = run_cli(
        ["enqueue", str(sim.ids_path), "--redis", redis_server.url, "-q"],
        cli_env(sim, DEVIN_TERMINATE_LOG_FORMAT="console"),
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.xlen(STREAM) == len(sim.ids())
    finally:
        client.close()


def test_enqueue_reads_an_input_in_the_encoding_it_is_given(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    ids = [f"devin-{n:032x}" for n in range(3)]
    text = "session_id;owner\n" + "".join(f"{sid};Müller\n" for sid in ids)
    (tmp_path / "sheet.csv").write_bytes(text.encode("utf-16-le"))  # no BOM: only the flag says
    args = ["enqueue", "sheet.csv", "--redis", redis_server.url, "-q"]
    done = run_cli([*args, "--encoding", "utf-16-le"], cli_env(), cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        queued = [fields["id"] for _, fields in client.xrange(STREAM)]
    finally:
        client.close()
    assert queued == ids
