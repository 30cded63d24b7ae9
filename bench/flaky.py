"""Scenario flaky: 5% of requests answer 503 + Retry-After: 1, no limit (bench/signals.py).

Goal: 4,000 ids at ``--rate 400`` in at most 1.2x the ideal time (requests / rate), exit 0;
the controller must neither pause the others nor cut the rate for such answers.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

RATE = 400.0
CONCURRENCY = "auto"  # the default; a session waiting out a Retry-After hands its slot on
SIMULATOR = ["--fault", "503-retry-after=0.05", "--fault-retry-after", "1"]
SLOW = ["--latency-ms", "50", "--latency-jitter-ms", "25"]  # answers in 50-75 ms


def run(sc: Scenario) -> None:
    count = 1000 if sc.quick else 4000
    outs = [
        run_once(
            sc, f"run{rep}", count=count, rate=RATE, concurrency=CONCURRENCY, simulator=SIMULATOR
        )
        for rep in range(1 if sc.quick else REPS)
    ]
    add_common(sc, outs)
    ratios = [o.usage.wall_s / (o.stats["requests_total"] / RATE) for o in outs]
    add_runs(
        sc, "wall_over_ideal", ratios, "x (ideal = requests / rate)", "<= 1.2", max(ratios) <= 1.2
    )
    runs = [o.elapsed_s / (o.stats["requests_total"] / RATE) for o in outs]
    add_runs(
        sc, "run_over_ideal", runs, "x (run.finished elapsed_s / ideal)", "<= 1.2", max(runs) <= 1.2
    )
    by_ids = [o.usage.wall_s / (count / RATE) for o in outs]
    add_runs(sc, "wall_over_ids_per_rate", by_ids, "x (ids / rate)")
    add_runs(sc, "wall_s", [o.usage.wall_s for o in outs], "s")
    add_runs(
        sc,
        "body_rate",
        [o.body_rate() for o in outs],
        "accepted req/s",
        f">= {0.95 * RATE:g}",
        min(o.body_rate() for o in outs) >= 0.95 * RATE,
    )
    # the same against a server that takes 50-75 ms to answer
    slow = run_once(
        sc,
        "latency-50ms",
        count=count,
        rate=RATE,
        concurrency=CONCURRENCY,
        simulator=SIMULATOR + SLOW,
    )
    ideal = slow.stats["requests_total"] / RATE
    add_runs(sc, "latency_50ms_wall_over_ideal", [slow.usage.wall_s / ideal], "x")
    add_runs(sc, "latency_50ms_run_over_ideal", [slow.elapsed_s / ideal], "x")
    sc.note(
        f"simulator: no limit, --fault 503-retry-after=0.05 (Retry-After: 1); worker --rate "
        f"{RATE:g} --concurrency {CONCURRENCY} (the default; a session waiting out its "
        f"Retry-After hands its slot on), {count} ids, {len(outs)} runs; the latency_50ms "
        "figures are one run against answers of 50-75 ms"
    )
