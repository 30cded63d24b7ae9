"""Client CPU per session beside a bare aiohttp script, on a reference server that is not ours.

Both clients send the same kind of DELETEs to ``bench.reference`` (200 with a session body,
no limit, no latency), 16 in flight: the worker (`run`, its result log, JSON logs) and
``bench.bare_delete`` (one JSON line per answer). Each client's start-up is taken away: a
run of ``SMALL`` ids is measured beside each run of ``LARGE``, and the CPU per session is
``(cpu(LARGE) - cpu(SMALL)) / (LARGE - SMALL)``. The runs are paired (worker, bare; the
order swapped every pair) and the figure is the median of the pairs' ratios.
Goal: at most 1.3.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.harness import (
    ORG_ID,
    ChildUsage,
    Figure,
    ReferenceServer,
    Scenario,
    add_paired_ratio,
    median,
    paired_order,
    run_measured,
    worker_env,
    worker_run_argv,
    write_ids,
)

CONCURRENCY = 16
SMALL = 20
GOAL = 1.3


def run(sc: Scenario) -> None:
    large, pairs = (2_000, 1) if sc.quick else (10_000, 3)
    per_session: dict[str, list[float]] = {"worker": [], "bare": []}
    with ReferenceServer() as ref:
        for pair in range(pairs):
            for kind in paired_order(pair):
                cpu = {n: _one(sc, ref, kind, n, pair).cpu_s for n in (SMALL, large)}
                per_session[kind].append((cpu[large] - cpu[SMALL]) / (large - SMALL))
                print(
                    f"    pair {pair + 1}/{pairs} {kind}: {cpu[SMALL]:.2f} s CPU for {SMALL} ids, "
                    f"{cpu[large]:.2f} s for {large}",
                    flush=True,
                )
    for kind, values in per_session.items():
        sc.add(
            f"{kind}_cpu_ms_per_session",
            Figure(round(median(values) * 1000, 4), "CPU ms", runs=[v * 1000 for v in values]),
        )
    worker, bare = per_session["worker"], per_session["bare"]
    add_paired_ratio(sc, "cpu_ratio_worker_to_bare", worker, bare, GOAL)
    sc.note(f"CPU per session: start-up taken away (a run of {SMALL} ids beside each)")


def _one(sc: Scenario, ref: ReferenceServer, kind: str, count: int, pair: int) -> ChildUsage:
    ids = [f"devin-cpu{pair}{kind[0]}{count}x{i:08d}" for i in range(count)]
    path = write_ids(sc.work / f"ids-{kind}-{count}-{pair}.csv", ids)
    usage = run_measured(
        client_argv(kind, path, ref.base_url, CONCURRENCY),
        env=worker_env(),
        stdout=path.with_suffix(".out"),
        stderr=path.with_suffix(".log"),
    )
    if usage.exit_code != 0:
        sc.note(
            f"{kind} with {count} ids exited {usage.exit_code} (see {path.with_suffix('.log')})"
        )
    return usage


def client_argv(kind: str, ids: Path, base_url: str, concurrency: int) -> list[str]:
    """The worker's ``run`` (its result log beside ``ids``) or the bare script, on ``ids``."""
    if kind == "worker":
        results = ids.with_suffix(".results.jsonl")
        return worker_run_argv(
            [ids], base_url=base_url, results=results, rate=0, concurrency=concurrency
        )
    return [
        sys.executable,
        "-m",
        "bench.bare_delete",
        "--base-url",
        base_url,
        "--org-id",
        ORG_ID,
        "--ids",
        str(ids),
        "--concurrency",
        str(concurrency),
    ]
