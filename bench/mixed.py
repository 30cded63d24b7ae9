"""Scenario mixed: 20% transient faults of every kind under a limit half of --rate.

Goals (issue 9): exit 0, every id final exactly once, 429s at most 5% of requests,
accepted at least 0.85 of the limit over the body of the run (bench/signals.py).
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

LIMIT = 200.0
RATE = 2 * LIMIT
CONCURRENCY = "auto"  # the default
MIX = {
    "500": 0.03,
    "502": 0.02,
    "503": 0.02,
    "504": 0.02,
    "503-retry-after": 0.02,
    "reset": 0.03,
    "malformed": 0.02,
    "garbage": 0.02,
    "timeout": 0.02,
}


def run(sc: Scenario) -> None:
    count = 1000 if sc.quick else 5000
    simulator = ["--rate-limit", f"{LIMIT:g}", "--timeout-hang-s", "3"]
    for kind, share in MIX.items():
        simulator += ["--fault", f"{kind}={share:g}"]
    outs = [
        run_once(
            sc,
            f"run{rep}",
            count=count,
            rate=RATE,
            concurrency=CONCURRENCY,
            simulator=simulator,
            worker=("--timeout", "1"),
        )
        for rep in range(1 if sc.quick else REPS)
    ]
    add_common(sc, outs)
    shares = [o.share_429 for o in outs]
    add_runs(sc, "share_429", shares, "fraction of requests", "<= 0.05", max(shares) <= 0.05)
    body = [o.body_rate() / LIMIT for o in outs]
    add_runs(sc, "body_share_of_limit", body, "fraction", ">= 0.85", min(body) >= 0.85)
    add_runs(sc, "wall_s", [o.usage.wall_s for o in outs], "s")
    faults = outs[0].stats.get("faults_injected", {})
    sc.note(
        f"simulator --rate-limit {LIMIT:g} --timeout-hang-s 3, faults (sum 0.2): "
        + ", ".join(f"{k} {v:g}" for k, v in MIX.items())
        + f"; worker --rate {RATE:g} --concurrency {CONCURRENCY} --timeout 1 (default "
        f"--max-attempts); {count} ids, {len(outs)} runs; faults injected in run 1: "
        + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
    )
