"""``make demo-fleet``: three workers drain one queue against the simulator, one org limit.

Everything runs on loopback: the simulator in a thread, a throw-away Redis server
(`worker.fleet.server`), ``enqueue`` in-process and the workers as real ``work``
subprocesses. `drain` is also the harness of ``bench/fleet.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.fleet.enqueue import enqueue
from worker.fleet.options import FleetOptions
from worker.fleet.report import summarise
from worker.fleet.server import LocalRedis
from worker.output.history import json_objects
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import simulator_in_thread

STREAM = "devin-terminate:ids"
_CONCURRENCY = 8  # requests in flight per worker
_LATENCY_MS = 15.0  # the simulator's answer time
_NOT_COUNTED = ("cmdstat_info", "cmdstat_config|resetstat")  # the measurement's own calls


@dataclass(frozen=True, slots=True)
class Drained:
    workers: int
    ids: int
    limit: float
    wall_s: float
    exit_codes: list[int]
    outcomes: dict[str, int]
    stats: dict[str, Any]
    requests: int  # requests the workers sent
    round_trips: int  # Redis round trips (every command the workers sent; a script call is one)
    max_finals_per_id: int  # final records of one id in the fleet's results stream
    left: int  # entries still queued or pending at the end
    # every command Redis ran while the workers drained, the scripts' own included (INFO
    # commandstats, reset once the ids were enqueued; the INFO call itself left out)
    redis_commands: int = 0

    @property
    def deletes(self) -> int:
        """DELETE requests the server saw."""
        return int(self.stats["requests_by_method"].get("DELETE", 0))

    @property
    def commands_per_delete(self) -> float:
        """Redis commands (``INFO commandstats``, the scripts' own included) per DELETE."""
        return self.redis_commands / max(1, self.deletes)

    @property
    def body_s(self) -> float:
        first, last = self.stats.get("first_request_at"), self.stats.get("last_request_at")
        return float(last) - float(first) if first is not None and last is not None else 0.0

    @property
    def accepted_share_of_limit(self) -> float:
        accepted = int(self.stats["requests_total"]) - int(self.stats["throttled"])
        return accepted / self.body_s / self.limit if self.body_s else 0.0

    @property
    def throttled_share(self) -> float:
        return int(self.stats["throttled"]) / max(1, int(self.stats["requests_total"]))


def drain(
    *,
    workers: int,
    sessions: int,
    limit: float,
    org_rate: float,
    directory: Path,
    kill_after: float | None = None,
) -> Drained:
    """Enqueue ``sessions`` ids, drain them with ``workers`` workers, and measure.

    ``kill_after`` seconds in, worker 0 is SIGKILLed and restarted under its name."""
    config = SimulatorConfig(
        sessions=sessions, seed=11, rate_limit=limit, latency_ms=_LATENCY_MS, exit_ratio=0.0
    )
    redis = LocalRedis(directory / "redis")
    (directory / "redis").mkdir(parents=True, exist_ok=True)
    redis.start()
    try:
        with simulator_in_thread(config) as sim:
            ids = directory / "ids.txt"
            config_ids = list(sim.sessions)
            ids.write_text("\n".join(config_ids) + "\n")
            enqueue(FleetOptions(redis.url, None, STREAM), [str(ids)])
            _commandstats(redis.url, reset=True)
            env = {**os.environ, "DEVIN_API_KEY": config.token, "DEVIN_ORG_ID": config.org_id}
            env |= {"DEVIN_API_URL": sim.base_url, "DEVIN_TERMINATE_LOG_FORMAT": "json"}
            started = time.monotonic()
            procs = [_start_worker(redis.url, directory, n, org_rate, env) for n in range(workers)]
            if kill_after is not None:  # SIGKILL worker 0 mid-run, restart it under its name
                time.sleep(kill_after)
                procs[0].kill()
                procs[0].communicate(timeout=60)
                procs[0] = _start_worker(redis.url, directory, 0, org_rate, env)
            logs = [proc.communicate(timeout=3600)[1] for proc in procs]
            wall = time.monotonic() - started
            stats = sim.stats.snapshot()
        commands = _commandstats(redis.url)
        summary = summarise(FleetOptions(redis.url, None, STREAM))
    finally:
        redis.stop()
    finished = [_event(log, "work.finished") for log in logs]
    return Drained(
        workers=workers,
        ids=len(config_ids),
        limit=limit,
        wall_s=wall,
        exit_codes=[proc.returncode for proc in procs],
        outcomes=dict(summary.counts),
        stats=stats,
        requests=sum(int(f.get("requests", 0)) for f in finished),
        round_trips=sum(int(f.get("redis_round_trips", 0)) for f in finished),
        max_finals_per_id=max(summary.finals.values(), default=0),
        left=summary.queued + summary.pending,
        redis_commands=commands,
    )


def _commandstats(url: str, *, reset: bool = False) -> int:
    """The calls of every command in ``INFO commandstats`` (the INFO calls left out);
    ``reset``: zero them first (``CONFIG RESETSTAT``)."""
    from redis import Redis

    with Redis.from_url(url) as client:
        if reset:
            client.config_resetstat()
        stats: dict[str, dict[str, int]] = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in _NOT_COUNTED)


def _start_worker(
    url: str, directory: Path, n: int, rate: float, env: dict[str, str]
) -> subprocess.Popen[str]:
    args = ["work", "--redis", url, "--until-empty", "--consumer", f"worker-{n}"]
    args += ["--results", str(directory / f"worker-{n}.jsonl"), "--rate", str(rate)]
    args += ["--concurrency", str(_CONCURRENCY), "--claim-idle", "5"]
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _event(log: str, name: str) -> dict[str, Any]:
    """The first JSON log line of the event ``name`` in a worker's stderr, or {}."""
    lines = (line for line in log.splitlines() if f'"{name}"' in line)
    return next(json_objects(lines), {})


def main() -> int:
    limit = 100.0
    with tempfile.TemporaryDirectory(prefix="devin-terminate-fleet-") as tmp:
        print(f"3 workers, 600 sessions, server limit {limit:g}/s, org rate {limit:g}/s ...")
        run = drain(workers=3, sessions=600, limit=limit, org_rate=limit, directory=Path(tmp))
        per_worker = Counter(
            f"worker-{n}"
            for n in range(3)
            for line in (Path(tmp) / f"worker-{n}.jsonl").read_text().splitlines()
            if '"session.result"' in line
        )
    print(f"outcomes across the fleet: {run.outcomes}")
    print(f"results per worker:        {dict(per_worker)}")
    print(f"exit codes:                {run.exit_codes}")
    print(f"wall time:                 {run.wall_s:.1f} s ({run.body_s:.1f} s sending)")
    print(f"accepted / limit:          {run.accepted_share_of_limit:.2f}")
    print(f"peak 1-s rate at server:   {run.stats['peak_requests_per_second']} (limit {limit:g})")
    print(f"429 share:                 {run.throttled_share:.1%}")
    print(f"Redis round trips/req:     {run.round_trips / max(1, run.requests):.2f}")
    print(f"Redis commands/DELETE:     {run.commands_per_delete:.2f}")
    ok = run.exit_codes == [0, 0, 0] and sum(run.outcomes.values()) == run.ids
    print("demo-fleet: OK, every id settled once" if ok else "demo-fleet: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
