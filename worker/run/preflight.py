"""Before anything is sent: credentials present, inputs readable, ids counted against
--max-sessions, a person's confirmation on a terminal.

The ids are counted before the run only when something needs the figure first
(--max-sessions, or the question on a terminal). Otherwise they are counted by
`count_meanwhile`, in a thread, while the run sends (and not at all with --progress off):
the count feeds only the progress figures, and it would hold up the first request by 50 ms
for 4,000 ids and by 9 s for a million. It starts with the first request sent: a rerun
whose ids were all settled before sends none, ends as soon as it has read them, and would
only pay for a second reading (in time and in memory) that nobody looks at."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

from worker.errors import ConfigError, InputError
from worker.input.opening import Source, Spooling, reread
from worker.input.sources import check_sources, count_sources, count_up_to
from worker.outcomes import Tally
from worker.settings import TOKEN_ENV, Settings

_PAUSE = (256, 0.002)  # the count sleeps 2 ms for every 256 ids it reads
_WAIT_S = 0.05  # how often the count looks whether the run has sent its first request
Total = Callable[[], int | None]  # the count of distinct ids, made when first asked for
Confirm = Callable[[Total, Settings], bool]


def require_credentials(settings: Settings) -> str:
    if settings.token is None:
        raise ConfigError(
            f"no API token: set {TOKEN_ENV} (a cog_... service-user key) or pass --token-file PATH"
        )
    if not settings.org_id:
        raise ConfigError("no organization: pass --org-id org-... or set DEVIN_ORG_ID")
    return settings.token.get_secret_value()


def preflight(
    settings: Settings,
    sources: Sequence[Source],
    confirm: Confirm | None,
) -> int | None:
    """Check inputs; count distinct ids (streaming) if --max-sessions or ``confirm`` asks
    for the figure, enforce --max-sessions, confirm. Returns the count, or None when it
    was not made (or cannot be: an input that can be read once, not spooled).

    ``sources`` are the inputs opened once (`worker.input.opening.open_sources`). The
    count is known when every input can be read twice: regular files, and stdin or pipes
    that ``run_job`` spooled (it does when --max-sessions is set).
    """
    require_credentials(settings)
    check_sources(sources, column=settings.column)
    counted: list[int | None] = []

    def total() -> int | None:
        if not counted:
            counted.append(_count(settings, sources))
        return counted[0]

    limit = settings.max_sessions
    if limit is not None and (found := total()) is not None and found > limit:
        raise _over_limit(found, limit)
    if confirm is not None and not confirm(total, settings):
        raise InputError("not confirmed; nothing was sent")
    return counted[0] if counted else None


def _count(settings: Settings, sources: Sequence[Source]) -> int | None:
    """Distinct ids of the inputs, or None when one of them can be read only once."""
    if not all(source.rereadable for source in sources):
        return None
    return count_sources(sources, column=settings.column, outcomes=settings.outcome)[0]


def count_meanwhile(
    settings: Settings,
    sources: Sequence[Source],
    tally: Tally,
    ended: threading.Event | None = None,
) -> threading.Thread | None:
    """Count the ids in a daemon thread, over readers of its own (`reread`), and put the
    figure in ``tally.expected`` when it is made; the thread is returned. None when an
    input can be read only once, or when no progress is shown (``--progress off``): the
    figure would have no reader, and the count costs a run CPU in every id it reads (about
    4% of a run's CPU at 16 in flight). A read error is left to the run, which meets it in its
    own reading. The count sleeps 2 ms for every 256 ids (a block of plain ids, some
    1,700, at once, then its sleeps): the run's event loop needs the same interpreter lock,
    and gets it within a few milliseconds.

    With ``ended``, the count waits for the run's first request after this call
    (``tally.requests`` rises), and gives up when ``ended`` is set first."""
    if settings.progress == "off":
        return None
    stack = contextlib.ExitStack()
    readers = stack.enter_context(reread(sources))
    if readers is None:
        stack.close()
        return None

    asked = tally.requests

    def run() -> None:
        with stack, contextlib.suppress(Exception):
            while ended is not None and tally.requests == asked:
                if ended.wait(_WAIT_S):
                    return
            found, _ = count_sources(
                readers, column=settings.column, outcomes=settings.outcome, pause=_PAUSE
            )
            tally.expected = found

    thread = threading.Thread(target=run, name="devin-terminate-count", daemon=True)
    thread.start()
    return thread


def _over_limit(found: int | None, limit: int) -> InputError:
    """``found``: the count, or None when the reading stopped at the first id over."""
    held = f"{found} distinct session ids, more than" if found else "more distinct session ids than"
    return InputError(
        f"the input holds {held} --max-sessions {limit}; nothing was sent. "
        "Raise the limit or split the input."
    )


_SPOOL_MIN_BYTES = 1 << 20
_SPOOL_RECORD_BYTES = 64 * 1024  # a CSV record's bound (worker.input.lines)


def spooling(settings: Settings) -> Spooling | None:
    """How inputs that can be read once are copied to be counted (only for
    --max-sessions): beside the result log, counted as they are copied so that the copy
    stops at the first id over the limit, and at most (limit + 1) records of the longest
    kind (1 MiB at least)."""
    limit = settings.max_sessions
    if limit is None:
        return None

    def read(source: Source) -> None:
        found = count_up_to(source, limit, column=settings.column, outcomes=settings.outcome)
        if found > limit:
            raise _over_limit(None, limit)

    max_bytes = max(_SPOOL_MIN_BYTES, (limit + 1) * _SPOOL_RECORD_BYTES)
    return Spooling(settings.results.resolve().parent, max_bytes, read)
