"""Scenario 4, client cost: the worker beside scripts, against a fast simulator, same run.

CPU: the worker's CPU seconds per 10,000 sessions beside a bare aiohttp loop (semaphore +
gather, the same DELETEs). Goal: ratio at most 1.5. The worker does more per session
(validation, retries, a result-log line, structured logs), so some overhead is expected.
Throughput: the worker beside ``xargs -P 16 curl`` and a ``requests`` + thread pool script.
Everyone runs at concurrency 16 with no rate limit; each client gets fresh terminable ids
(so every DELETE is a 200 with a session body) and the simulator's counters are reset
before each, so throughput is measured over the first to last request it received.
Each client's CPU includes its interpreter start-up (both Python clients pay it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt

from bench.baselines import baseline_argv
from bench.harness import (
    ORG_ID,
    TOKEN,
    ChildUsage,
    Figure,
    Scenario,
    Simulator,
    median,
    run_measured,
    served_rate,
    sessions_for,
    worker_env,
    worker_run_argv,
    write_ids,
)

CONCURRENCY = 16
SMALL = 20  # ids in the run that measures a client's start-up CPU
Command = Callable[[Path, str], list[str]]


def run(sc: Scenario) -> None:
    sizes = _sizes(sc.quick)
    reps = 1 if sc.quick else 2
    total = reps * (sizes["worker"] + sizes["aiohttp"]) + sizes["requests"] + sizes["curl"]
    total += 2 * SMALL
    measured: dict[str, list[tuple[ChildUsage, float, int]]] = {k: [] for k in sizes}
    curl = shutil.which("curl")
    with Simulator(sc.work, sessions=sessions_for(total)) as sim:
        pool = iter(sim.ids())
        order = [*(["worker", "aiohttp"] * reps), "requests", *(["curl"] if curl else [])]
        startup = {
            k: _startup_cpu(sc, k, [next(pool) for _ in range(SMALL)], sim.base_url)
            for k in ("worker", "aiohttp")
        }
        for kind in order:
            ids = [next(pool) for _ in range(sizes[kind])]
            path = write_ids(sc.work / f"ids-{kind}-{len(measured[kind])}.csv", ids)
            sim.reset_stats()
            usage = run_measured(
                _COMMANDS[kind](path, sim.base_url),
                env=worker_env(),
                stdout=sc.work / f"{kind}.out",
                stderr=sc.work / f"{kind}-{len(measured[kind])}.log",
            )
            stats = sim.stats()
            rate = served_rate(stats) or 0.0
            ok = stats["requests_by_status"].get("200", 0)
            measured[kind].append((usage, rate, ok))
            print(
                f"    {kind}: {len(ids)} ids, {rate:.0f} req/s, {ok} x 200, "
                f"CPU {usage.cpu_s:.2f} s, exit {usage.exit_code}",
                flush=True,
            )
    _figures(sc, measured, curl is not None)
    _marginal(sc, measured, startup)
    _plot(sc, measured)


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"worker": 3000, "aiohttp": 3000, "requests": 1500, "curl": 500}
    return {"worker": 10000, "aiohttp": 10000, "requests": 4000, "curl": 1500}


def _worker(ids: Path, base_url: str) -> list[str]:
    return worker_run_argv(
        [ids],
        base_url=base_url,
        results=ids.with_suffix(".results.jsonl"),
        rate=0,
        concurrency=CONCURRENCY,
    )


def _baseline(kind: str) -> Command:
    def command(ids: Path, base_url: str) -> list[str]:
        return baseline_argv(kind, ids, base_url, CONCURRENCY)

    return command


def _curl(ids: Path, base_url: str) -> list[str]:
    header = ids.with_suffix(".header")
    header.write_text(f"Authorization: Bearer {TOKEN}\n")  # not on argv, where ps shows it
    prefix = f"{base_url}/v3/organizations/{ORG_ID}/sessions/"
    script = (
        f"tail -n +2 '{ids}' | xargs -P {CONCURRENCY} -I{{}} "
        f"curl -s -o /dev/null -X DELETE -H @'{header}' '{prefix}{{}}?archive=false'"
    )
    return ["sh", "-c", script]


_COMMANDS: dict[str, Command] = {
    "worker": _worker,
    "aiohttp": _baseline("aiohttp"),
    "requests": _baseline("requests"),
    "curl": _curl,
}


def _per_10k(runs: list[tuple[ChildUsage, float, int]]) -> float:
    return median([u.cpu_s / max(1, ok) * 10_000 for u, _, ok in runs])


def _startup_cpu(sc: Scenario, kind: str, ids: list[str], base_url: str) -> float:
    path = write_ids(sc.work / f"ids-{kind}-small.csv", ids)
    usage = run_measured(_COMMANDS[kind](path, base_url), env=worker_env())
    print(f"    {kind}: {len(ids)} ids, CPU {usage.cpu_s:.2f} s (start-up)", flush=True)
    return usage.cpu_s


def _marginal(
    sc: Scenario, m: dict[str, list[tuple[ChildUsage, float, int]]], startup: dict[str, float]
) -> None:
    """CPU per 10,000 sessions once the start-up (a run of SMALL ids) is taken away."""
    per: dict[str, float] = {}
    for kind in ("worker", "aiohttp"):
        per[kind] = median(
            [(u.cpu_s - startup[kind]) / max(1, ok - SMALL) * 10_000 for u, _, ok in m[kind]]
        )
        sc.add(f"{kind}_cpu_s_per_10k_without_startup", Figure(round(per[kind], 2), "CPU s"))
    sc.add(
        "cpu_ratio_without_startup",
        Figure(
            round(per["worker"] / per["aiohttp"], 2),
            "x",
            note=f"start-up CPU = a run of {SMALL} ids: worker {startup['worker']:.2f} s, "
            f"aiohttp loop {startup['aiohttp']:.2f} s",
        ),
    )


def _figures(
    sc: Scenario, m: dict[str, list[tuple[ChildUsage, float, int]]], have_curl: bool
) -> None:
    worker_cpu, bare_cpu = _per_10k(m["worker"]), _per_10k(m["aiohttp"])
    sc.add("worker_cpu_s_per_10k", Figure(round(worker_cpu, 2), "CPU s"))
    sc.add("aiohttp_loop_cpu_s_per_10k", Figure(round(bare_cpu, 2), "CPU s"))
    ratio = worker_cpu / bare_cpu
    sc.add("cpu_ratio_worker_to_aiohttp", Figure(round(ratio, 2), "x", "<= 1.5", ratio <= 1.5))
    rates = {kind: median([r for _, r, _ in runs]) for kind, runs in m.items() if runs}
    for kind, rate in rates.items():
        sc.add(f"{kind}_throughput", Figure(round(rate, 1), "req/s"))
    sc.add(
        "throughput_ratio_worker_to_aiohttp",
        Figure(round(rates["worker"] / rates["aiohttp"], 2), "x"),
    )
    sc.add(
        "throughput_ratio_worker_to_requests_threads",
        Figure(round(rates["worker"] / rates["requests"], 2), "x"),
    )
    if have_curl:
        curl_ratio = rates["worker"] / rates["curl"]
        sc.add(
            "throughput_ratio_worker_to_xargs_curl",
            Figure(round(curl_ratio, 2), "x"),
        )
    else:
        sc.add(
            "throughput_ratio_worker_to_xargs_curl",
            Figure(None, "x", note="not measured: curl is not installed"),
        )
        sc.note("curl is not installed: xargs -P 16 curl was not measured")
    sc.note(
        f"concurrency {CONCURRENCY} for every client, no rate limit, fast simulator (no "
        "latency); CPU = user + sys of the client process (os.wait4), start-up included"
    )


def _plot(sc: Scenario, m: dict[str, list[tuple[ChildUsage, float, int]]]) -> None:
    kinds = [k for k in ("worker", "aiohttp", "requests", "curl") if m[k]]
    labels = {
        "worker": "devin-terminate",
        "aiohttp": "bare aiohttp loop",
        "requests": "requests + threads",
        "curl": "xargs -P 16 curl",
    }
    rates = [median([r for _, r, _ in m[k]]) for k in kinds]
    cpus = [_per_10k(m[k]) for k in kinds]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.bar([labels[k] for k in kinds], rates, color="tab:blue")
    left.set_ylabel("requests per second")
    left.set_title("Throughput, concurrency 16, same run")
    right.bar([labels[k] for k in kinds], cpus, color="tab:orange")
    right.set_ylabel("client CPU seconds per 10,000 sessions")
    right.set_title("Client CPU cost")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=15, labelsize=8)
    fig.tight_layout()
    fig.savefig(sc.plots / "cost.png", dpi=100)
    plt.close(fig)
