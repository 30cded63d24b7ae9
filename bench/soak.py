"""Scenario 7, soak: every kind of transient fault under a limit half the worker's rate.

The acceptance check: 5,000 sessions; the simulator fails 20% of requests with a random
fault of every kind (5xx, reset, malformed, and timeout hanging 3 s against a 1 s worker
timeout) and limits the token to R = 200/s; the worker runs ``--rate 400 --concurrency 32
--timeout 1 --max-attempts 10``. Goals: exit code 0; exactly one ``session.result`` per
id, and that one final; 429s at most 5% of all requests; non-429 requests per second at
the simulator (first to last request) at least 85% of R.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import (
    Figure,
    Scenario,
    Simulator,
    iso_seconds,
    read_json_lines,
    run_measured,
    served_rate,
    worker_env,
    worker_run_argv,
    write_ids,
)

LIMIT = 200.0
WORKER_RATE = 2 * LIMIT
CONCURRENCY = 32
FAULT_RATE = 0.2
FAULT_KINDS = "500,502,503,504,reset,timeout,malformed"
# 7,000 sessions at these ratios hold about 5,266 terminable ones.
POPULATION = ["--sessions", "7000", "--exit-ratio", "0.2", "--error-ratio", "0.05"]
_FINAL = frozenset({"terminated", "archived", "already_terminated", "not_found"})


def run(sc: Scenario) -> None:
    count = 1000 if sc.quick else 5000
    with Simulator(sc.work, sessions=7000, args=_simulator_args()) as sim:
        ids = sim.ids()[:count]
        if len(ids) < count:
            raise RuntimeError(f"the simulator holds {len(ids)} terminable ids, {count} needed")
        results, log = sc.work / "results.jsonl", sc.work / "worker.log"
        usage = run_measured(
            worker_run_argv(
                [write_ids(sc.work / "ids.csv", ids)],
                base_url=sim.base_url,
                results=results,
                rate=WORKER_RATE,
                concurrency=CONCURRENCY,
                extra=["--timeout", "1", "--max-attempts", "10"],
            ),
            env=worker_env(),
            stderr=log,
            timeout=300,
        )
        stats = sim.stats()
    print(f"    {count} ids in {usage.wall_s:.1f} s, exit {usage.exit_code}", flush=True)
    sc.add("exit_code", Figure(float(usage.exit_code), "code", "0", usage.exit_code == 0))
    _result_figures(sc, ids, results)
    _rate_figures(sc, stats)
    sc.add("wall_s", Figure(round(usage.wall_s, 1), "s"))
    sc.note(
        f"{count} ids; simulator --rate-limit {LIMIT:g} (bucket {int(LIMIT / 10)}), "
        f"--fault-rate {FAULT_RATE:g} --fault-kinds {FAULT_KINDS} --timeout-hang-s 3, "
        f"population {' '.join(POPULATION)}; worker --rate {WORKER_RATE:g} "
        f"--concurrency {CONCURRENCY} --timeout 1 --max-attempts 10, one run"
    )


def _simulator_args() -> list[str]:
    return [
        *POPULATION[2:],
        "--rate-limit",
        f"{LIMIT:g}",
        "--fault-rate",
        f"{FAULT_RATE:g}",
        "--fault-kinds",
        FAULT_KINDS,
        "--timeout-hang-s",
        "3",
    ]


def _result_figures(sc: Scenario, ids: list[str], results: Path) -> None:
    records = [r for r in read_json_lines(results) if r.get("event") == "session.result"]
    per_id = Counter(str(r.get("session_id")) for r in records)
    final = Counter(str(r.get("session_id")) for r in records if r.get("outcome") in _FINAL)
    wanted = set(ids)
    exactly_one = sum(1 for sid in ids if per_id[sid] == 1 and final[sid] == 1)
    stray = sum(n for sid, n in per_id.items() if sid not in wanted)
    ok = exactly_one == len(ids) and stray == 0
    sc.add(
        "ids_with_exactly_one_final_result",
        Figure(float(exactly_one), f"of {len(ids)} ids", f"{len(ids)}, no other record", ok),
    )
    outcomes = Counter(str(r.get("outcome")) for r in records)
    sc.add("terminated", Figure(float(outcomes["terminated"]), "sessions"))
    _tail_figures(sc, records)
    sc.note(
        "session.result outcomes: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        + f"; records for ids not in the input: {stray}"
    )


def _tail_figures(sc: Scenario, records: list[dict[str, Any]]) -> None:
    """How long the last sessions kept the run open: the achieved rate spans that tail."""
    stamps = sorted(iso_seconds(r["ts"]) for r in records if "ts" in r)
    if len(stamps) < 100:
        return
    p99 = stamps[int(0.99 * len(stamps)) - 1]
    sc.add(
        "tail_s_after_99pct_settled",
        Figure(
            round(stamps[-1] - p99, 1),
            "s",
            note="from 99% of sessions settled to the last; a few sessions on their 6th or "
            "later attempt wait out full-jitter backoff (0.5 s doubling) with nothing else "
            "to send, which lowers accepted_rate (first to last request)",
        ),
    )
    sc.add(
        "max_attempts_used",
        Figure(float(max(int(r.get("attempts", 0)) for r in records)), "attempts"),
    )


def _rate_figures(sc: Scenario, stats: dict[str, Any]) -> None:
    total = int(stats["requests_total"])
    throttled = int(stats["throttled"])
    share = throttled / max(1, total)
    sc.add("requests_total", Figure(float(total), "count"))
    faults = stats.get("faults_injected", {})
    sc.note(
        f"faults injected: {sum(faults.values())} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
        + ")"
    )
    sc.add("responses_429", Figure(float(throttled), "count"))
    sc.add("share_429", Figure(round(share, 4), "fraction of requests", "<= 0.05", share <= 0.05))
    accepted = served_rate(stats, accepted_only=True) or 0.0
    sc.add(
        "accepted_rate",
        Figure(
            round(accepted, 1),
            "non-429 req/s",
            f">= {0.85 * LIMIT:g} (85% of {LIMIT:g})",
            accepted >= 0.85 * LIMIT,
        ),
    )
    sc.add(
        "accepted_share_of_limit",
        Figure(round(accepted / LIMIT, 4), "fraction", ">= 0.85", accepted >= 0.85 * LIMIT),
    )
