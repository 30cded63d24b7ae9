"""Scenario 3, latency-bound: every answer takes 100 ms, concurrency 64, no rate limit.

Little's law: throughput = requests in flight / time each takes = 64 / 0.1 s = 640/s at
most. Goal: at least 95% of that, i.e. the worker keeps its 64 slots busy.

Beside each run, the bare aiohttp loop of ``bench.baselines`` (64 in flight, nothing else)
against the same simulator, the order swapped every run: what this machine and the
simulator let any client reach, so that a miss can be told from the machine's own.
"""

from __future__ import annotations

from pathlib import Path

from bench.baselines import baseline_argv
from bench.harness import (
    Figure,
    Scenario,
    Simulator,
    add_rate_figures,
    median,
    paired_order,
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
    with Simulator(sc.work, sessions=sessions_for(2 * per_rep * reps), args=args) as sim:
        ids = sim.ids()
        for rep in range(reps):
            inputs = write_ids(sc.work / f"ids-{rep}.csv", ids[rep * per_rep : (rep + 1) * per_rep])
            # the bare loop's own ids: a DELETE of a session already terminated is a 409,
            # which the worker reconciles with a GET (twice the requests a session)
            others = ids[(reps + rep) * per_rep : (reps + rep + 1) * per_rep]
            bare_ids = write_ids(sc.work / f"bare-ids-{rep}.csv", others)
            for kind in paired_order(rep):  # the order swapped every run
                sim.reset_stats()
                if kind == "worker":
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
                        baseline_argv("aiohttp", bare_ids, sim.base_url, CONCURRENCY),
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


def _median_elapsed_ms(results: Path) -> float:
    return median(
        [
            float(r["elapsed_ms"])
            for r in read_json_lines(results)
            if r.get("event") == "session.result"
        ]
    )
