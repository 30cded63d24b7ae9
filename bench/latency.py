"""Scenario 3, latency-bound: every answer takes 100 ms, concurrency 64, no rate limit.

Little's law: throughput = requests in flight / time each takes = 64 / 0.1 s = 640/s at
most. Goal: at least 95% of that, i.e. the worker keeps its 64 slots busy.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import (
    Figure,
    Scenario,
    Simulator,
    add_rate_figures,
    median,
    read_json_lines,
    run_measured,
    served_rate,
    sessions_for,
    worker_env,
    worker_run_argv,
    write_ids,
)

LATENCY_MS = 100.0
CONCURRENCY = 64
BOUND = CONCURRENCY / (LATENCY_MS / 1000)


def run(sc: Scenario) -> None:
    reps, seconds = (1, 4) if sc.quick else (3, 6)
    per_rep = int(BOUND * seconds)
    args = ["--latency-ms", f"{LATENCY_MS:g}"]
    rates: list[float] = []
    elapsed: list[float] = []
    with Simulator(sc.work, sessions=sessions_for(per_rep * reps), args=args) as sim:
        ids = sim.ids()
        for rep in range(reps):
            inputs = write_ids(sc.work / f"ids-{rep}.csv", ids[rep * per_rep : (rep + 1) * per_rep])
            sim.reset_stats()
            usage = run_measured(
                worker_run_argv(
                    [inputs],
                    base_url=sim.base_url,
                    results=sc.work / f"results-{rep}.jsonl",
                    rate=0,
                    concurrency=CONCURRENCY,
                ),
                env=worker_env(),
                stderr=sc.work / f"worker-{rep}.log",
            )
            rates.append(served_rate(sim.stats()) or 0.0)
            elapsed.append(_median_elapsed_ms(sc.work / f"results-{rep}.jsonl"))
            print(
                f"    rep {rep + 1}/{reps}: {per_rep} ids, {rates[-1]:.1f} req/s, "
                f"exit {usage.exit_code}",
                flush=True,
            )
    add_rate_figures(sc, "share_of_littles_law_bound", rates, BOUND, 0.95)
    achieved = median(rates)
    seen = median(elapsed)
    sc.add(
        "median_request_ms_seen_by_worker",
        Figure(round(seen, 1), "ms", note="elapsed_ms of session.result records, median"),
    )
    sc.add(
        "share_of_bound_at_measured_latency",
        Figure(
            round(achieved / (CONCURRENCY / (seen / 1000)), 4),
            "fraction",
            note=f"achieved / ({CONCURRENCY} / measured median request time): slot turnover",
        ),
    )
    sc.note(
        f"simulator latency {LATENCY_MS:g} ms, no limit; worker --rate 0 --concurrency "
        f"{CONCURRENCY}; bound = {CONCURRENCY} / {LATENCY_MS / 1000:g} s = {BOUND:g}/s"
    )


def _median_elapsed_ms(results: Path) -> float:
    return median(
        [
            float(r["elapsed_ms"])
            for r in read_json_lines(results)
            if r.get("event") == "session.result"
        ]
    )
