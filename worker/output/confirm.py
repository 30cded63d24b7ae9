"""The confirmation a person at a terminal gives before sessions are terminated.

A person is there when stderr is a terminal. The question is asked on stdin when it is
that terminal too; when the ids come down a pipe (``cat ids | devin-terminate run -``), on
the controlling terminal, ``/dev/tty``, as ``xargs -p`` asks. No terminal at all (cron,
CI, a container without one: ``/dev/tty`` does not open) asks nothing, as before.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from worker.settings import Settings


def confirm_on_terminal(total: Callable[[], int | None], settings: Settings) -> bool:
    """Ask before terminating, only when a person is at a terminal and ``--yes`` is not
    given; ``total()`` counts the ids, and is called only when the question is asked."""
    if settings.yes or settings.dry_run or not sys.stderr.isatty():
        return True
    with _terminal() as terminal:
        if terminal is None:
            return True
        found = total()
        count = "an unknown number of" if found is None else str(found)
        archive = "and ARCHIVE " if settings.archive else ""
        ask, answer = terminal
        ask.write(
            f"About to terminate {archive}{count} sessions of {settings.org_id}. Continue? [y/N] "
        )
        ask.flush()
        return answer.readline().strip().lower() in ("y", "yes")


@contextlib.contextmanager
def _terminal() -> Iterator[tuple[TextIO, TextIO] | None]:
    """(where to ask, where to read the answer), or None when there is no terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        yield sys.stderr, sys.stdin
        return
    with contextlib.ExitStack() as stack:
        try:  # two streams: a text stream cannot both read and write a terminal
            ask = stack.enter_context(open("/dev/tty", "w", encoding="utf-8"))
            answer = stack.enter_context(open("/dev/tty", encoding="utf-8", errors="replace"))
        except OSError:  # ENXIO: no controlling terminal
            yield None
            return
        yield ask, answer
