"""``python -m bench.fleet`` (``make bench-fleet``): 1 to 4 workers drain one queue, one org limit.

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

from worker.fleet.demo import Drained, drain

HERE = Path(__file__).resolve().parent


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
