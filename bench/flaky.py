"""Scenario flaky: 5% of requests answer 503 + Retry-After: 1, no limit (bench/signals.py).

Goal: 4,000 ids at ``--rate 400`` in at most 1.2x the ideal time (requests / rate), exit 0;
the controller must neither pause the others nor cut the rate for such answers.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

RATE = 400.0
CONCURRENCY = 8  # the default: a session waiting out a Retry-After hands its slot on
SIMULATOR = ["--fault", "503-retry-after=0.05", "--fault-retry-after", "1"]


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
    # the same with more connections, for comparison
    wide = run_once(
        sc, "concurrency-64", count=count, rate=RATE, concurrency=64, simulator=SIMULATOR
    )
    add_runs(
        sc,
        "wall_over_ideal_concurrency_64",
        [wide.usage.wall_s / (wide.stats["requests_total"] / RATE)],
        "x",
    )
    sc.note(
        f"simulator: no limit, --fault 503-retry-after=0.05 (Retry-After: 1); worker --rate "
        f"{RATE:g} --concurrency {CONCURRENCY} (the default; a session waiting out its "
        f"Retry-After hands its slot on), {count} ids, {len(outs)} runs; the last figure is "
        "one run at --concurrency 64"
    )
