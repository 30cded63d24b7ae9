"""Terminate one session: the attempts and the mapping of answers to outcomes.

Every request passes the rate gate and the one ``RetryPolicy`` (worker/run/retry.py):
408, 429, 5xx and transport failures are retried within its attempts, deadline and
budget. Not retried: 404 (``not_found``), 409 (reconciled with a GET), other 4xx
(``failed``). A 401, or a 403 that names a missing permission, halts the run, and so
does throttling that does not end (``ThrottleBreaker``). When an earlier attempt may have
reached the server (timeout, dropped connection, 5xx), a later 404 or 409 is reconciled
with a GET, so a DELETE that succeeded unseen is still reported as ours.

A 2xx is checked: a body that cannot be read, or that describes another session than
the one asked for, is no success; it is settled by GET (never by more DELETEs while the
session is terminal), and ``terminated`` is never recorded from a mismatched answer.
With ``archive``, a session terminated but not archived is archived with
``POST .../archive``; if that fails, the result is ``failed`` (so resume tries again).
A dry run looks the session up: terminal already → ``already_terminated``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from worker.client import Answer, DevinClient
from worker.limiter import RateGate
from worker.models import SessionState
from worker.outcomes import Outcome, SessionResult, Tally
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy, Tries

__all__ = ["Halt", "Terminator"]

log = structlog.get_logger("worker.terminate")

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(slots=True)
class Terminator:
    """Everything one attempt needs, shared by all sessions of a run."""

    client: DevinClient
    gate: RateGate
    archive: bool
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    halt: Halt = field(default_factory=Halt)
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
    uncertain: bool = False  # an earlier attempt may have terminated it unseen
    odd: str | None = None  # why the last 2xx could not be used
    tries: Tries = field(init=False)

    def __post_init__(self) -> None:
        self.tries = self.t.policy.start()

    @property
    def attempt(self) -> int:
        return self.tries.attempts

    async def run(self) -> SessionResult:
        while True:
            stop = await self._turn(self.tries)
            if stop is not None:
                return self._stopped(stop)
            self.tries.attempts += 1
            answer = await self._send()
            result = await self._settle(answer)
            if result is not None:
                return result
            wait = self.tries.next_wait(answer, self.odd)
            if isinstance(wait, str):
                return self._result("failed", answer, error=wait)
            log.warning(
                "session.retry",
                session_id=self.session_id,
                attempt=self.attempt,
                error=self.odd or answer.error,
                delay_s=round(wait, 3),
            )
            if not await self.t.halt.race(self.t.policy.sleep(wait)):
                return self._stopped(f"not sent: {self.t.halt.reason}")

    async def _turn(self, tries: Tries) -> str | None:
        """Wait for the rate gate; None when this attempt may go, else why it may not."""
        if await self.t.halt.race(self.t.gate.acquire(), tries.remaining()):
            return None
        if self.t.halt:
            return f"not sent: {self.t.halt.reason}"
        timeout = self.t.policy.session_timeout
        return f"session_timeout ({timeout:g} s) passed waiting for the rate gate"

    async def _send(self) -> Answer:
        self.t.tally.requests += 1
        if self.dry_run:
            return await self.t.client.get_session(self.session_id)
        return await self.t.client.terminate(self.session_id, archive=self.t.archive)

    async def _settle(self, answer: Answer) -> SessionResult | None:
        """The result when this answer settles the session; None when it should be retried."""
        status = answer.status
        self._report(answer)
        self._throttled(answer)
        if answer.ok:
            return await self._succeeded(answer)
        if status in (404, 409):
            return await self._reconcile(answer)
        if status in (401, 403):
            return self._refused(answer)
        if status is None or status in _RETRY_STATUSES:
            self.uncertain |= answer.maybe_sent or (status is not None and status >= 500)
            return None
        return self._result("failed", answer, error=answer.error)

    def _state(self, answer: Answer) -> SessionState | None:
        """The session a 2xx describes; None (and ``odd`` says why) when it cannot be used."""
        session = answer.session
        if session is None:
            self.odd = f"unreadable answer to a {answer.status}: {answer.error}"
        elif session.session_id != self.session_id:
            self.odd = f"the API answered for another session: {session.session_id[:80]!r}"
            return None
        return session

    async def _succeeded(self, answer: Answer) -> SessionResult | None:
        session = self._state(answer)
        if self.dry_run:
            if session is None:
                return None  # look it up again, within the policy
            outcome: Outcome = "already_terminated" if session.is_terminal else "would_terminate"
            return self._result(outcome, answer, session=session)
        if session is None:  # the DELETE may well have worked: one GET settles it
            self.uncertain = True
            return await self._reconcile(answer)
        return await self._finish(answer, session)

    async def _finish(self, answer: Answer, session: SessionState) -> SessionResult:
        """Our DELETE terminated it; archive it too when asked and the answer says it is not."""
        if self.t.archive and not session.is_archived:
            return await self._archive(answer)
        outcome: Outcome = "archived" if self.t.archive else "terminated"
        return self._result(outcome, answer, session=session)

    async def _reconcile(self, answer: Answer) -> SessionResult | None:
        """404/409, or an unusable 2xx: ask the API what the session's state really is."""
        if answer.status == 404 and not self.uncertain:
            return self._result("not_found", answer, error=answer.error)
        if self.dry_run:  # a GET answered 404 or 409: nothing more to ask
            return self._result(
                "not_found" if answer.status == 404 else "failed", answer, error=answer.error
            )
        said = self.odd if answer.ok else answer.error
        check, stop = await self._ask(self._get, self._checked)
        session = self._state(check) if check is not None and check.ok else None
        if check is not None and check.status == 404:
            return self._result("not_found", answer, error=said)
        if session is None:
            got = stop or (check.error if check is not None else "no answer")
            return self._result("failed", answer, error=f"{said}; GET to check: {got}")
        if not session.is_terminal:
            if answer.ok:  # our DELETE answered, but did not take effect: send it again
                return None
            return self._result("failed", answer, session=session, error=said)
        if answer.ok:
            return await self._finish(answer, session)
        # An uncertain earlier attempt may have been the one that terminated it; if archiving
        # was asked and the session is not archived, that attempt never took effect.
        if self.uncertain and (session.is_archived or not self.t.archive):
            outcome: Outcome = "archived" if self.t.archive else "terminated"
            return self._result(outcome, answer, session=session)
        return self._result("already_terminated", answer, session=session)

    async def _archive(self, answer: Answer) -> SessionResult:
        reply, stop = await self._ask(self._post_archive, self._archived)
        session = self._state(reply) if reply is not None and reply.ok else None
        if stop is None and session is not None and session.is_archived:
            return self._result("archived", reply, session=session)
        why = stop or (reply.error if reply is not None else "no answer")
        return self._result(
            "failed", reply or answer, session=session, error=f"terminated, not archived: {why}"
        )

    async def _ask(
        self, send: Callable[[], Awaitable[Answer]], settled: Callable[[Answer], bool]
    ) -> tuple[Answer | None, str | None]:
        """Send until ``settled`` accepts an answer or the policy stops: (the last answer,
        None) or (the last answer, why it stopped). The GET of ``_check`` and the archive."""
        tries = self.t.policy.start(self.tries.started)  # the session's deadline, own count
        answer: Answer | None = None
        while (stop := await self._turn(tries)) is None:
            tries.attempts += 1
            self.t.tally.requests += 1
            answer = await send()
            self._report(answer)
            self._throttled(answer)
            if settled(answer):
                return answer, None
            wait = tries.next_wait(answer, self.odd if answer.ok else None)
            if isinstance(wait, str):
                return answer, wait
            if not await self.t.halt.race(self.t.policy.sleep(wait)):
                return answer, f"not sent: {self.t.halt.reason}"
        return answer, stop

    async def _get(self) -> Answer:
        return await self.t.client.get_session(self.session_id)

    async def _post_archive(self) -> Answer:
        return await self.t.client.archive(self.session_id)

    def _checked(self, answer: Answer) -> bool:
        """A GET answer that can be acted on (a readable session, or a non-retried error)."""
        if answer.ok:
            return self._state(answer) is not None
        return answer.status is not None and answer.status not in _RETRY_STATUSES

    def _archived(self, answer: Answer) -> bool:
        if answer.ok:
            session = self._state(answer)
            if session is not None and not session.is_archived:
                self.odd = "the archive answer says is_archived false"
            return session is not None and session.is_archived
        return answer.status is not None and answer.status not in _RETRY_STATUSES

    def _report(self, answer: Answer) -> None:
        """Tell the rate gate: a throttle (429, or 503 saying when to return), or not.

        Timeouts and dropped connections count as accepted: the server took the request
        (and a token of its rate limit) even though no answer came back.
        """
        if answer.status == 429 or (answer.status == 503 and answer.retry_after is not None):
            self.t.gate.throttled(answer.retry_after)
        else:
            self.t.gate.accepted()

    def _throttled(self, answer: Answer) -> None:
        reason = self.t.policy.throttle.observe(answer.status, answer.retry_after)
        if reason is not None:
            self.t.halt(reason, fatal=True)

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

    def _stopped(self, reason: str) -> SessionResult:
        return self._result("cancelled" if self.t.halt else "failed", error=reason)

    def _result(
        self,
        outcome: Outcome,
        answer: Answer | None = None,
        *,
        session: SessionState | None = None,
        error: str | None = None,
    ) -> SessionResult:
        if outcome in ("terminated", "archived", "already_terminated", "not_found"):
            self.tries.refund()
        return SessionResult(
            session_id=self.session_id,
            outcome=outcome,
            archived=session.is_archived if session is not None else None,
            status=str(session.status) if session is not None else None,
            http_status=answer.status if answer is not None else None,
            attempts=self.attempt,
            elapsed_ms=round(self.tries.elapsed() * 1000, 1),
            error=error,
            source=self.source,
        )
