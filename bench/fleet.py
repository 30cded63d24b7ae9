"""``python -m bench.fleet`` (``make bench-fleet``): 1 to 4 workers drain one queue, one org limit.

``python -m bench --only fleet`` (part of ``make bench``) runs issue 21's two checks: one
worker at ``--org-rate`` = L (accepted ÷ L, and Redis commands per DELETE from ``INFO
commandstats``, the scripts' own commands included), and three workers at ``--org-rate``
1.5 L, the limit unknown (accepted ÷ L over the body, share of 429s).

Each run: a throw-away Redis on loopback, the simulator limiting the org to L requests/s
(bucket L/10), 10,000 ids enqueued, N ``work --until-empty`` processes. Figures: accepted
requests per second over the body of the run ÷ L, the peak one-second count the server saw,
the share of 429s, the wall time to drain (process start-up included), and the limiter's
Redis round trips per request. ``--org-rate-factor 1.5`` sets the fleet's rate above the
server's limit, so the shared adaptive control has to find it.

Writes bench/fleet.json; the figures are copied by hand into bench/REPORT.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Figure, Scenario
from worker.fleet.demo import Drained, drain

HERE = Path(__file__).resolve().parent
LIMIT = 250.0  # the simulator's org limit L (answers in 15 ms)


def run(sc: Scenario) -> None:
    """The scenario of ``python -m bench``: issue 21's two rate checks, one run each."""
    # the simulator's population: about 4,200 and 6,300 ids enqueued
    sessions = 1_500 if sc.quick else 4_000
    one = _drain(sc, "one", workers=1, sessions=sessions, org_rate=LIMIT)
    _figure(sc, "one_worker_accepted_share_of_limit", one.accepted_share_of_limit, ">= 0.9")
    per_delete = one.commands_per_delete
    sc.add(
        "one_worker_redis_commands_per_delete",
        Figure(round(per_delete, 3), "commands", "<= 0.5", per_delete <= 0.5),
    )
    three = _drain(sc, "three", workers=3, sessions=sessions * 3 // 2, org_rate=1.5 * LIMIT)
    share = three.accepted_share_of_limit
    _figure(sc, "three_workers_x1.5_accepted_share_of_limit", share, ">= 0.9")
    throttled = three.throttled_share
    sc.add(
        "three_workers_x1.5_share_429",
        Figure(round(throttled, 4), "fraction of requests", "<= 0.03", throttled <= 0.03),
    )
    sc.note(
        f"simulator limit L = {LIMIT:g}/s (bucket L/10), answers in 15 ms; Valkey on loopback; "
        f"one worker: {one.ids} ids, --org-rate L, {one.deletes} DELETEs, "
        f"{one.redis_commands} Redis commands while the workers drained (INFO commandstats, "
        "reset after enqueue: the commands the scripts run inside Redis counted too, the INFO "
        f"call left out); three workers: {three.ids} ids, --org-rate 1.5 L, the limit "
        f"unknown, peak 1-s {three.stats['peak_requests_per_second']}, body {three.body_s:.1f} s"
    )
    for run in (one, three):
        if run.exit_codes != [0] * run.workers or run.max_finals_per_id != 1 or run.left:
            sc.note(f"{run.workers} worker(s): exit {run.exit_codes}, left {run.left}")


def _drain(sc: Scenario, tag: str, *, workers: int, sessions: int, org_rate: float) -> Drained:
    directory = sc.work / tag
    directory.mkdir()
    return drain(
        workers=workers, sessions=sessions, limit=LIMIT, org_rate=org_rate, directory=directory
    )


def _figure(sc: Scenario, name: str, value: float, goal: str) -> None:
    sc.add(name, Figure(round(value, 3), "fraction", goal, value >= float(goal.split()[-1])))


def figures(run: Drained, org_rate: float) -> dict[str, Any]:
    return {
        "workers": run.workers,
        "ids": run.ids,
        "limit": run.limit,
        "org_rate": org_rate,
        "accepted_share_of_limit": round(run.accepted_share_of_limit, 3),
        "peak_1s": run.stats["peak_requests_per_second"],
        "share_429": round(run.throttled_share, 4),
        "wall_s": round(run.wall_s, 1),
        "body_s": round(run.body_s, 1),
        "round_trips_per_request": round(run.round_trips / max(1, run.requests), 2),
        "redis_commands_per_delete": round(run.commands_per_delete, 3),
        "exit_codes": run.exit_codes,
        "settled": sum(run.outcomes.values()),
        "max_final_records_per_id": run.max_finals_per_id,
        "left_queued_or_pending": run.left,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=250.0)
    parser.add_argument("--workers", default="1,2,3,4")
    parser.add_argument("--org-rate-factor", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=HERE / "fleet.json")
    parser.add_argument(
        "--kill-after", type=float, help="SIGKILL worker 0 this many seconds in, restart it"
    )
    args = parser.parse_args()
    rows = []
    org_rate = args.limit * args.org_rate_factor
    for workers in (int(n) for n in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix="devin-bench-fleet-") as tmp:
            run = drain(
                workers=workers,
                sessions=args.sessions,
                limit=args.limit,
                org_rate=org_rate,
                directory=Path(tmp),
                kill_after=args.kill_after,
            )
        row = figures(run, org_rate)
        rows.append(row)
        print(json.dumps(row), flush=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    kill = f"_kill_after_{args.kill_after:g}s" if args.kill_after else ""
    previous[f"org_rate_x{args.org_rate_factor:g}{kill}"] = rows
    args.out.write_text(json.dumps(previous, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
