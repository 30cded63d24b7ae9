"""A rerun of settled ids beside a bare script, and the memory it grows by per id.

An input of N ids, every one already settled in an N-record result log. The worker runs
the whole job (resume scan, identity check at ``bench.reference``, intake, dedupe, the
count made meanwhile) and sends nothing else; ``bench.bare_resume`` reads the log into a
``set`` and checks the ids. Paired runs at 1,000,000 ids (the order swapped every pair),
the figure the median of the pairs' wall-time ratios; the worker also reruns 100,000 ids,
and the growth of its peak RSS (``VmHWM``) from 100,000 to 1,000,000, per extra id, is the
memory figure. Goals: ratio at most 2.0, growth at most 16 B/id, peak RSS at most 150 MiB.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.harness import (
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
)
from bench.memory import RECORD

GOAL_RATIO = 2.0
GOAL_BYTES_PER_ID = 16.0
GOAL_MIB = 150.0


def run(sc: Scenario) -> None:
    small, large = (20_000, 200_000) if sc.quick else (100_000, 1_000_000)
    pairs = 1 if sc.quick else 3
    files = {n: write_settled(sc.work, n) for n in (small, large)}
    worker: dict[int, list[ChildUsage]] = {small: [], large: []}
    bare: list[ChildUsage] = []
    with ReferenceServer() as ref:
        for pair in range(pairs):
            for kind in paired_order(pair):
                if kind == "worker":
                    worker[large].append(_worker(sc, ref, *files[large], pair))
                else:
                    bare.append(_bare(sc, *files[large]))
            worker[small].append(_worker(sc, ref, *files[small], pair))
            print(
                f"    pair {pair + 1}/{pairs}: worker {worker[large][-1].wall_s:.2f} s "
                f"({worker[large][-1].max_rss_mib:.1f} MiB), bare {bare[-1].wall_s:.2f} s; "
                f"worker at {small}: {worker[small][-1].max_rss_mib:.1f} MiB",
                flush=True,
            )
    _figures(sc, worker, bare, small, large)
    for path in sc.work.glob("settled-*"):
        path.unlink()  # hundreds of megabytes: do not leave them behind


def write_settled(work: Path, count: int) -> tuple[Path, Path]:
    """An input of ``count`` ids and a result log that settled every one of them."""
    ids = [f"devin-{i:032x}" for i in range(count)]
    inputs = work / f"settled-{count}.csv"
    with open(inputs, "w") as fh:
        fh.write("session_id\n")
        fh.writelines(f"{sid}\n" for sid in ids)
    log = work / f"settled-{count}.jsonl"
    with open(log, "w") as fh:
        fh.writelines(RECORD.format(sid=sid, n=n) for n, sid in enumerate(ids, start=2))
        # On disk before the rerun, as a log that earlier runs wrote is: else the rerun's
        # fsync at its end (for its own two records) writes out these hundreds of megabytes.
        fh.flush()
        os.fsync(fh.fileno())
    return inputs, log


def _worker(sc: Scenario, ref: ReferenceServer, inputs: Path, log: Path, pair: int) -> ChildUsage:
    # a copy of the log each run: the rerun appends its run.started and run.finished
    results = sc.work / f"settled-run-{pair}.jsonl"
    with open(results, "wb") as fh:
        fh.write(log.read_bytes())
        os.fsync(fh.fileno())  # on disk, as an earlier run's log is (see `write_settled`)
    usage = run_measured(
        worker_run_argv([inputs], base_url=ref.base_url, results=results, rate=0, concurrency=32),
        env=worker_env(),
        stderr=sc.work / f"worker-{inputs.stem}-{pair}.log",
        timeout=300,
    )
    results.unlink()
    if usage.exit_code != 0:
        sc.note(f"the worker's rerun of {inputs.name} exited {usage.exit_code}")
    return usage


def _bare(sc: Scenario, inputs: Path, log: Path) -> ChildUsage:
    out = sc.work / "bare.out"
    argv = [sys.executable, "-m", "bench.bare_resume", str(log), str(inputs)]
    usage = run_measured(argv, env=worker_env(), stdout=out, timeout=300)
    if out.read_text().strip() != "0":
        sc.note(f"the bare script found {out.read_text().strip()} ids to send, expected 0")
    return usage


def _figures(
    sc: Scenario,
    worker: dict[int, list[ChildUsage]],
    bare: list[ChildUsage],
    small: int,
    large: int,
) -> None:
    worker_s, bare_s = [u.wall_s for u in worker[large]], [u.wall_s for u in bare]
    sc.add(f"worker_wall_{large}_s", Figure(round(median(worker_s), 2), "s"))
    sc.add(f"bare_wall_{large}_s", Figure(round(median(bare_s), 2), "s"))
    add_paired_ratio(sc, "rerun_ratio_worker_to_bare", worker_s, bare_s, GOAL_RATIO)
    peak = median([u.max_rss_mib for u in worker[large]])
    base = median([u.max_rss_mib for u in worker[small]])
    sc.add(
        f"peak_rss_{large}_mib",
        Figure(round(peak, 1), "MiB", f"<= {GOAL_MIB:g}", peak <= GOAL_MIB),
    )
    sc.add(f"peak_rss_{small}_mib", Figure(round(base, 1), "MiB"))
    per_id = (peak - base) * 1024 * 1024 / (large - small)
    sc.add(
        "rss_growth_bytes_per_id",
        Figure(
            round(per_id, 1),
            f"bytes per id, {small} to {large}",
            f"<= {GOAL_BYTES_PER_ID:g}",
            per_id <= GOAL_BYTES_PER_ID,
        ),
    )
