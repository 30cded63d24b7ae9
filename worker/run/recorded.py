"""One run, the same way for the CLI (``run_job``) and the library (``terminate_sessions``).

With a result log, its lifecycle (`worker.run.lifecycle`, as for ``work`` and ``compact``):
the locks on it (``LockError``, exit 4, when another holds them), the resume scan (refused
for a log of another org or API: the ids it settled are skipped, a DELETE it sent without
an answer is remembered); then the identity check
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

from worker.devin.client import DevinClient
from worker.errors import WorkerError
from worker.outcomes import RunReport, SessionResult, Tally
from worker.output.history import PriorRuns
from worker.output.results import ResultLog
from worker.run.admission import Entry
from worker.run.authority import Authority
from worker.run.identity import check_identity
from worker.run.lifecycle import LogLife
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
        self.life = LogLife(
            settings.results,
            settings.lock,
            run_id=self.run_id,
            write=True,
            fresh=not settings.resume,
            scan=settings,
        )
        self.inputs = list(inputs)
        self._logged = logged
        self._on_result = on_result
        self._handle_signals = handle_signals
        self._keep_run_id = keep_run_id
        self.on_started = on_started
        self._stack = ExitStack()

    @property
    def prior(self) -> PriorRuns:
        """What earlier runs in the log did (nothing without a log)."""
        return self.life.prior

    @property
    def sink(self) -> ResultLog | None:
        return self.life.sink

    def __enter__(self) -> RecordedRun:
        with ExitStack() as stack:  # a refusal on the way in releases what was taken
            if self._logged:  # the log's lifecycle: its locks, the resume scan, the log
                stack.enter_context(self.life)
            if self._keep_run_id:  # the CLI: its last lines (an abort) name the run too
                structlog.contextvars.bind_contextvars(run_id=self.run_id)
            else:  # the library: the caller's context is left as it was
                stack.enter_context(structlog.contextvars.bound_contextvars(run_id=self.run_id))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    async def run(
        self, items: AsyncIterator[Entry], *, failures: Sequence[WorkerError] = ()
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
                self.life.finished(
                    dict(self.tally.counts), elapsed, exc.exit_code, interrupted=False
                )
            raise
        if start.done:  # else stopped during the identity check: nothing was written
            self.life.finished(
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


class _Start:
    """The pipeline's first step, with the run's client: who am I (``GET /v3/self``), then
    ``run.started``. A run stopped by the identity check leaves no record at all."""

    def __init__(self, run: RecordedRun, authority: Authority, *, resumed: int) -> None:
        self._run, self._authority, self._resumed = run, authority, resumed
        self.done = False  # run.started was written

    async def __call__(self, client: DevinClient) -> None:
        s, sink = self._run.settings, self._run.sink
        who = await check_identity(
            client,
            org_id=s.org_id or "",
            base_url=s.base_url,
            token_from=s.token_origin,
            org_from=s.origin("org_id"),
        )
        if who.principal is not None and who.principal in self._run.prior.terminators:
            self._authority.succeeded()  # this service user terminated sessions before
        if sink is not None:
            self._run.life.started(s, inputs=self._run.inputs, principal=who.principal)
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
