"""One ``run`` from files or stdin, start to finish: results path check, preflight, lock,
resume scan (refused for a log of another org or API), identity check (``GET /v3/self``),
the pipeline, the result log's first and last records. The CLI calls ``run_job`` and maps its
report (or a ``WorkerError``) to an exit code."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import structlog

from worker._version import __version__
from worker.client import DevinClient
from worker.errors import ConfigError, InputError, ResultLogError, WorkerError
from worker.idset import IdSet
from worker.intake import threaded
from worker.lock import RunLock
from worker.outcomes import Tally
from worker.output.history import PriorRuns, scan_results
from worker.pipeline import Pipeline, RunReport
from worker.results import ResultLog, check_results_path
from worker.run.identity import check_identity
from worker.settings import TOKEN_ENV, Settings
from worker.sources import check_inputs, count_distinct_ids, read_inputs

log = structlog.get_logger("worker.job")

Confirm = Callable[[int | None, Settings], bool]


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
    inputs: Sequence[str],
    confirm: Confirm | None,
    stdin: BinaryIO | None = None,
) -> int | None:
    """Check inputs, count distinct ids (streaming), enforce --max-sessions, confirm.

    The count is known for file inputs; for stdin only when ``stdin`` is a seekable spool
    (``run_job`` spools stdin to an unlinked temporary file when --max-sessions is set).
    """
    require_credentials(settings)
    check_inputs(inputs, column=settings.column)
    total = _count(settings, inputs, stdin)
    if settings.max_sessions is not None and total is not None and total > settings.max_sessions:
        raise InputError(
            f"the input holds {total} distinct session ids, more than --max-sessions "
            f"{settings.max_sessions}; nothing was sent. Raise the limit or split the input."
        )
    if confirm is not None and not confirm(total, settings):
        raise InputError("not confirmed; nothing was sent")
    return total


def _count(settings: Settings, inputs: Sequence[str], stdin: BinaryIO | None) -> int | None:
    files = [name for name in inputs if name != "-"]
    if files and len(files) == len(inputs):
        return count_distinct_ids(files, column=settings.column)[0]
    if stdin is None or not stdin.seekable():
        return None
    seen = IdSet()
    for item in read_inputs(inputs, column=settings.column, stdin=stdin):
        if item.session_id is not None:
            seen.add(item.session_id)
    stdin.seek(0)
    return len(seen)


def _spool(stdin: BinaryIO | None, directory: Path) -> BinaryIO:
    """Copy stdin to an unlinked 0600 temporary file, so that it can be counted first."""
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by run_job's ExitStack
    shutil.copyfileobj(stdin if stdin is not None else sys.stdin.buffer, spool)
    spool.seek(0)
    return spool


def run_job(
    settings: Settings,
    inputs: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    confirm: Confirm | None = None,
    tally: Tally | None = None,
) -> RunReport:
    """The whole ``run`` command. Raises WorkerError subclasses for fatal conditions."""
    tally = tally or Tally()
    check_results_path(settings.results)
    with ExitStack() as stack:
        if settings.max_sessions is not None and (not inputs or "-" in inputs):
            stdin = stack.enter_context(_spool(stdin, settings.results.resolve().parent))
        tally.expected = preflight(settings, inputs, confirm, stdin)
        stack.enter_context(RunLock(settings.results, settings.lock))
        prior = _resume_state(settings)
        run_id = uuid.uuid4().hex[:12]
        sink = ResultLog(settings.results, run_id, fresh=not settings.resume)
        stack.callback(sink.close)
        structlog.contextvars.bind_contextvars(run_id=run_id)
        start = _Start(settings, inputs, sink, tally, resumed=len(prior.settled))
        try:
            report = asyncio.run(_run(settings, inputs, stdin, sink, prior, start))
        except WorkerError as exc:  # e.g. the token refused: a started log still ends
            if start.done:
                elapsed = time.monotonic() - tally.started
                _finish(sink, dict(tally.counts), elapsed, exc.exit_code, interrupted=False)
            raise
        if start.done:  # else interrupted during the identity check: nothing was written
            _finish(
                sink,
                report.counts,
                report.elapsed_s,
                report.exit_code,
                interrupted=report.interrupted,
            )
        return report


class _Start:
    """The pipeline's first step, with the run's client: who am I (``GET /v3/self``), then
    ``run.started``. A run stopped by the identity check leaves no record at all."""

    def __init__(
        self,
        settings: Settings,
        inputs: Sequence[str],
        sink: ResultLog,
        tally: Tally,
        *,
        resumed: int,
    ) -> None:
        self._settings, self._inputs, self._sink = settings, inputs, sink
        self.tally, self._resumed = tally, resumed
        self.done = False

    async def __call__(self, client: DevinClient) -> None:
        s = self._settings
        await check_identity(client, org_id=s.org_id or "", base_url=s.base_url)
        self._sink.started(
            version=__version__,
            org_id=s.org_id,
            base_url=_api_root(s.base_url),
            archive=s.archive,
            dry_run=s.dry_run,
            settings=s.public(),
            inputs=list(self._inputs) or ["-"],
        )
        self.done = True
        log.info(
            "run.started",
            org_id=s.org_id,
            results=str(s.results),
            expected=self.tally.expected,
            archive=s.archive,
            dry_run=s.dry_run,
            resumed_settled=self._resumed,
        )


def _finish(
    sink: ResultLog, counts: dict[str, int], elapsed: float, code: int, *, interrupted: bool
) -> None:
    """``run.finished``, if the disk has room for it (a full one already stopped the run)."""
    broken = sink.broken  # the run already stopped for it and says why: no second line
    try:
        sink.finished(counts=counts, elapsed_s=elapsed, exit_code=code, interrupted=interrupted)
    except ResultLogError as exc:
        if not broken:
            log.warning("results.unfinished", error=str(exc))


async def _run(
    settings: Settings,
    inputs: Sequence[str],
    stdin: BinaryIO | None,
    sink: ResultLog,
    prior: PriorRuns,
    start: _Start,
) -> RunReport:
    pipeline = Pipeline(
        settings,
        sink.result,
        settled=prior.settled,
        tally=start.tally,
        handle_signals=True,
        sent=prior.sent,
        before_send=sink.sending,
    )
    items = threaded(read_inputs(inputs, column=settings.column, stdin=stdin))
    return await pipeline.run(items, first=start)


def _resume_state(settings: Settings) -> PriorRuns:
    if not settings.resume:
        return PriorRuns()
    prior = scan_results(settings.results)
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
    api = _api_root(settings.base_url)
    for org, url in sorted(prior.owners, key=str):
        if (org is None or org == settings.org_id) and (url is None or url == api):
            continue
        where = url or "an unrecorded URL"
        raise ConfigError(
            f"the result log {settings.results} belongs to org {org} at {where}, "
            f"not to --org-id {settings.org_id} at {api}; its records cannot be resumed here. "
            "Pass another --results file, or --no-resume to move this log aside."
        )


def _api_root(base_url: str) -> str:
    return base_url.rstrip("/")
