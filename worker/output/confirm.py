"""The confirmation a person at a terminal gives before sessions are terminated."""

from __future__ import annotations

import sys

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
