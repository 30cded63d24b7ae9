"""Scenario 3, latency-bound: every answer takes 100 ms, concurrency 64, no rate limit.

Little's law: throughput = requests in flight / time each takes = 64 / 0.1 s = 640/s at
most. Goal: at least 95% of that, i.e. the worker keeps its 64 slots busy.

Beside each run, the bare aiohttp loop of ``bench.baselines`` (64 in flight, nothing else)
against the same simulator, the order swapped every run: what this machine and the
simulator let any client reach, so that a miss can be told from the machine's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.harness import (
    ORG_ID,
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
    bare: list[float] = []
    elapsed: list[float] = []
    with Simulator(sc.work, sessions=sessions_for(per_rep * reps), args=args) as sim:
        ids = sim.ids()
        for rep in range(reps):
            inputs = write_ids(sc.work / f"ids-{rep}.csv", ids[rep * per_rep : (rep + 1) * per_rep])
            for first in (rep % 2 == 0, rep % 2 == 1):  # the order swapped every run
                sim.reset_stats()
                if first:
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
                else:
                    run_measured(
                        _bare_argv(inputs, sim.base_url),
                        env=worker_env(),
                        stdout=sc.work / f"bare-{rep}.json",
                    )
                    bare.append(served_rate(sim.stats()) or 0.0)
            elapsed.append(_median_elapsed_ms(sc.work / f"results-{rep}.jsonl"))
            print(
                f"    rep {rep + 1}/{reps}: {per_rep} ids, {rates[-1]:.1f} req/s "
                f"(bare loop {bare[-1]:.1f}), exit {usage.exit_code}",
                flush=True,
            )
    add_rate_figures(sc, "share_of_littles_law_bound", rates, BOUND, 0.95)
    sc.add(
        "bare_loop_share_of_bound",
        Figure(
            round(median(bare) / BOUND, 4),
            "fraction",
            note="the bare aiohttp loop's rate / the bound, median: the machine's own ceiling",
            runs=[round(b / BOUND, 4) for b in bare],
        ),
    )
    sc.add(
        "share_of_bare_loop",
        Figure(
            round(median([r / b for r, b in zip(rates, bare, strict=True)]), 4),
            "fraction",
            note="worker rate / bare loop rate, run by run (paired), median",
        ),
    )
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


def _bare_argv(ids: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.baselines", "aiohttp", "--base-url", base_url,
        "--org-id", ORG_ID, "--ids", str(ids), "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip


def _median_elapsed_ms(results: Path) -> float:
    return median(
        [
            float(r["elapsed_ms"])
            for r in read_json_lines(results)
            if r.get("event") == "session.result"
        ]
    )
