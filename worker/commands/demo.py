"""``devin-terminate demo``: the real ``run`` path against the built-in simulator.

The simulator is served in-process (its own event loop, in a thread) on a free loopback
port with a few hundred sessions in mixed states and a few injected faults. The demo writes
a sample CSV that also holds unknown ids, already-terminated ids, duplicates and malformed
lines, runs the job with archiving on, checks the result log against what it fed in, and
prints what happened. It needs no credentials: the simulator's token is used.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from worker.outcomes import RunReport
    from worker.simulator.server import RunningSimulator

HELP = "run the whole job against the built-in simulator"

MEANING = {
    0: "every id reached a final state",
    1: "finished, but some sessions failed or some input lines were invalid (the demo's input "
    "has malformed lines on purpose)",
    2: "usage, configuration or input error",
    3: "aborted: token refused or failure breaker tripped",
    4: "another run holds the lock",
    129: "interrupted (SIGHUP)",
    130: "interrupted (SIGINT)",
    143: "interrupted (SIGTERM)",
}
_MALFORMED = [
    "devin-../admin",
    "devin-abc%2Fdef",
    "devin-abc?archive=false",
    "devin-abc#frag",
    "devin-has space",
    "dеvin-cyrillic",
    "not-a-session",
    "devin-" + "x" * 200,
]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sessions", type=int, default=300, help="simulated sessions (default 300)"
    )
    parser.add_argument(
        "--dir", default="demo-output", help="where to write the input and result log"
    )
    from worker.commands.options import add_verbosity

    add_verbosity(parser)


def main(args: argparse.Namespace) -> int:
    return run_demo(sessions=args.sessions, directory=args.dir, quiet=args.quiet)


def write_sample(path: Path, sim: RunningSimulator) -> tuple[set[str], int]:
    """A CSV of terminable and already-terminated ids, unknown ids, duplicates, bad lines."""
    sessions = sim.sessions
    live = [sid for sid, s in sessions.items() if s["status"] not in ("exit", "error")]
    done = [sid for sid, s in sessions.items() if s["status"] in ("exit", "error")][:10]
    unknown = [f"devin-unknown{n:04d}" for n in range(5)]
    rows = [*live, *done, *unknown, *live[:5]]
    lines = ["session_id,note", *(f"{sid},demo" for sid in rows), *_MALFORMED]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return set(live) | set(done) | set(unknown), len(_MALFORMED)


def run_demo(*, sessions: int = 300, directory: str = "demo-output", quiet: bool = False) -> int:
    """The whole job against the simulator; with ``quiet``, only the verdict line (and what
    failed) instead of the walk-through."""
    from worker.output.logs import configure_logging
    from worker.run.job import run_job
    from worker.settings import load_settings
    from worker.simulator.config import SimulatorConfig
    from worker.simulator.server import simulator_in_thread

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = SimulatorConfig(
        sessions=sessions,
        seed=7,
        rate_limit=400,
        fault_rate=0.05,
        timeout_hang_s=3.0,
        already_terminated="409",
    )
    configure_logging(level="warning")
    with simulator_in_thread(config) as sim:
        sample = out / "sessions.csv"
        expected_ids, malformed = write_sample(sample, sim)
        settings = load_settings(
            {
                "org_id": config.org_id,
                "base_url": sim.base_url,
                "archive": True,
                "rate": 200,
                "concurrency": 16,
                "timeout": 1.5,
                "backoff_base": 0.1,
                "results": str(out / "results.jsonl"),
                "resume": False,
                "yes": True,
                "log_level": "warning",
            },
            environ={"DEVIN_API_KEY": config.token},
        )
        if not quiet:
            print(
                f"simulator: {sim.base_url}, {len(sim.sessions)} sessions; input: {sample}",
                file=sys.stderr,
            )
        report = run_job(settings, [str(sample)])
        stats = sim.stats.snapshot()
    return _explain(report, settings.results, expected_ids, malformed, stats, quiet=quiet)


def _explain(
    report: RunReport,
    results: Path,
    expected: set[str],
    malformed: int,
    stats: dict[str, object],
    *,
    quiet: bool = False,
) -> int:
    from worker.output.results import read_records

    records = [r for r in read_records(results) if r.get("event") == "session.result"]
    by_id = Counter(r["session_id"] for r in records if r["session_id"] is not None)
    invalid = sum(1 for r in records if r["outcome"] == "invalid")
    if not quiet:
        _walk_through(report, results, records, stats)
    problems = []
    if set(by_id) != expected or any(n != 1 for n in by_id.values()):
        problems.append("not exactly one result per distinct valid id")
    if invalid != malformed:
        problems.append(f"{invalid} invalid results for {malformed} malformed lines")
    if report.exit_code not in (0, 1):
        problems.append(f"unexpected exit code {report.exit_code}")
    for problem in problems:
        print("DEMO CHECK FAILED:", problem, file=sys.stderr)
    print(
        "demo: OK, every id and every malformed line is accounted for"
        if not problems
        else "demo: FAILED"
    )
    return 1 if problems else 0


def _walk_through(
    report: RunReport, results: Path, records: list[dict[str, Any]], stats: dict[str, object]
) -> None:
    print(f"\nresult log: {results}")
    print(f"outcomes:   {_plain(Counter(r['outcome'] for r in records))}")
    print(f"counted:    {_plain(report.counts)} (duplicates and skipped ids have no record)")
    faults = stats.get("faults_injected")
    injected = _plain(faults) if isinstance(faults, dict) and faults else "none"
    print(
        f"requests:   {report.requests} sent; the simulator saw {stats.get('requests_total')} "
        f"and injected faults: {injected}"
    )
    print(f"exit code:  {report.exit_code}: {MEANING.get(report.exit_code, '?')}")
    print(f"next:       devin-terminate report {results}   (counts, failures, exports)")


def _plain(counts: Mapping[str, object]) -> str:
    """``300 archived, 10 already_terminated``: largest first."""
    pairs = sorted(counts.items(), key=lambda kv: (-int(str(kv[1])), kv[0]))
    return ", ".join(f"{n} {name}" for name, n in pairs)
