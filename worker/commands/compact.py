"""``devin-terminate compact RESULTS [--keep 90d]``: keep a result log bounded.

Keeps the run records, the latest result of each session and the intents no final result
followed, written in the last ``--keep`` (default 90 days), drops the rest; takes the
log's locks (those ``run`` takes: the log's own inode, whatever name or symlink reaches it,
and the lock file), so it never rewrites a log that a run is appending to (exit 4 then,
nothing changed). A symlink to the log stays a symlink: the file it names is rewritten.
Run it after each nightly run: the log, and the resume scan at the start of every run,
stay the size of the window however many nights go by.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rewrite a result log keeping only the latest record per session of the last --keep"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from worker.commands.options import parse_duration

    parser.add_argument("results", metavar="RESULTS", help="the result log (JSONL) to compact")
    parser.add_argument(
        "--keep",
        type=parse_duration,
        default=90 * 86400.0,
        metavar="DURATION",
        help="retention: records older than this go, e.g. 30d, 12w (default 90d)",
    )
    parser.add_argument(
        "--lock", metavar="PATH", help="lock file (default RESULTS.lock, as `run` uses)"
    )
    from worker.commands.options import add_verbosity

    add_verbosity(parser)


def main(args: argparse.Namespace) -> int:
    import structlog

    from worker.output.compact import compact
    from worker.run.lifecycle import LogLife

    log = structlog.get_logger("worker.compact")
    results = Path(args.results)
    if not results.exists():  # no night has written one yet: nothing to do, nothing wrong
        if not args.quiet:
            log.info("results.absent", results=str(results))
        return 0
    with LogLife(results, args.lock):  # the locks a run takes; the log left to compact
        done = compact(results, args.keep)
    if not args.quiet:
        log.info(
            "results.compacted",
            results=str(results),
            records=f"{done.records_before} -> {done.records_after}",
            bytes=f"{done.bytes_before} -> {done.bytes_after}",
        )
    return 0
