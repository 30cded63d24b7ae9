"""What an operator sees while a run goes and when it ends: confirmation, progress, summary."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from worker.pipeline import RunReport, Tally
from worker.settings import Settings


def confirm_on_terminal(total: int | None, settings: Settings) -> bool:
    """Ask before terminating, only when a person is at a terminal and ``--yes`` is not given."""
    if settings.yes or settings.dry_run or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    count = "an unknown number of" if total is None else str(total)
    archive = "and ARCHIVE " if settings.archive else ""
    sys.stderr.write(
        f"About to terminate {archive}{count} sessions of {settings.org_id}. Continue? [y/N] "
    )
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@contextmanager
def progress_for(settings: Settings) -> Iterator[Tally]:
    yield Tally()


def print_summary(report: RunReport, settings: Settings) -> None:
    summary = {
        "event": "run.summary",
        "exit_code": report.exit_code,
        "counts": report.counts,
        "requests": report.requests,
        "elapsed_s": round(report.elapsed_s, 3),
        "interrupted": report.interrupted,
        "reason": report.reason,
        "results": str(settings.results),
    }
    sys.stderr.write(orjson.dumps(summary).decode() + "\n")
