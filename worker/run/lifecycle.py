"""The life of a result log around whatever touches it: one context manager for ``run``, the
library, ``work`` and ``compact``.

Entering takes the two locks of the log (`worker.output.lock.RunLock`: its inode, whatever
name or symlink reaches it, and the lock file, the default or ``--lock``; ``LockError``,
exit 4, when another holds them). With ``scan`` it reads the log for resume (refused for a
log of another org or API); with ``write`` it opens the log for appending (``fresh``: the
old one moved aside first). ``started`` writes ``run.started`` with the fields every run
records, ``finished`` writes ``run.finished`` if the disk has room (a log that already
failed stopped the run and said why: no second line). Leaving closes the log and drops the
locks. A command that rewrites the log (``compact``) enters with neither: the locks only.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from worker._base_url import normalized_base_url
from worker._version import __version__
from worker.errors import ConfigError, ResultLogError
from worker.output.history import PriorRuns, scan_results
from worker.output.lock import RunLock
from worker.output.results import ResultLog

if TYPE_CHECKING:
    from worker.settings import Settings

log = structlog.get_logger("worker.run.lifecycle")


class LogLife:
    """``with LogLife(results, lock, ...) as life:`` — ``life.prior``, ``life.sink``."""

    def __init__(
        self,
        results: str | os.PathLike[str],
        lock: str | os.PathLike[str] | None = None,
        *,
        run_id: str = "",
        write: bool = False,
        fresh: bool = False,
        scan: Settings | None = None,
    ) -> None:
        self.results = Path(results)
        self._lock = lock
        self.run_id = run_id
        self._write, self._fresh, self._scan = write, fresh, scan
        self.prior = PriorRuns()
        self.sink: ResultLog | None = None
        self._stack = ExitStack()

    def __enter__(self) -> LogLife:
        with ExitStack() as stack:  # a refusal on the way in releases what was taken
            stack.enter_context(RunLock(self.results, self._lock))
            if self._scan is not None:
                self.prior = resume_state(self._scan)
            if self._write:
                self.sink = ResultLog(self.results, self.run_id, fresh=self._fresh)
                stack.callback(self.sink.close)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def started(self, settings: Settings, *, inputs: list[str], **more: Any) -> None:
        """``run.started``: who, where, how, and from which inputs (``more``: extra fields)."""
        if self.sink is not None:
            self.sink.started(
                version=__version__,
                org_id=settings.org_id,
                base_url=api_root(settings.base_url),
                archive=settings.archive,
                dry_run=settings.dry_run,
                settings=settings.public(),
                inputs=inputs,
                **more,
            )

    def finished(
        self, counts: dict[str, int], elapsed: float, code: int, *, interrupted: bool
    ) -> None:
        """``run.finished``, if the disk has room for it (a full one already stopped the run)."""
        sink = self.sink
        if sink is None:
            return
        broken = sink.broken  # the run already stopped for it and says why: no second line
        try:
            sink.finished(counts=counts, elapsed_s=elapsed, exit_code=code, interrupted=interrupted)
        except ResultLogError as exc:
            if not broken:
                log.warning("results.unfinished", error=str(exc))


def resume_state(settings: Settings) -> PriorRuns:
    """What the log of ``settings`` says earlier runs did (nothing with ``--no-resume``)."""
    if not settings.resume:
        return PriorRuns()
    prior = scan_results(settings.results, archive=settings.archive)
    _check_owner(prior, settings)
    if prior.bad_lines:
        log.warning(
            "results.unreadable_lines",
            path=str(settings.results),
            lines=prior.bad_lines[:20],
            torn_tail=prior.torn_tail,
            hint="a run was killed mid-write; these lines are ignored and their ids retried",
        )
    if prior.settled:
        log.info("run.resuming", settled=len(prior.settled), sent_unanswered=len(prior.sent))
    return prior


def _check_owner(prior: PriorRuns, settings: Settings) -> None:
    """A result log belongs to one org and one API: resuming from another's is refused."""
    api = api_root(settings.base_url)
    for org, url in sorted(prior.owners, key=str):
        if (org is None or org == settings.org_id) and (url is None or api_root(url) == api):
            continue
        where = url or "an unrecorded URL"
        raise ConfigError(
            f"the result log {settings.results} belongs to org {org} at {where}, "
            f"not to --org-id {settings.org_id} at {api}; its records cannot be resumed here. "
            "Pass another --results file, or --no-resume to move this log aside."
        )


def api_root(base_url: str) -> str:
    """The name of an API that keys a log: logs written before names were normalized too."""
    return normalized_base_url(base_url)
