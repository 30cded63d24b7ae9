"""Scenario 2, adaptive control: worker ``--rate 2R`` against a simulator limit of R.

The worker starts twice too fast; its controller must find the limit from the 429s and
stay near it. Goal: at least 90% of R accepted, 429s at most 3% of requests. The plot shows
the granted rate (from the worker's ``rate.changed`` log events) against time, beside the
limit and the sessions settled per second.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from bench.harness import (
    Figure,
    Scenario,
    Simulator,
    iso_seconds,
    read_json_lines,
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
    count = int(LIMIT * (6 if sc.quick else 16))
    with Simulator(
        sc.work, sessions=sessions_for(count), args=["--rate-limit", f"{LIMIT:g}"]
    ) as sim:
        inputs = write_ids(sc.work / "ids.csv", sim.ids()[:count])
        results, log = sc.work / "results.jsonl", sc.work / "worker.log"
        usage = run_measured(
            worker_run_argv(
                [inputs],
                base_url=sim.base_url,
                results=results,
                rate=2 * LIMIT,
                concurrency=CONCURRENCY,
                extra=("--log-level", "debug"),  # every rate.changed step is a debug event
            ),
            env=worker_env(),
            stderr=log,
            timeout=240,
        )
        stats = sim.stats()
    print(f"    {count} ids in {usage.wall_s:.1f} s, exit {usage.exit_code}", flush=True)
    accepted = served_rate(stats, accepted_only=True) or 0.0
    share = stats["throttled"] / max(1, stats["requests_total"])
    sc.add(
        "achieved_rate",
        Figure(
            round(accepted, 1),
            "accepted req/s",
            f">= {0.9 * LIMIT:g} (90% of {LIMIT:g})",
            accepted >= 0.9 * LIMIT,
        ),
    )
    sc.add(
        "achieved_share_of_limit",
        Figure(round(accepted / LIMIT, 4), "fraction", ">= 0.90", accepted >= 0.9 * LIMIT),
    )
    sc.add("share_429", Figure(round(share, 4), "fraction of requests", "<= 0.03", share <= 0.03))
    sc.add("responses_429", Figure(float(stats["throttled"]), "count"))
    changes, t0 = _rate_changes(log)
    _controller_figures(sc, changes)
    _plot(sc, changes, results, t0)
    sc.note(
        f"simulator token bucket {LIMIT:g}/s (bucket {int(LIMIT / 10)}, Retry-After in seconds); "
        f"worker --rate {2 * LIMIT:g} --concurrency {CONCURRENCY}, {count} ids, one run"
    )


def _rate_changes(log: Path) -> tuple[list[tuple[float, float, float, str]], float]:
    """(seconds since run.started, old, new, reason) of every rate.changed event."""
    t0: float | None = None
    changes: list[tuple[float, float, float, str]] = []
    for event in read_json_lines(log):
        if event.get("event") == "run.started" and t0 is None:
            t0 = iso_seconds(event["ts"])
        elif event.get("event") == "rate.changed" and t0 is not None:
            at = iso_seconds(event["ts"]) - t0
            changes.append((at, float(event["old"]), float(event["new"]), str(event["reason"])))
    return changes, t0 or 0.0


def _controller_figures(sc: Scenario, changes: list[tuple[float, float, float, str]]) -> None:
    drops = [c for c in changes if c[3] == "throttled"]
    sc.add("rate_decreases", Figure(float(len(drops)), "count"))
    if drops:
        sc.add(
            "first_decrease_to",
            Figure(drops[0][2], "req/s", note="granted rate after the first 429"),
        )
        if drops[0][2] < 0.5 * LIMIT:
            sc.note(
                f"the first 429 ({drops[0][0]:.2f} s into the run) cut the granted rate from "
                f"{drops[0][1]:g} to {drops[0][2]:g}/s, far below the {LIMIT:g}/s limit; the "
                "rate held 1.5 s, then climbed back by the controller's probes (steps doubling "
                "every second), so the run spent part of its time well under the limit"
            )
    back = next(
        (c[0] for c in changes if c[2] >= 0.9 * LIMIT and drops and c[0] > drops[0][0]), None
    )
    sc.add(
        "seconds_to_regain_90pct_of_limit",
        Figure(
            None if back is None else round(back - drops[0][0], 1),
            "s",
            note="from the first decrease until the granted rate is back at 90% of R",
        ),
    )


def _plot(
    sc: Scenario,
    changes: list[tuple[float, float, float, str]],
    results: Path,
    t0: float,
) -> None:
    times, rates = [0.0], [2 * LIMIT]
    for at, _, new, _ in changes:
        times += [at]
        rates += [new]
    settled = settled_per_second(results, t0)[:-1]
    end = max(len(settled), times[-1] + 1)
    times.append(end)
    rates.append(rates[-1])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.step(times, rates, where="post", label="granted rate (worker)")
    ax.step(
        range(len(settled)), settled, where="post", alpha=0.7, label="sessions settled per second"
    )
    ax.axhline(LIMIT, color="red", linestyle="--", label=f"simulator limit {LIMIT:g}/s")
    for at, _, _, reason in changes:
        if reason == "throttled":
            ax.axvline(at, color="grey", alpha=0.3, linewidth=0.8)
    ax.set_xlabel("seconds since run.started")
    ax.set_ylabel("requests per second")
    ax.set_ylim(0, 2 * LIMIT * 1.1)
    ax.set_title("Adaptive control: worker --rate 2R against a limit of R (grey: 429 decreases)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(sc.plots / "adaptive.png", dpi=100)
    plt.close(fig)
