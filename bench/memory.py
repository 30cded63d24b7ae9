"""Scenario 5, memory and resume: peak RSS of 1,000,000 ids beside 100,000; the resume scan.

Sending a million DELETEs at a few thousand a second does not fit the time budget, so two
things are measured, and named for what they are:

* ``skipped``: an input of N ids whose every id is already settled in an N-record result
  log. The worker runs the whole job (resume scan, identity check, intake, dedupe, resume
  check, and the count made meanwhile) for every id and sends nothing but the identity
  check, to a simulator: this is the memory that grows with the input.
* ``sent``: a smaller input really sent to a fast simulator (unknown ids: each DELETE is a
  404 ``not_found``), to show that memory does not grow with requests made either.

The resume scan is timed alone in a fresh interpreter reading the 1,000,000-record log.
Peak RSS is the child's ``ru_maxrss`` from ``os.wait4``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt

from bench.harness import (
    ChildUsage,
    Figure,
    Scenario,
    Simulator,
    run_measured,
    worker_env,
    worker_run_argv,
)

GOAL_MIB = 150.0
_SCAN = (
    "import sys, time\n"
    "from worker.output.results import scan_results\n"
    "t = time.perf_counter(); prior = scan_results(sys.argv[1])\n"
    "print(time.perf_counter() - t, prior.records, len(prior.settled))\n"
)
RECORD = (
    '{{"event":"session.result","run_id":"bench0000000","ts":"2026-01-01T00:00:00.000Z",'
    '"session_id":"{sid}","outcome":"terminated","archived":false,"status":"exit",'
    '"http_status":200,"attempts":1,"elapsed_ms":12.3,"error":null,"source":"ids.csv:{n}"}}\n'
)


def run(sc: Scenario) -> None:
    small, large = (20_000, 200_000) if sc.quick else (100_000, 1_000_000)
    with Simulator(sc.work, sessions=10) as sim:  # answers the identity check, nothing else
        skipped = {n: _skipped_run(sc, n, sim.base_url) for n in (small, large)}
        asked = sim.stats()["requests_total"]
    if asked != len(skipped):
        sc.note(f"the reruns asked {asked} requests (one identity check each is expected)")
    scan_s = _scan(sc, sc.work / f"log-{large}.jsonl", large)
    sent_small, sent_large = (2_000, 8_000) if sc.quick else (5_000, 25_000)
    sent = _sent_runs(sc, (sent_small, sent_large))
    _figures(sc, skipped, sent, scan_s, large)
    _plot(sc, skipped, sent)
    for path in sc.work.glob("*.jsonl*"):
        path.unlink()  # hundreds of megabytes: do not leave them behind
    for path in sc.work.glob("*.csv"):
        path.unlink()


def _ids(start: int, count: int) -> list[str]:
    return [f"devin-{i:032x}" for i in range(start, start + count)]


def _write_inputs(sc: Scenario, count: int, *, settled: bool) -> tuple[Path, Path]:
    ids = _ids(0, count)
    inputs = sc.work / f"ids-{count}.csv"
    with open(inputs, "w") as fh:
        fh.write("session_id\n")
        fh.writelines(f"{sid}\n" for sid in ids)
    log = sc.work / f"log-{count}.jsonl"
    with open(log, "w") as fh:
        if settled:
            fh.writelines(RECORD.format(sid=sid, n=n) for n, sid in enumerate(ids, start=2))
    return inputs, log


def _skipped_run(sc: Scenario, count: int, base_url: str) -> ChildUsage:
    inputs, log = _write_inputs(sc, count, settled=True)
    usage = run_measured(
        worker_run_argv([inputs], base_url=base_url, results=log, rate=0, concurrency=32),
        env=worker_env(),
        stderr=sc.work / f"worker-skipped-{count}.log",
        timeout=300,
    )
    print(
        f"    skipped {count}: peak RSS {usage.max_rss_mib:.1f} MiB, {usage.wall_s:.1f} s, "
        f"exit {usage.exit_code}",
        flush=True,
    )
    return usage


def _scan(sc: Scenario, log: Path, count: int) -> float:
    out = sc.work / "scan.out"
    run_measured([sys.executable, "-c", _SCAN, str(log)], env=worker_env(), stdout=out)
    seconds, records, settled = out.read_text().split()
    print(f"    resume scan of {records} records ({settled} settled): {float(seconds):.2f} s")
    if int(records) < count:
        sc.note(f"the resume scan read {records} records, expected {count}")
    return float(seconds)


def _sent_runs(sc: Scenario, sizes: tuple[int, int]) -> dict[int, ChildUsage]:
    found: dict[int, ChildUsage] = {}
    with Simulator(sc.work, sessions=10) as sim:
        for count in sizes:
            inputs, log = _write_inputs(sc, count, settled=False)
            usage = run_measured(
                worker_run_argv(
                    [inputs], base_url=sim.base_url, results=log, rate=0, concurrency=32
                ),
                env=worker_env(),
                stderr=sc.work / f"worker-sent-{count}.log",
            )
            stats = sim.stats()
            sim.reset_stats()
            print(
                f"    sent {count}: peak RSS {usage.max_rss_mib:.1f} MiB, {usage.wall_s:.1f} s "
                f"({stats['requests_total']} requests), exit {usage.exit_code}",
                flush=True,
            )
            found[count] = usage
    return found


def _figures(
    sc: Scenario,
    skipped: dict[int, ChildUsage],
    sent: dict[int, ChildUsage],
    scan_s: float,
    large: int,
) -> None:
    (small_n, small), (large_n, big) = sorted(skipped.items())
    codes = [u.exit_code for u in (*skipped.values(), *sent.values())]
    worst = max(codes, key=abs)
    sc.add("exit_code", Figure(worst, "code (the worst of the four runs)", "0", worst == 0))
    goal = f"<= {GOAL_MIB:g}"
    sc.add(
        f"peak_rss_{large_n}_ids_skipped",
        Figure(round(big.max_rss_mib, 1), "MiB", goal, big.max_rss_mib <= GOAL_MIB),
    )
    sc.add(
        f"peak_rss_{small_n}_ids_skipped",
        Figure(round(small.max_rss_mib, 1), "MiB", goal, small.max_rss_mib <= GOAL_MIB),
    )
    growth = big.max_rss_mib - small.max_rss_mib
    per_id = growth * 1024 * 1024 / (large_n - small_n)
    sc.add(
        "rss_growth_skipped",
        Figure(
            round(growth, 1),
            f"MiB from {small_n} to {large_n} ids",
            "flat (<= 15 MiB)",
            growth <= 15,
            note=f"about {per_id:.0f} bytes per extra distinct id",
        ),
    )
    sc.add(f"wall_{large_n}_ids_skipped", Figure(round(big.wall_s, 2), "s"))
    (s_small_n, s_small), (s_large_n, s_big) = sorted(sent.items())
    sent_growth = s_big.max_rss_mib - s_small.max_rss_mib
    sc.add(
        f"peak_rss_{s_large_n}_ids_sent",
        Figure(round(s_big.max_rss_mib, 1), "MiB", goal, s_big.max_rss_mib <= GOAL_MIB),
    )
    sc.add(
        f"peak_rss_{s_small_n}_ids_sent",
        Figure(round(s_small.max_rss_mib, 1), "MiB", goal, s_small.max_rss_mib <= GOAL_MIB),
    )
    sc.add(
        "rss_growth_sent",
        Figure(
            round(sent_growth, 1),
            f"MiB from {s_small_n} to {s_large_n} ids",
            "flat (<= 15 MiB)",
            sent_growth <= 15,
        ),
    )
    sc.add(
        f"resume_scan_{large}_records",
        Figure(round(scan_s, 2), "s", "<= 5", scan_s <= 5.0),
    )
    sc.note(
        "'skipped': every id already settled in the result log, nothing sent but the identity "
        "check (the per-id state: the count made meanwhile, resume set, dedupe set); 'sent': "
        "real DELETEs (404s) to a fast simulator at concurrency 32. 'flat' is read here as at "
        "most 15 MiB of growth."
    )


def _plot(sc: Scenario, skipped: dict[int, ChildUsage], sent: dict[int, ChildUsage]) -> None:
    labels = [f"{n:,} skipped" for n in sorted(skipped)] + [f"{n:,} sent" for n in sorted(sent)]
    values = [skipped[n].max_rss_mib for n in sorted(skipped)]
    values += [sent[n].max_rss_mib for n in sorted(sent)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(labels, values, color=["tab:blue"] * len(skipped) + ["tab:green"] * len(sent))
    ax.axhline(GOAL_MIB, color="red", linestyle="--", label=f"goal {GOAL_MIB:g} MiB")
    ax.set_ylabel("peak RSS, MiB")
    ax.set_title("Worker peak memory by input size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(sc.plots / "memory.png", dpi=100)
    plt.close(fig)
