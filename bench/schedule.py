"""Scenario schedule: the limit drops to half mid-run, then rises again (bench/signals.py).

The simulator's limit is R for 10 s, R/2 for 10 s, then R again; the worker runs at 2R. It
must follow the limit down and back up: accepted rate per phase against that phase's limit,
leaving out the first 2 s of each phase.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

LIMIT = 300.0
CONCURRENCY = "auto"  # the default
SCHEDULE = f"0:{LIMIT:g},10:{LIMIT / 2:g},20:{LIMIT:g}"


def run(sc: Scenario) -> None:
    count = 8000
    outs = [
        run_once(
            sc,
            f"run{rep}",
            count=count,
            rate=2 * LIMIT,
            concurrency=CONCURRENCY,
            simulator=["--limit-schedule", SCHEDULE],
        )
        for rep in range(1 if sc.quick else REPS)
    ]
    add_common(sc, outs)
    phases = {"first": (2, 9, LIMIT), "dropped": (12, 19, LIMIT / 2), "risen": (22, 27, LIMIT)}
    for name, (first, last, limit) in phases.items():
        shares = [o.rate_between(first, last) / limit for o in outs]
        add_runs(
            sc,
            f"{name}_share_of_limit",
            shares,
            f"fraction (s {first}-{last})",
            ">= 0.85",
            min(shares) >= 0.85,
        )
    over = [o.rate_between(12, 19) / (LIMIT / 2) for o in outs]
    add_runs(sc, "dropped_not_above_limit", over, "fraction", "<= 1.05", max(over) <= 1.05)
    shares = [o.share_429 for o in outs]
    add_runs(sc, "share_429", shares, "fraction of requests", "<= 0.03", max(shares) <= 0.03)
    sc.note(
        f"simulator --limit-schedule {SCHEDULE} (seconds since the first request); worker "
        f"--rate {2 * LIMIT:g} --concurrency {CONCURRENCY}, {count} ids, "
        f"{1 if sc.quick else REPS} runs; phase figures leave out each phase's first 2 s"
    )
