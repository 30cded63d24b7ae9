"""Scenario 1, rate adherence: simulator limit R, worker ``--rate R``.

The worker should reach at least 97% of R with no 429 at all, and the simulator should
never see more than R plus the worker's burst (R/10 by default) in any one-second window.
The median of a few repetitions is reported; every repetition gets fresh ids from one
simulator whose counters are reset in between.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from bench.harness import (
    Figure,
    Scenario,
    Simulator,
    add_rate_figures,
    run_measured,
    served_rate,
    sessions_for,
    settled_per_second,
    worker_env,
    worker_run_argv,
    write_ids,
)

LIMIT = 500.0
CONCURRENCY = 32


def run(sc: Scenario) -> None:
    reps, seconds = (1, 4) if sc.quick else (3, 8)
    per_rep = int(LIMIT * seconds)
    burst = max(1, round(LIMIT / 10))
    with Simulator(sc.work, sessions=sessions_for(per_rep * reps), args=_limit()) as sim:
        ids = sim.ids()
        rates, throttled, peaks, logs = [], [], [], []
        for rep in range(reps):
            chunk = ids[rep * per_rep : (rep + 1) * per_rep]
            inputs = write_ids(sc.work / f"ids-{rep}.csv", chunk)
            results = sc.work / f"results-{rep}.jsonl"
            sim.reset_stats()
            usage = run_measured(
                worker_run_argv(
                    [inputs],
                    base_url=sim.base_url,
                    results=results,
                    rate=LIMIT,
                    concurrency=CONCURRENCY,
                ),
                env=worker_env(),
                stderr=sc.work / f"worker-{rep}.log",
            )
            stats = sim.stats()
            rates.append(served_rate(stats) or 0.0)
            throttled.append(float(stats["throttled"]))
            peaks.append(float(stats["peak_requests_per_second"]))
            logs.append(results)
            print(
                f"    rep {rep + 1}/{reps}: {len(chunk)} ids, {rates[-1]:.1f} req/s, "
                f"{stats['throttled']} x 429, peak {stats['peak_requests_per_second']}/s, "
                f"exit {usage.exit_code}",
                flush=True,
            )
    _figures(sc, rates, throttled, peaks, burst)
    _plot(sc, logs[-1])


def _limit() -> list[str]:
    return ["--rate-limit", f"{LIMIT:g}"]


def _figures(
    sc: Scenario, rates: list[float], throttled: list[float], peaks: list[float], burst: int
) -> None:
    add_rate_figures(sc, "achieved_share_of_limit", rates, LIMIT, 0.97)
    sc.add(
        "responses_429",
        Figure(max(throttled), "count (worst run)", "0", max(throttled) == 0, runs=throttled),
    )
    sc.add(
        "peak_requests_in_1s_window",
        Figure(
            max(peaks),
            "req (worst run)",
            f"<= {LIMIT + burst:g} (R + burst {burst})",
            max(peaks) <= LIMIT + burst,
            runs=peaks,
        ),
    )
    sc.note(
        f"simulator token bucket {LIMIT:g}/s, bucket {burst}; worker --rate {LIMIT:g} "
        f"--concurrency {CONCURRENCY}; achieved = (requests - 1) / (last - first arrival)"
    )


def _plot(sc: Scenario, results: Path) -> None:
    per_second = settled_per_second(results)[:-1]  # the last second is partial
    if not per_second:
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.step(range(len(per_second)), per_second, where="post", label="sessions settled per second")
    ax.axhline(LIMIT, color="red", linestyle="--", label=f"simulator limit {LIMIT:g}/s")
    ax.set_xlabel("seconds since the first answer (last repetition)")
    ax.set_ylabel("per second")
    ax.set_ylim(0, LIMIT * 1.3)
    ax.set_title("Rate adherence: worker --rate R against a limit of R")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(sc.plots / "rate.png", dpi=100)
    plt.close(fig)
