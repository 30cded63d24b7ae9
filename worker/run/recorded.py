"""One run, the same way for the CLI (``run_job``) and the library (``terminate_sessions``).

With a result log: the lock on it (its inode and the lock file; ``LockError``, exit 4, when
another run holds it), the resume scan (refused for a log of another org or API: the ids it
settled are skipped, a DELETE it sent without an answer is remembered), the identity check
(``GET /v3/self``) before the first DELETE, then ``run.started``, every result (and the
intent before each first DELETE), ``run.finished``. Without one (the library only): the
identity check and the results, nothing written. A fatal condition raises a
``WorkerError``; a run that was stopped once sessions were in flight returns its report
(exit 3, 130, 143) and its log still ends with ``run.finished``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, ExitStack, nullcontext

import structlog

from worker._version import __version__
from worker.devin.client import DevinClient
from worker.errors import ConfigError, ResultLogError, WorkerError
from worker.input.sources import InputItem
from worker.outcomes import RunReport, SessionResult, Tally
from worker.output.history import PriorRuns, scan_results
from worker.output.lock import RunLock
from worker.output.results import ResultLog
from worker.run.authority import Authority
from worker.run.identity import check_identity
from worker.run.pipeline import Pipeline
from worker.run.watch import watching
from worker.settings import Settings

log = structlog.get_logger("worker.run.recorded")

OnResult = Callable[[SessionResult], None]


class RecordedRun:
    """``with RecordedRun(settings, inputs=...) as run: report = await run.run(items)``.

    Entering takes the lock, reads the log for resume and opens it (``logged=False``: none
    of that); leaving closes the log and drops the lock. ``inputs`` name where the ids come
    from, for ``run.started``; ``on_result`` hears every result after it was written;
    ``handle_signals``: SIGINT/SIGTERM drain the run (the CLI); ``keep_run_id``: the run id
    stays bound to the log lines after the run (the CLI), else only during it;
    ``on_started`` is called once ``run.started`` is out, before the first DELETE."""

    def __init__(
        self,
        settings: Settings,
        *,
        inputs: Sequence[str],
        tally: Tally | None = None,
        logged: bool = True,
        on_result: OnResult | None = None,
        handle_signals: bool = False,
        keep_run_id: bool = False,
        on_started: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.tally = tally or Tally()
        self.run_id = uuid.uuid4().hex[:12]
        self.prior = PriorRuns()
        self.sink: ResultLog | None = None
        self.inputs = list(inputs)
        self._logged = logged
        self._on_result = on_result
        self._handle_signals = handle_signals
        self._keep_run_id = keep_run_id
        self.on_started = on_started
        self._stack = ExitStack()

    def __enter__(self) -> RecordedRun:
        s = self.settings
        with ExitStack() as stack:  # a refusal on the way in releases what was taken
            if self._logged:
                stack.enter_context(RunLock(s.results, s.lock))
                self.prior = _resume_state(s)
                self.sink = ResultLog(s.results, self.run_id, fresh=not s.resume)
                stack.callback(self.sink.close)
            if self._keep_run_id:  # the CLI: its last lines (an abort) name the run too
                structlog.contextvars.bind_contextvars(run_id=self.run_id)
            else:  # the library: the caller's context is left as it was
                stack.enter_context(structlog.contextvars.bound_contextvars(run_id=self.run_id))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    async def run(
        self, items: AsyncIterator[InputItem], *, failures: Sequence[WorkerError] = ()
    ) -> RunReport:
        """Run ``items``; ``failures`` (filled while they are read) raise once the rest
        settled, after ``run.finished`` says so."""
        pipeline = Pipeline(
            self.settings,
            self._record,
            settled=self.prior.settled,
            tally=self.tally,
            handle_signals=self._handle_signals,
            sent=self.prior.sent,
            before_send=self.sink.sending if self.sink is not None else None,
            unarchived=self.prior.unarchived,
        )
        start = _Start(self, pipeline.authority, resumed=len(self.prior.settled))
        try:
            async with self._watched(pipeline):
                report = await pipeline.run(items, first=start)
            if failures:  # e.g. no column of a piped CSV holds ids: exit 2
                raise failures[0]
        except WorkerError as exc:  # e.g. the token refused: a started log still ends
            if start.done:
                elapsed = time.monotonic() - self.tally.started
                self._finish(dict(self.tally.counts), elapsed, exc.exit_code, interrupted=False)
            raise
        if start.done:  # else stopped during the identity check: nothing was written
            self._finish(
                report.counts, report.elapsed_s, report.exit_code, interrupted=report.interrupted
            )
        return report

    def _watched(self, pipeline: Pipeline) -> AbstractAsyncContextManager[None]:
        if self.sink is None:
            return nullcontext()
        return watching(self.sink.check, pipeline.log_failed)

    def _record(self, result: SessionResult) -> None:
        if self.sink is not None:
            self.sink.result(result)  # raises ResultLogError: the pipeline stops
        if self._on_result is not None:
            self._on_result(result)

    def _finish(
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


class _Start:
    """The pipeline's first step, with the run's client: who am I (``GET /v3/self``), then
    ``run.started``. A run stopped by the identity check leaves no record at all."""

    def __init__(self, run: RecordedRun, authority: Authority, *, resumed: int) -> None:
        self._run, self._authority, self._resumed = run, authority, resumed
        self.done = False  # run.started was written

    async def __call__(self, client: DevinClient) -> None:
        s, sink = self._run.settings, self._run.sink
        who = await check_identity(client, org_id=s.org_id or "", base_url=s.base_url)
        if who.principal is not None and who.principal in self._run.prior.terminators:
            self._authority.succeeded()  # this service user terminated sessions before
        if sink is not None:
            sink.started(
                version=__version__,
                org_id=s.org_id,
                principal=who.principal,
                base_url=api_root(s.base_url),
                archive=s.archive,
                dry_run=s.dry_run,
                settings=s.public(),
                inputs=self._run.inputs,
            )
            self.done = True
        log.info(
            "run.started",
            org_id=s.org_id,
            results=str(s.results) if sink is not None else None,
            expected=self._run.tally.expected,
            archive=s.archive,
            dry_run=s.dry_run,
            resumed_settled=self._resumed,
        )
        if self._run.on_started is not None:
            self._run.on_started()


def _resume_state(settings: Settings) -> PriorRuns:
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
        if (org is None or org == settings.org_id) and (url is None or url == api):
            continue
        where = url or "an unrecorded URL"
        raise ConfigError(
            f"the result log {settings.results} belongs to org {org} at {where}, "
            f"not to --org-id {settings.org_id} at {api}; its records cannot be resumed here. "
            "Pass another --results file, or --no-resume to move this log aside."
        )


def api_root(base_url: str) -> str:
    return base_url.rstrip("/")
