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

from bench.cpu import client_argv
from bench.harness import (
    Figure,
    ReferenceServer,
    Scenario,
    add_paired_ratio,
    median,
    paired_order,
    run_measured,
    worker_env,
    write_ids,
)

IDS = 5
GOAL = 1.5


def run(sc: Scenario) -> None:
    pairs = 3 if sc.quick else 7
    found: dict[str, list[float]] = {"worker": [], "bare": []}
    with ReferenceServer() as ref:
        for kind in ("worker", "bare"):
            _one(sc, ref, kind, -1)  # warm the page cache and the bytecode
        for pair in range(pairs):
            for kind in paired_order(pair):
                found[kind].append(_one(sc, ref, kind, pair))
            print(
                f"    pair {pair + 1}/{pairs}: worker {found['worker'][-1] * 1000:.0f} ms, "
                f"bare {found['bare'][-1] * 1000:.0f} ms",
                flush=True,
            )
    for kind, values in found.items():
        runs = [round(v * 1000, 1) for v in values]
        figure = Figure(round(median(values) * 1000, 1), "ms", runs=runs)
        sc.add(f"{kind}_start_to_first_delete_ms", figure)
    add_paired_ratio(sc, "start_to_first_delete_ratio", found["worker"], found["bare"], GOAL)


def _one(sc: Scenario, ref: ReferenceServer, kind: str, pair: int) -> float:
    ids = [f"devin-first{pair + 1}{kind[0]}x{i:04d}" for i in range(IDS)]
    path = write_ids(sc.work / f"ids-{kind}-{pair + 1}.csv", ids)
    argv = client_argv(kind, path, ref.base_url, IDS)
    ref.reset()
    started = time.time()
    usage = run_measured(argv, env=worker_env(), stderr=path.with_suffix(".log"))
    first = ref.stats()["first_delete_at"]
    if usage.exit_code != 0 or first is None:
        sc.note(f"{kind} run {pair + 1}: exit {usage.exit_code}, first DELETE {first}")
        return float("nan")
    return float(first) - started
