"""Process start to the first DELETE at the server, beside a bare aiohttp script.

The wall time from just before the child process is started to the arrival of its first
DELETE at ``bench.reference`` (a server that is not ours; it stamps the first DELETE with
the same clock). The worker starts, reads its settings, checks who it is (``GET /v3/self``)
and sends; the bare script (``bench.bare_delete``) imports aiohttp and sends. Runs are
paired (the order swapped every pair) after one warm-up of each; the figure is the median
of the pairs' ratios. Goal: at most 1.5.
"""

from __future__ import annotations

import time

from bench.cpu import bare_argv
from bench.harness import (
    Figure,
    ReferenceServer,
    Scenario,
    median,
    run_measured,
    worker_env,
    worker_run_argv,
    write_ids,
)

IDS = 5
GOAL = 1.5


def run(sc: Scenario) -> None:
    pairs = 3 if sc.quick else 7
    found: dict[str, list[float]] = {"worker": [], "bare": []}
    with ReferenceServer(sc.work) as ref:
        for kind in ("worker", "bare"):
            _one(sc, ref, kind, -1)  # warm the page cache and the bytecode
        for pair in range(pairs):
            order = ("worker", "bare") if pair % 2 == 0 else ("bare", "worker")
            for kind in order:
                found[kind].append(_one(sc, ref, kind, pair))
            print(
                f"    pair {pair + 1}/{pairs}: worker {found['worker'][-1] * 1000:.0f} ms, "
                f"bare {found['bare'][-1] * 1000:.0f} ms",
                flush=True,
            )
    ratios = [w / b for w, b in zip(found["worker"], found["bare"], strict=True)]
    ratio = median(ratios)
    for kind, values in found.items():
        sc.add(
            f"{kind}_start_to_first_delete_ms",
            Figure(
                round(median(values) * 1000, 1), "ms", runs=[round(v * 1000, 1) for v in values]
            ),
        )
    sc.add(
        "start_to_first_delete_ratio",
        Figure(
            round(ratio, 3),
            "x",
            f"<= {GOAL:g}",
            ratio <= GOAL,
            runs=[round(r, 3) for r in ratios],
            note=f"median of {pairs} paired runs after a warm-up of each",
        ),
    )


def _one(sc: Scenario, ref: ReferenceServer, kind: str, pair: int) -> float:
    ids = [f"devin-first{pair + 1}{kind[0]}x{i:04d}" for i in range(IDS)]
    path = write_ids(sc.work / f"ids-{kind}-{pair + 1}.csv", ids)
    if kind == "worker":
        argv = worker_run_argv(
            [path],
            base_url=ref.base_url,
            results=path.with_suffix(".results.jsonl"),
            rate=0,
            concurrency=IDS,
        )
    else:
        argv = bare_argv(path, ref.base_url)
    ref.reset()
    started = time.time()
    usage = run_measured(argv, env=worker_env(), stderr=path.with_suffix(".log"))
    first = ref.stats()["first_delete_at"]
    if usage.exit_code != 0 or first is None:
        sc.note(f"{kind} run {pair + 1}: exit {usage.exit_code}, first DELETE {first}")
        return float("nan")
    return float(first) - started
