"""Scenario ceiling: a limit R with a loose --rate: 10R and 2R (bench/signals.py), against
the simulator's token bucket (twice) and, once each, a fixed window and a sliding log: a
server that is not ours may count in any of these ways.

Goals (issue 9): accepted at least 0.90 R over the body with --rate 10R and 429s at most 3%;
at least 0.95 R with --rate 2R.
"""

from __future__ import annotations

from bench.harness import Scenario
from bench.signals import REPS, add_common, add_runs, run_once

LIMIT = 300.0
CONCURRENCY = "auto"  # the default
# answers in 50-75 ms, 429s at once (a gateway) or as slow as the rest
SLOW = {
    "slow-gateway": ["--latency-ms", "50", "--latency-jitter-ms", "25"],
    "slow-all": ["--latency-ms", "50", "--latency-jitter-ms", "25", "--slow-429s"],
}
GOALS = {10: 0.90, 2: 0.95}


def run(sc: Scenario) -> None:
    count = 1500 if sc.quick else 4500
    for kind, reps in (("bucket", 1 if sc.quick else REPS), ("window", 1), ("sliding", 1)):
        for factor, goal in GOALS.items():
            _factor(sc, kind, factor, goal, count=count, reps=reps)
    for name, latency in SLOW.items():
        for factor, goal in GOALS.items():
            _factor(sc, "bucket", factor, goal, count=count, reps=1, tag=name, extra=latency)
    sc.note(
        f"simulator --rate-limit {LIMIT:g} --limit-kind bucket (bucket {int(LIMIT / 10)}), "
        f"window (a fixed one-second window) or sliding (a one-second log), Retry-After 1 s; "
        f"worker --rate 10R and 2R --concurrency {CONCURRENCY}; {count} ids per run, "
        f"{REPS} runs each for the bucket, 1 for the others; slow_gateway: the bucket with "
        "answers in 50-75 ms and 429s at once, slow_all: 429s as slow (--slow-429s)"
    )


def _factor(
    sc: Scenario,
    kind: str,
    factor: int,
    goal: float,
    *,
    count: int,
    reps: int,
    tag: str | None = None,
    extra: list[str] | None = None,
) -> None:
    outs = [
        run_once(
            sc,
            f"{tag or kind}-x{factor}-run{rep}",
            count=count,
            rate=factor * LIMIT,
            concurrency=CONCURRENCY,
            simulator=["--rate-limit", f"{LIMIT:g}", "--limit-kind", kind, *(extra or [])],
        )
        for rep in range(reps)
    ]
    name = tag.replace("-", "_") if tag else kind
    prefix = f"x{factor}_" if name == "bucket" else f"{name}_x{factor}_"
    add_common(sc, outs, prefix)
    body = [o.body_rate() / LIMIT for o in outs]
    met = min(body) >= goal
    add_runs(sc, f"{prefix}body_share_of_limit", body, "fraction", f">= {goal:g}", met)
    shares = [o.share_429 for o in outs]
    add_runs(
        sc, f"{prefix}share_429", shares, "fraction of requests", "<= 0.03", max(shares) <= 0.03
    )
