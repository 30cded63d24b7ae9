"""``work --metrics-port``: three workers on one queue, each scraped as Prometheus would.

Their counters add up to what the simulator received and what their result logs hold, the
queue gauges fall to 0 as the queue drains, and ``/readyz`` follows Redis away and back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Simulator, cli_env, session_results
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from worker.errors import ConfigError
from worker.fleet.enqueue import enqueue
from worker.fleet.options import FleetOptions, _host_port

STREAM = "devin-terminate:ids"
SESSIONS = 120


def _worker(sim: Simulator, server: RedisServer, tmp: Path, name: str) -> subprocess.Popen[str]:
    args = ["work", "--redis", server.url, "--consumer", name, "--results", f"{name}.jsonl"]
    args += ["--rate", "50", "--org-rate", "120", "--redis-timeout", "60"]
    args += ["--metrics-port", "127.0.0.1:0"]
    with open(tmp / f"{name}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=cli_env(sim),
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def _until(what: str, check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _port(err: Path) -> int | None:
    for line in err.read_text().splitlines():
        if '"metrics.serving"' in line:
            return int(json.loads(line)["port"])
    return None


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {labels: value}, through Prometheus' own parser."""
    status, text = _get(port, "/metrics")
    assert status == 200
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def _total(scrapes: list[dict[str, Any]], name: str, label: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for scrape in scrapes:
        for labels, value in scrape.get(name, {}).items():
            total[dict(labels)[label]] += int(value)
    return total


def _queue(port: int) -> tuple[float, float, float]:
    s = _scrape(port)
    return tuple(  # type: ignore[return-value]
        s[f"devin_terminate_queue_{name}"][()]
        for name in ("entries", "pending_entries", "oldest_pending_age_seconds")
    )


@pytest.mark.subprocess
def test_three_workers_show_requests_results_queue_and_readiness(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    sim = simulator("--sessions", str(SESSIONS), "--latency-ms", "5")
    assert enqueue(FleetOptions(redis_server.url, None, STREAM), [str(sim.ids_path)]).enqueued
    names = ("w0", "w1", "w2")
    procs = [_worker(sim, redis_server, tmp_path, name) for name in names]
    try:
        ports = [_until("serving", lambda n=n: _port(tmp_path / f"{n}.err")) for n in names]
        assert all(proc.poll() is None for proc in procs)
        early = max(_queue(port)[0] for port in ports)
        assert early > 0  # 120 queued, drained at 120/s
        logs = [tmp_path / f"{name}.jsonl" for name in names]
        _until("every id settled", lambda: sum(len(_results(p)) for p in logs) >= SESSIONS)
        for port in ports:
            assert _until("queue drained", lambda p=port: _queue(p) == (0, 0, 0))
        scrapes = [_scrape(port) for port in ports]
        requests = _total(scrapes, "devin_terminate_requests_total", "method")
        stats = sim.stats()
        assert requests == Counter(stats["requests_by_method"])
        classes: Counter[str] = Counter()  # the simulator counts by status, we by class
        for status, count in stats["requests_by_status"].items():
            classes[f"{status[0]}xx"] += count
        assert _total(scrapes, "devin_terminate_requests_total", "status_class") == classes
        outcomes = Counter(r["outcome"] for p in logs for r in _results(p))
        assert _total(scrapes, "devin_terminate_results_total", "outcome") == outcomes
        assert sum(outcomes.values()) == SESSIONS
        assert _alerted("devin-terminate-fleet") <= set(scrapes[0])  # the example rules' names
        _readiness_follows_redis(redis_server, ports)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


def _readiness_follows_redis(server: RedisServer, ports: list[int]) -> None:
    assert all(_get(port, "/readyz")[0] == 200 for port in ports)
    server.kill()
    gone = time.monotonic()
    for port in ports:
        _until("not ready", lambda p=port: _get(p, "/readyz")[0] == 503, timeout=5)
        assert _get(port, "/healthz") == (200, "ok\n")  # alive all the same
    assert time.monotonic() - gone < 5
    assert _scrape(ports[0])["devin_terminate_ready"][()] == 0
    server.start()
    for port in ports:
        _until("ready again", lambda p=port: _get(p, "/readyz")[0] == 200, timeout=10)


def _alerted(group: str) -> set[str]:
    import re

    import yaml

    alerts = yaml.safe_load((REPO / "config" / "alerts.yml").read_text())
    rules = next(g for g in alerts["groups"] if g["name"] == group)["rules"]
    return {n for rule in rules for n in re.findall(r"devin_terminate_\w+", rule["expr"])}


def _results(path: Path) -> list[dict[str, Any]]:
    return session_results(path, strict=False) if path.exists() else []


@pytest.mark.parametrize(
    ("given", "expected"),
    [("9464", ("", 9464)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:9464", ("::1", 9464))],
)
def test_metrics_port_takes_a_port_or_host_and_port(given: str, expected: tuple[str, int]) -> None:
    assert _host_port(given) == expected


@pytest.mark.parametrize("given", ["", "host:", "99999", "host:http", "-1"])
def test_metrics_port_refuses_what_is_no_port(given: str) -> None:
    with pytest.raises(ConfigError, match="--metrics-port"):
        _host_port(given)
