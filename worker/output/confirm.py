"""The confirmation a person at a terminal gives before sessions are terminated."""

from __future__ import annotations

import sys
from collections.abc import Callable

from worker.settings import Settings


def confirm_on_terminal(total: Callable[[], int | None], settings: Settings) -> bool:
    """Ask before terminating, only when a person is at a terminal and ``--yes`` is not
    given; ``total()`` counts the ids, and is called only when the question is asked."""
    if settings.yes or settings.dry_run or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    found = total()
    count = "an unknown number of" if found is None else str(found)
    archive = "and ARCHIVE " if settings.archive else ""
    sys.stderr.write(
        f"About to terminate {archive}{count} sessions of {settings.org_id}. Continue? [y/N] "
    )
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
