"""The run: intake → (dedupe, resume) → bounded concurrent terminate → result log.

One TaskGroup owns every session task; the concurrency slot is taken before the task is
created (and handed on while the session waits to retry). Shutdown is two-phase: the first
SIGINT/SIGTERM stops intake and lets the requests in flight finish within ``drain_timeout``;
the deadline or a second signal cancels them, each recorded as ``cancelled``. A failure for
one session is a result; only auth failures, the failure breaker, signals and a result log
that cannot be written stop the run (the last at once: nothing unrecordable is sent)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Mapping

import structlog

from worker.devin.client import ClientOptions, DevinClient
from worker.errors import ResultLogError
from worker.input.idset import IdSet
from worker.input.sources import InputItem
from worker.outcomes import RunReport, SessionResult, Tally, exit_code
from worker.output.rates import RateNotes
from worker.run.admission import Admission, Entry
from worker.run.authority import Authority
from worker.run.breaker import Breaker
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy
from worker.run.shutdown import Shutdown
from worker.run.slots import Slots
from worker.run.terminate import Terminator
from worker.settings import Settings

log = structlog.get_logger("worker.run.pipeline")

ResultSink = Callable[[SessionResult], None]
ClientCheck = Callable[[DevinClient], Awaitable[None]]


class Pipeline:
    """Runs one job; ``sink`` receives every result (the result log, a list, a callback)."""

    def __init__(
        self,
        settings: Settings,
        sink: ResultSink,
        *,
        settled: IdSet | None = None,
        tally: Tally | None = None,
        handle_signals: bool = False,
        sent: Container[str] = frozenset(),
        before_send: Callable[[str], None] | None = None,
        gate: RateGate | None = None,
        unarchived: Mapping[str, str] | None = None,
    ) -> None:
        """``sent``: ids an earlier run sent a DELETE for without recording the answer;
        ``before_send``: called before the first DELETE of each session (durable intent);
        ``unarchived``: sessions an earlier run terminated without archiving them (id:
        status), with ``--archive`` given the archive call alone."""
        self.settings = settings
        self.tally = tally or Tally()
        self._sink = sink
        limit = settings.limit
        self._admission = Admission(self.tally, settled=settled, limit=limit, invalid=self._invalid)
        self._sent = sent
        self._before_send = before_send
        self.authority = Authority(token_from=settings.token_origin)  # may this token terminate?
        self._unarchived = unarchived or {}
        self._log_error: str | None = None  # the result log failed: stop, exit 3
        self._halt = Halt(listener=self._halted)
        # bound once: a lazy proxy would rebuild the logger on each call, filtered or not
        self._log = log.bind()
        self._term: Terminator | None = None
        self._breaker = Breaker(settings.breaker_window, settings.breaker_threshold)
        self._shutdown = Shutdown(settings.drain_timeout, self._halt, handle=handle_signals)
        self._breaker_tripped = False
        self._intake_task: asyncio.Task[None] | None = None
        self._rates = RateNotes(settings.rate)
        # the run's own local gate, unless the caller passes one (the fleet: a shared one)
        self._gate = gate or RateGate(
            settings.rate or None,
            burst=settings.burst,
            adaptive=settings.adaptive,
            max_pause=settings.retry_after_max,
            on_change=self._rate_changed,
        )
        fixed, gate = settings.concurrency, self._gate
        self._slots = Slots.auto(lambda: gate.rate, gate.now) if fixed == "auto" else Slots(fixed)

    @property
    def draining(self) -> bool:
        """The run stops sending: a signal, an abort, or a result log that failed."""
        return bool(self._halt)

    @property
    def gate(self) -> RateGate:
        return self._gate

    async def run(
        self, items: AsyncIterator[Entry], *, first: ClientCheck | None = None
    ) -> RunReport:
        """Run every item; ``first`` is awaited with the run's client before any session."""
        started = time.monotonic()
        gate = self._gate
        self.tally.rate_limit = gate.rate
        self._shutdown.install()
        try:
            token = self.settings.token.get_secret_value() if self.settings.token else ""
            options = ClientOptions.from_settings(self.settings, token)
            async with DevinClient(options, tally=self.tally) as client:
                await self._run_all(items, self._terminator(client, gate), first)
        finally:
            self._shutdown.remove()
            await gate.aclose()
        if self.settings.dry_run:
            log.warning(
                "dry_run.unchecked",
                note="the API has no permission check: whether the token may terminate these "
                "sessions is only known by terminating them",
            )
        return self._report(time.monotonic() - started)

    async def _run_all(
        self, items: AsyncIterator[Entry], term: Terminator, first: ClientCheck | None
    ) -> None:
        try:
            if first is not None:  # a signal during it ends the run at once: nothing sent
                self._shutdown.immediate = True
                await first(term.client)
                self._shutdown.immediate = False
            async with asyncio.TaskGroup() as tg:
                self._intake_task = tg.create_task(self._intake(items, tg, term))
        except asyncio.CancelledError:
            if not self._shutdown.absorb():
                raise
        finally:
            self._shutdown.done()

    async def _intake(
        self, items: AsyncIterator[Entry], tg: asyncio.TaskGroup, term: Terminator
    ) -> None:
        try:
            async for entry in items:
                if self._halt:
                    break
                for item in self._admission.to_send(entry):
                    await self._slots.acquire()
                    if self._halt:
                        self._slots.release()
                        return
                    tg.create_task(self._one(term, item))
        except asyncio.CancelledError:
            return  # stop intake; the session tasks drain on their own

    def _invalid(self, item: InputItem) -> None:
        why, raw = item.error, item.raw
        self._record(SessionResult(None, "invalid", error=why, source=item.source, input=raw))

    async def _one(self, term: Terminator, item: InputItem) -> None:
        assert item.session_id is not None
        try:
            if self.settings.dry_run:
                result = await term.preview(item.session_id, item.source)
            else:
                sent = item.uncertain or (sid := item.session_id) in self._sent
                owed = self._unarchived.get(sid)  # with --archive, the archive call alone
                result = await term.terminate(sid, item.source, sent_before=sent, terminated=owed)
        except ResultLogError as exc:  # the intent could not be written: nothing was sent
            self.log_failed(exc)
            return
        except asyncio.CancelledError:
            why = "interrupted before an answer came"
            self._record(SessionResult(item.session_id, "cancelled", source=item.source, error=why))
            raise
        except Exception as exc:  # a bug must cost one session, not the run
            log.exception("session.internal_error", session_id=item.session_id)
            why = f"internal error: {type(exc).__name__}: {exc}"
            result = SessionResult(item.session_id, "failed", source=item.source, error=why)
        finally:
            self._slots.release()
        self._record(result)

    def _record(self, result: SessionResult) -> None:
        try:
            self._sink(result)
        except ResultLogError as exc:
            self.log_failed(exc)
            return
        self.tally.counts[result.outcome] += 1
        self._log.debug(
            "session.settled",
            session_id=result.session_id,
            outcome=result.outcome,
            attempts=result.attempts,
            error=result.error,
            source=result.source,
        )
        if result.outcome == "failed":
            self._log.warning(
                "session.failed",
                session_id=result.session_id,
                reason=result.error,
                attempts=result.attempts,
            )
        if result.outcome in ("invalid", "cancelled"):
            return
        if self._breaker.record(result.outcome == "failed") and not self._halt:
            self._breaker_tripped = True
            self._halt(
                f"failure breaker: at least {self.settings.breaker_threshold:.0%} of the last "
                f"{self.settings.breaker_window} sessions failed (last error: {result.error})"
            )

    def log_failed(self, exc: ResultLogError) -> None:
        """The result log cannot take records: send nothing more (answers in flight are lost)."""
        if self._log_error is None:
            self._log_error = str(exc)
            self._halt(str(exc))

    def _halted(self) -> None:
        """The run must stop sending: no more intake (the session tasks see the halt)."""
        if self._intake_task is not None:
            self._intake_task.cancel()

    def _terminator(self, client: DevinClient, gate: RateGate) -> Terminator:
        s = self.settings
        self._term = Terminator(
            client=client,
            gate=gate,
            archive=s.archive,
            policy=RetryPolicy.from_settings(s),
            halt=self._halt,
            tally=self.tally,
            before_send=self._before_send,
            slots=self._slots,
            authority=self.authority,
        )
        return self._term

    def _rate_changed(self, old: float, new: float, reason: str) -> None:
        self.tally.rate_limit = new
        self._rates.changed(old, new, reason)

    def _report(self, elapsed: float) -> RunReport:
        aborted = self._halt.fatal or self._breaker_tripped or self._log_error is not None
        signalled = self._shutdown.exit_code
        return RunReport(
            counts=dict(self.tally.counts),
            exit_code=exit_code(self.tally.counts, signalled=signalled, aborted=aborted),
            interrupted=signalled is not None,
            reason=self._halt.reason,
            elapsed_s=elapsed,
            requests=self.tally.requests,
        )
