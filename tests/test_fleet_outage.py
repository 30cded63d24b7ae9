"""The fleet when Redis fails: killed and restarted mid-run, or gone past the deadline."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import cli_env, run_cli
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture
from test_fleet_e2e import (
    _assert_one_final_each,
    _enqueue_now,
    _finish,
    _wait_for_results,
    _worker,
)

from worker.errors import ConfigError
from worker.fleet.connect import mask_url, open_redis, read_password


def test_redis_killed_and_restarted_mid_run(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    sim = simulator("--sessions", "160", "--latency-ms", "20")
    assert _enqueue_now(redis_server, sim.ids_path) == 160
    fleet = ("--rate", "0", "--org-rate", "100", "--concurrency", "4", "--redis-timeout", "30")
    procs = [_worker(sim, redis_server, tmp_path, f"w{i}", *fleet) for i in range(2)]
    _wait_for_results(tmp_path / "w0.jsonl", 20)
    redis_server.kill()  # kill -9; the append-only file keeps what it acknowledged
    time.sleep(0.3)
    redis_server.start()
    assert _finish(procs) == [0, 0]
    _assert_one_final_each(redis_server, sim.ids())
    deletes = sim.stats()["deletes_by_session"]
    assert max(deletes.values()) == 1  # nothing sent twice, let alone after a final answer


def test_redis_away_past_the_deadline_exits_3_without_the_password(tmp_path: Path) -> None:
    env = cli_env(
        DEVIN_API_KEY="cog_x",
        DEVIN_ORG_ID="org-x",
        DEVIN_API_URL="http://127.0.0.1:9",
        DEVIN_TERMINATE_REDIS_PASSWORD="hunter2-secret",
    )
    url = "redis://:url-secret@127.0.0.1:9/0"  # port 9 (discard): nothing listens
    args = ["work", "--redis", url, "--redis-timeout", "0.5", "--results", "r.jsonl"]
    done = run_cli(args, env, cwd=tmp_path)
    assert done.returncode == 3
    assert "stayed unreachable" in done.stderr
    assert "redis://:***@127.0.0.1:9/0" in done.stderr
    output = done.stderr + done.stdout + (tmp_path / "r.jsonl").read_text()
    assert "url-secret" not in output and "hunter2-secret" not in output


def test_without_the_redis_extra_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigError, match=r"pipx inject devin-terminate redis"):
        open_redis("redis://127.0.0.1:9/0")


def test_urls_and_passwords(tmp_path: Path) -> None:
    assert mask_url("rediss://user:p%40ss@host:6380/1") == "rediss://user:***@host:6380/1"
    assert mask_url("redis://host:6379/0") == "redis://host:6379/0"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert read_password(str(secret), {"DEVIN_TERMINATE_REDIS_PASSWORD": "env"}) == "from-file"
    assert read_password(None, {"DEVIN_TERMINATE_REDIS_PASSWORD": "env"}) == "env"
    with pytest.raises(ConfigError, match="not a Redis URL"):
        open_redis("http://:pw@host/0")


def test_work_refuses_a_dry_run_that_would_empty_the_queue(tmp_path: Path) -> None:
    from worker.fleet.options import FleetOptions
    from worker.fleet.work import run_worker
    from worker.settings import load_settings

    env = {"DEVIN_API_KEY": "cog_x", "DEVIN_ORG_ID": "org-x"}
    settings = load_settings({"dry_run": True, "results": str(tmp_path / "r.jsonl")}, environ=env)
    with pytest.raises(ConfigError, match="no dry run"):
        run_worker(settings, FleetOptions("redis://127.0.0.1:9/0", None, "q"))
    assert not (tmp_path / "r.jsonl").exists()


def _no_api(**extra: str) -> dict[str, str]:
    return cli_env(
        DEVIN_API_KEY="cog_x", DEVIN_ORG_ID="org-x", DEVIN_API_URL="http://127.0.0.1:9", **extra
    )


def test_a_wrong_or_missing_password_is_refused_at_once(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("requirepass", "right-secret")
    admin.close()
    args = ["work", "--redis", redis_server.url, "--results", "r.jsonl"]
    for env in (_no_api(DEVIN_TERMINATE_REDIS_PASSWORD="wrong-secret"), _no_api()):
        started = time.monotonic()
        done = run_cli(args, env, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert time.monotonic() - started < 5  # not retried as an outage
        assert "refused authentication" in done.stderr
        assert "redis.retry" not in done.stderr
        assert "wrong-secret" not in done.stderr + done.stdout


@pytest.mark.subprocess
def test_a_redis_that_stops_answering_is_an_outage_with_a_deadline(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # accepts, never answers
    try:
        args = ["work", "--redis", redis_server.url, "--redis-timeout", "1", "--results", "r"]
        started = time.monotonic()
        done = run_cli(args, _no_api(), cwd=tmp_path, subprocess=True, timeout=20)
        assert done.returncode == 3, done.stderr
        assert time.monotonic() - started < 1 + 5
        assert "stayed unreachable for more than 1 s" in done.stderr
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
