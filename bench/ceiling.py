"""Scenario ceiling: a limit R with a loose --rate: 10R and 2R (bench/signals.py).

Goals (issue 9): accepted at least 0.90 R over the body with --rate 10R and 429s at most 3%;
at least 0.95 R with --rate 2R.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

LIMIT = 300.0
CONCURRENCY = 32
GOALS = {10: 0.90, 2: 0.95}


def run(sc: Scenario) -> None:
    count = 1500 if sc.quick else 4500
    for factor, goal in GOALS.items():
        outs = [
            run_once(
                sc,
                f"x{factor}-run{rep}",
                count=count,
                rate=factor * LIMIT,
                concurrency=CONCURRENCY,
                simulator=["--rate-limit", f"{LIMIT:g}"],
            )
            for rep in range(1 if sc.quick else REPS)
        ]
        prefix = f"x{factor}_"
        add_common(sc, outs, prefix)
        body = [o.body_rate() / LIMIT for o in outs]
        add_runs(
            sc, f"{prefix}body_share_of_limit", body, "fraction", f">= {goal:g}", min(body) >= goal
        )
        shares = [o.share_429 for o in outs]
        add_runs(
            sc, f"{prefix}share_429", shares, "fraction of requests", "<= 0.03", max(shares) <= 0.03
        )
    sc.note(
        f"simulator --rate-limit {LIMIT:g} (bucket {int(LIMIT / 10)}, Retry-After 1 s); worker "
        f"--rate 10R and 2R --concurrency {CONCURRENCY}; {count} ids per run, "
        f"{1 if sc.quick else REPS} runs each"
    )
