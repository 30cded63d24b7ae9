"""Terminate one session: the retry loop and the mapping of answers to outcomes.

Retried: 408, 429, 5xx and transport failures, bounded by ``max_attempts`` and the run's
retry budget, with full-jitter backoff or the server's ``Retry-After``. Not retried: 404
(``not_found``), 409 (reconciled with a GET), other 4xx (``failed``). A 401, or a 403 that
names a missing permission, halts the whole run. When an earlier attempt may have reached
the server (timeout, dropped connection, 5xx, unreadable 200), a later 404 or 409 is
reconciled with a GET, so a DELETE that succeeded unseen is still reported as ours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from worker.backoff import Backoff, RetryBudget
from worker.client import Answer, DevinClient
from worker.models import SessionState
from worker.outcomes import Outcome, SessionResult, Tally
from worker.run.gate import RateGate

log = structlog.get_logger("worker.terminate")

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(slots=True)
class Halt:
    """Set once when the run must stop sending: the reason, and whether it is an auth failure."""

    reason: str | None = None
    auth: bool = False
    listener: Callable[[], None] | None = None

    def __call__(self, reason: str, *, auth: bool = False) -> None:
        if self.reason is None:
            self.reason, self.auth = reason, auth
            if self.listener is not None:
                self.listener()

    def __bool__(self) -> bool:
        return self.reason is not None


@dataclass(slots=True)
class Terminator:
    """Everything one attempt needs, shared by all sessions of a run."""

    client: DevinClient
    gate: RateGate
    archive: bool
    max_attempts: int = 6
    backoff: Backoff = field(default_factory=Backoff)
    budget: RetryBudget = field(default_factory=RetryBudget)
    halt: Halt = field(default_factory=Halt)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    tally: Tally = field(default_factory=Tally)

    async def terminate(self, session_id: str, source: str | None = None) -> SessionResult:
        return await _Attempts(self, session_id, source).run()

    async def preview(self, session_id: str, source: str | None = None) -> SessionResult:
        """Dry run: look the session up with GET; never DELETE."""
        return await _Attempts(self, session_id, source, dry_run=True).run()


@dataclass(slots=True)
class _Attempts:
    """The attempts for one session id."""

    t: Terminator
    session_id: str
    source: str | None
    dry_run: bool = False
    attempt: int = 0
    uncertain: bool = False  # an earlier attempt may have terminated it unseen
    last_failure: str | None = None  # the transport failure of the last retried attempt
    started: float = 0.0

    async def run(self) -> SessionResult:
        self.started = self.t.clock()
        while True:
            if self.t.halt:
                return self._result("cancelled", error=f"not sent: {self.t.halt.reason}")
            await self.t.gate.acquire()
            if self.t.halt:
                return self._result("cancelled", error=f"not sent: {self.t.halt.reason}")
            self.attempt += 1
            answer = await self._send()
            result = await self._settle(answer)
            if result is not None:
                return result
            wait = self._next_wait(answer)
            if isinstance(wait, SessionResult):
                return wait
            log.warning(
                "session.retry",
                session_id=self.session_id,
                attempt=self.attempt,
                error=answer.error,
                delay_s=round(wait, 3),
            )
            await self.t.sleep(wait)

    async def _send(self) -> Answer:
        self.t.tally.requests += 1
        if self.dry_run:
            return await self.t.client.get_session(self.session_id)
        return await self.t.client.terminate(self.session_id, archive=self.t.archive)

    async def _settle(self, answer: Answer) -> SessionResult | None:
        """The result when this answer settles the session; None when it should be retried."""
        status = answer.status
        self._report(answer)
        if status == 200:
            return self._succeeded(answer)
        if status in (404, 409):
            return await self._reconcile(answer)
        if status in (401, 403):
            return self._refused(answer)
        if status is None or status in _RETRY_STATUSES:
            self.uncertain |= answer.maybe_sent or (status is not None and status >= 500)
            return None
        return self._result("failed", answer, error=answer.error)

    def _succeeded(self, answer: Answer) -> SessionResult | None:
        session = answer.session
        if session is None:  # a 200 we cannot read: the DELETE may well have worked
            self.uncertain = True
            return None
        if self.dry_run:
            return self._result("would_terminate", answer, session=session)
        return self._result(self._done_outcome(session), answer, session=session)

    def _done_outcome(self, session: SessionState) -> Outcome:
        return "archived" if self.t.archive and session.is_archived else "terminated"

    async def _reconcile(self, answer: Answer) -> SessionResult:
        """404/409: ask the API what the session's state really is."""
        if answer.status == 404 and not self.uncertain:
            return self._result("not_found", answer, error=answer.error)
        if self.dry_run:  # a GET answered 404 or 409: nothing more to ask
            return self._result(
                "not_found" if answer.status == 404 else "failed", answer, error=answer.error
            )
        check = await self._check()
        session = check.session
        if check.status == 404:
            return self._result("not_found", answer, error=answer.error)
        if session is None:
            return self._result(
                "failed", answer, error=f"{answer.error}; GET to check: {check.error}"
            )
        if not session.is_terminal:
            return self._result("failed", answer, session=session, error=answer.error)
        # An uncertain earlier attempt may have been the one that terminated it; if archiving
        # was asked and the session is not archived, that attempt never took effect.
        ours = self.uncertain and (session.is_archived or not self.t.archive)
        outcome = self._done_outcome(session) if ours else "already_terminated"
        return self._result(outcome, answer, session=session)

    async def _check(self) -> Answer:
        """GET the session, retrying what can recover, within the attempts allowed."""
        checks = 0
        while True:
            await self.t.gate.acquire()
            self.t.tally.requests += 1
            checks += 1
            answer = await self.t.client.get_session(self.session_id)
            self._report(answer)
            readable = answer.status != 200 or answer.session is not None
            if readable and answer.status not in _RETRY_STATUSES and answer.status is not None:
                return answer
            if checks >= self.t.max_attempts or not self.t.budget.take():
                return answer
            await self.t.sleep(self.t.backoff.delay(checks, answer.retry_after))

    def _report(self, answer: Answer) -> None:
        """Tell the rate gate what this answer means for the rate of the whole run.

        A 429 is the rate-limit signal. A 5xx that says when to come back is a per-request
        signal: this session's backoff already waits ``Retry-After``; the gate only acts
        when such answers are a real share of recent traffic. Anything else, timeouts and
        dropped connections included, counts as accepted: the server took the request
        (and a token of its rate limit) even though no answer came back.
        """
        status, retry_after = answer.status, answer.retry_after
        if status == 429:
            self.t.gate.throttled(retry_after)
        elif status is not None and status >= 500 and retry_after is not None:
            self.t.gate.overloaded(retry_after)
        else:
            self.t.gate.accepted()

    def _refused(self, answer: Answer) -> SessionResult:
        text = answer.error
        if answer.status == 401:
            self.t.halt(f"the API rejected the token ({text}); check DEVIN_API_KEY", auth=True)
        elif "permission" in text.lower() or "manageorgsessions" in text.lower():
            self.t.halt(
                f"the token lacks a permission ({text}); terminating sessions needs "
                "ManageOrgSessions (and ViewOrgSessions for checks)",
                auth=True,
            )
        return self._result("failed", answer, error=text)

    def _next_wait(self, answer: Answer) -> float | SessionResult:
        """Seconds to wait before the next attempt, or the failure when no attempt is left."""
        if self.attempt >= self.t.max_attempts:
            return self._result(
                "failed", answer, error=f"gave up after {self.attempt} attempts: {answer.error}"
            )
        self.last_failure = answer.failure
        if not self.t.budget.take(timeout=answer.failure == "timeout"):
            return self._result(
                "failed", answer, error=f"retry budget of the run spent: {answer.error}"
            )
        return self.t.backoff.delay(self.attempt, answer.retry_after)

    def _result(
        self,
        outcome: Outcome,
        answer: Answer | None = None,
        *,
        session: SessionState | None = None,
        error: str | None = None,
    ) -> SessionResult:
        if outcome in ("terminated", "archived", "already_terminated", "not_found"):
            self.t.budget.refund(retried=self.attempt > 1, timeout=self.last_failure == "timeout")
        return SessionResult(
            session_id=self.session_id,
            outcome=outcome,
            archived=session.is_archived if session is not None else None,
            status=str(session.status) if session is not None else None,
            http_status=answer.status if answer is not None else None,
            attempts=self.attempt,
            elapsed_ms=round((self.t.clock() - self.started) * 1000, 1),
            error=error,
            source=self.source,
        )
