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
    median,
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
    with ReferenceServer(sc.work) as ref:
        for pair in range(pairs):
            order = ("worker", "bare") if pair % 2 == 0 else ("bare", "worker")
            for kind in order:
                cpu = {n: _one(sc, ref, kind, n, pair).cpu_s for n in (SMALL, large)}
                per_session[kind].append((cpu[large] - cpu[SMALL]) / (large - SMALL))
                print(
                    f"    pair {pair + 1}/{pairs} {kind}: {cpu[SMALL]:.2f} s CPU for {SMALL} ids, "
                    f"{cpu[large]:.2f} s for {large}",
                    flush=True,
                )
    ratios = [w / b for w, b in zip(per_session["worker"], per_session["bare"], strict=True)]
    ratio = median(ratios)
    for kind, values in per_session.items():
        sc.add(
            f"{kind}_cpu_ms_per_session",
            Figure(round(median(values) * 1000, 4), "CPU ms", runs=[v * 1000 for v in values]),
        )
    sc.add(
        "cpu_ratio_worker_to_bare",
        Figure(
            round(ratio, 3),
            "x",
            f"<= {GOAL:g}",
            ratio <= GOAL,
            runs=[round(r, 3) for r in ratios],
            note=f"median of {pairs} paired runs; start-up taken away (a run of {SMALL} ids)",
        ),
    )


def _one(sc: Scenario, ref: ReferenceServer, kind: str, count: int, pair: int) -> ChildUsage:
    ids = [f"devin-cpu{pair}{kind[0]}{count}x{i:08d}" for i in range(count)]
    path = write_ids(sc.work / f"ids-{kind}-{count}-{pair}.csv", ids)
    if kind == "worker":
        argv = worker_run_argv(
            [path],
            base_url=ref.base_url,
            results=path.with_suffix(".results.jsonl"),
            rate=0,
            concurrency=CONCURRENCY,
        )
    else:
        argv = bare_argv(path, ref.base_url)
    usage = run_measured(
        argv,
        env=worker_env(),
        stdout=path.with_suffix(".out"),
        stderr=path.with_suffix(".log"),
    )
    if usage.exit_code != 0:
        sc.note(
            f"{kind} with {count} ids exited {usage.exit_code} (see {path.with_suffix('.log')})"
        )
    return usage


def bare_argv(ids: Path, base_url: str) -> list[str]:
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
        str(CONCURRENCY),
    ]
