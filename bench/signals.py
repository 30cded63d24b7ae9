"""Rate-signal scenarios (issue 9): what the shared parts do, and the four runs.

- ``flaky``: 5% of requests answer 503 + ``Retry-After: 1``, no limit; 4,000 ids at
  ``--rate 400``: wall time against the ideal (requests / rate), exit 0.
- ``mixed``: 5,000 ids, 20% transient faults of every kind (5xx, 503 + Retry-After,
  resets, garbage and cut bodies, hangs past ``--timeout``), limit half of ``--rate``.
- ``ceiling``: limit R, ``--rate 10R`` and ``--rate 2R``.
- ``schedule``: the limit drops to half then rises again mid-run.

The accepted rate is taken over the *body* of a run from the simulator's per-second counts
(``requests_per_second`` minus ``throttled_per_second``): the whole seconds that lie
between the first 10% and the last 10% of the accepted requests, so that neither start-up
nor the last stragglers (a few sessions waiting out a Retry-After) count. Each scenario
runs twice.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    ChildUsage,
    Figure,
    Scenario,
    Simulator,
    median,
    read_json_lines,
    run_measured,
    worker_env,
    worker_run_argv,
    write_ids,
)

FINAL = frozenset({"terminated", "archived", "already_terminated", "not_found"})
REPS = 2


@dataclass(slots=True)
class Outcome:
    """One run of the worker against one simulator: its cost and what the simulator saw."""

    usage: ChildUsage
    stats: dict[str, Any]
    ids: list[str]
    results: Path

    @property
    def accepted_per_second(self) -> list[int]:
        got, throttled = self.stats["requests_per_second"], self.stats["throttled_per_second"]
        throttled = throttled + [0] * (len(got) - len(throttled))
        return [g - t for g, t in zip(got, throttled, strict=True)]

    def body_rate(self) -> float:
        """Accepted requests per second over the body of the run (see the module doc)."""
        seconds = self.accepted_per_second
        total, before, body = sum(seconds), 0, []
        for count in seconds:
            if before >= 0.1 * total and before + count <= 0.9 * total:
                body.append(count)
            before += count
        body = body or seconds
        return sum(body) / len(body)

    def rate_between(self, first: int, last: int) -> float:
        """Accepted requests per second over whole seconds ``first`` to ``last``."""
        seconds = self.accepted_per_second[first : last + 1]
        return sum(seconds) / max(1, len(seconds))

    @property
    def share_429(self) -> float:
        return float(self.stats["throttled"]) / max(1, int(self.stats["requests_total"]))

    @property
    def elapsed_s(self) -> float:
        """The run's own duration (run.finished): the wall time less interpreter start-up."""
        for record in read_json_lines(self.results):
            if record.get("event") == "run.finished":
                return float(record["elapsed_s"])
        return self.usage.wall_s

    def final_once(self) -> int:
        """How many input ids have exactly one session.result, and that one final."""
        records = [r for r in read_json_lines(self.results) if r.get("event") == "session.result"]
        per_id = Counter(str(r.get("session_id")) for r in records)
        final = Counter(str(r.get("session_id")) for r in records if r.get("outcome") in FINAL)
        return sum(1 for sid in self.ids if per_id[sid] == 1 and final[sid] == 1)


def run_once(
    sc: Scenario,
    tag: str,
    *,
    count: int,
    rate: float,
    concurrency: int | str,
    simulator: list[str],
    worker: tuple[str, ...] = (),
) -> Outcome:
    """``count`` ids through the CLI at ``rate`` against a fresh simulator."""
    work = sc.work / tag
    work.mkdir()
    sessions = int(count / 0.75 * 1.05) + 50
    with Simulator(work, sessions=sessions, args=simulator) as sim:
        ids = sim.ids()[:count]
        results = work / "results.jsonl"
        usage = run_measured(
            worker_run_argv(
                [write_ids(work / "ids.csv", ids)],
                base_url=sim.base_url,
                results=results,
                rate=rate,
                concurrency=concurrency,
                extra=list(worker),
            ),
            env=worker_env(),
            stderr=work / "worker.log",
            timeout=400,
        )
        stats = sim.stats()
    (work / "stats.json").write_text(json.dumps(stats))
    out = Outcome(usage, stats, ids, results)
    print(
        f"    {tag}: {count} ids in {usage.wall_s:.1f} s, exit {usage.exit_code}, "
        f"{stats['requests_total']} requests, {stats['throttled']} x 429, body "
        f"{out.body_rate():.1f} accepted/s, peak {stats['peak_requests_per_second']}/s",
        flush=True,
    )
    return out


def add_runs(
    sc: Scenario,
    name: str,
    values: list[float],
    unit: str,
    goal: str | None = None,
    ok: bool | None = None,
) -> None:
    """The median of the runs as the figure, every run beside it; met when ``ok``."""
    runs = [round(v, 4) for v in values]
    sc.add(name, Figure(round(median(values), 4), unit, goal, ok, runs=runs))


def add_common(sc: Scenario, outs: list[Outcome], prefix: str = "") -> None:
    """Exit codes, ids final once, 429 share and peak second of every run."""
    codes = [float(o.usage.exit_code) for o in outs]
    add_runs(sc, f"{prefix}exit_code", codes, "code (each run)", "0", max(codes) == 0)
    once = [float(o.final_once()) for o in outs]
    n = len(outs[0].ids)
    add_runs(sc, f"{prefix}ids_final_once", once, f"of {n} ids", f"{n}", min(once) == n)
    peaks = [float(o.stats["peak_requests_per_second"]) for o in outs]
    add_runs(sc, f"{prefix}peak_requests_in_1s", peaks, "req")
