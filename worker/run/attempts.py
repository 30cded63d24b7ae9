"""The attempts for one session id and the mapping of answers to outcomes.

Every request (the DELETE, the reconciling GET, the archive) goes through the one attempt
loop, `worker.run.exchange.Exchange.ask`: the rate gate, the run's halt, the slots, and the
one ``RetryPolicy`` (its attempts, deadline, budget, Retry-After cap: worker/run/retry.py),
which retries 408, 429, 5xx and transport failures. What each answer means is decided
here. 404 is ``not_found``, 409 is reconciled with a GET, other 4xx ``failed``; a refused
token halts the run (a 403 naming a permission only when nothing succeeded with the token:
`worker.run.authority`), as does endless throttling. After an attempt that may have
reached the server, a 404/409 is reconciled with a GET, so a DELETE that succeeded unseen
is still ours. A 2xx that cannot be read or names another session is no success: one GET
settles it, never more DELETEs while the session is terminal. With ``archive``, a session
left unarchived (by our DELETE, or terminated before the run) is archived by ``POST
.../archive`` (``archived``), else ``failed`` with its terminated state, so that the next
run sends the archive call alone. A dry run says ``already_terminated`` for a terminal one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from worker.devin.answer import Answer
from worker.devin.state import SessionState
from worker.outcomes import TERMINAL_STATUSES, Outcome, SessionResult
from worker.run.answers import read_session, refusal, retryable, session_result
from worker.run.exchange import Exchange, Shared
from worker.run.retry import Tries

log = structlog.get_logger("worker.run.terminate")

# what an answer settles: the result, None (retry it), or a coroutine (a GET or an archive
# call must say first): the common answers are decided without a coroutine of their own
Settled = SessionResult | None | Awaitable[SessionResult | None]


@dataclass(slots=True)
class Attempts:
    """The attempts for one session id."""

    t: Shared
    session_id: str
    source: str | None
    dry_run: bool = False
    uncertain: bool = False  # an earlier attempt may have terminated it unseen
    odd: str | None = None  # why the last 2xx could not be used
    final: SessionResult | None = None  # what settled the session
    tries: Tries = field(init=False)
    x: Exchange = field(init=False)

    def __post_init__(self) -> None:
        self.tries = self.t.policy.start()
        self.x = Exchange(self.t.gate, self.t.policy, self.t.halt, self.t.tally, self.t.slots)

    async def run(self) -> SessionResult:
        """The DELETEs (GETs in a dry run) through the one attempt loop, `Exchange.ask`."""
        answer, stop = await self.x.ask(
            self.tries, self._send, self._settled, self._odd, retrying=self._retrying
        )
        if self.final is not None:
            return self.final
        if self.tries.gave_up:
            return self._result("failed", answer, error=stop)
        return self._stopped(stop or "no answer")

    def _settled(self, answer: Answer) -> bool | Awaitable[bool]:
        """Whether ``answer`` settles the session (then ``final`` holds the result); a
        coroutine to await when a GET or an archive call must say first."""
        final = self._settle(answer)
        if final is None or isinstance(final, SessionResult):
            self.final = final
            return final is not None
        return self._settled_later(final)

    async def _settled_later(self, pending: Awaitable[SessionResult | None]) -> bool:
        self.final = await pending
        return self.final is not None

    def _odd(self, answer: Answer) -> str | None:
        return self.odd

    def _retrying(self, answer: Answer, wait: float) -> None:
        log.debug(
            "session.retry",
            session_id=self.session_id,
            attempt=self.tries.attempts,
            error=self.odd or answer.error,
            delay_s=round(wait, 3),
        )

    async def archive_owed(self, known: SessionState) -> SessionResult | None:
        """The archive an earlier run owed a session it terminated; None when the answer
        shows the session is not terminated (the DELETE must go after all)."""
        result = await self._archive(None, known)
        if result.status is not None and result.status not in TERMINAL_STATUSES:
            return None
        return result

    def _send(self) -> Awaitable[Answer]:
        """The request of this attempt (a coroutine of the client's: no layer of its own)."""
        self.odd = None
        if self.tries.attempts == 1 and not self.dry_run and self.t.before_send is not None:
            self.t.before_send(self.session_id)
        if self.dry_run:
            return self.t.client.get_session(self.session_id)
        return self.t.client.terminate(self.session_id, archive=self.t.archive)

    def _settle(self, answer: Answer) -> Settled:
        """The result when this answer settles the session; None when it should be retried;
        a coroutine when a GET or an archive call must say first."""
        status = answer.status
        if answer.ok:
            self.t.authority.succeeded()
            return self._succeeded(answer)
        if status in (404, 409):
            return self._reconcile(answer)
        if status in (401, 403):
            return self._refused(answer)
        if retryable(answer):
            self.uncertain |= answer.maybe_sent or (status is not None and status >= 500)
            return None
        return self._result("failed", answer, error=answer.error)

    def _state(self, answer: Answer) -> SessionState | None:
        """The session a 2xx describes; None (and ``odd`` says why) when it cannot be used."""
        session, why = read_session(answer, self.session_id)
        self.odd = why or self.odd
        return session

    def _succeeded(self, answer: Answer) -> Settled:
        session = self._state(answer)
        if self.dry_run:
            if session is None:
                return None  # look it up again, within the policy
            outcome: Outcome = "already_terminated" if session.is_terminal else "would_terminate"
            return self._result(outcome, answer, session=session)
        if session is None:  # the DELETE may well have worked: one GET settles it
            self.uncertain = True
            return self._reconcile(answer)
        return self._finish(answer, session)

    def _finish(
        self, answer: Answer, session: SessionState
    ) -> SessionResult | Awaitable[SessionResult]:
        """Our DELETE terminated it; archive it too (a coroutine) when asked and the answer
        says it is not."""
        if self.t.archive and not session.is_archived:
            return self._archive(answer, session)
        outcome: Outcome = "archived" if self.t.archive else "terminated"
        return self._result(outcome, answer, session=session)

    async def finished(self, answer: Answer, session: SessionState) -> SessionResult:
        """`_finish`, awaited whichever it returned (for callers that wait anyway)."""
        done = self._finish(answer, session)
        return done if isinstance(done, SessionResult) else await done

    def _reconcile(self, answer: Answer) -> Settled:
        """404/409, or an unusable 2xx: ask the API what the session's state really is (a
        coroutine), unless the answer says it all."""
        if answer.status == 404 and not self.uncertain:
            return self._result("not_found", answer, error=answer.error)
        if self.dry_run:  # a GET answered 404 or 409: nothing more to ask
            return self._result(
                "not_found" if answer.status == 404 else "failed", answer, error=answer.error
            )
        return self._check(answer)

    async def _check(self, answer: Answer) -> SessionResult | None:
        """The GET that says what became of the session ``answer`` left in doubt."""
        said = self.odd if answer.ok else answer.error
        check, stop = await self._ask(
            partial(self.t.client.get_session, self.session_id), self._checked
        )
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
            return await self.finished(answer, session)
        # Terminated already: by an uncertain earlier attempt of ours, or before the run.
        # With --archive the promise is an archived session, whoever terminated it.
        if self.t.archive and not session.is_archived:
            return await self._archive(answer, session)
        if self.uncertain:
            outcome: Outcome = "archived" if self.t.archive else "terminated"
            return self._result(outcome, answer, session=session)
        return self._result("already_terminated", answer, session=session)

    async def _archive(self, answer: Answer | None, terminated: SessionState) -> SessionResult:
        """Archive a session known ``terminated`` (and not archived): ``archived``, or
        ``failed`` with that state, so that the next run owes the archive alone."""
        reply, stop = await self._ask(
            partial(self.t.client.archive, self.session_id), self._archived
        )
        if stop is None and reply is not None and reply.status in (404, 405):
            # no archive route on this server: the DELETE with archive=true again
            again = partial(self.t.client.terminate, self.session_id, archive=True)
            reply, stop = await self._ask(again, self._archived)
        session = self._state(reply) if reply is not None and reply.ok else None
        if stop is None and session is not None and session.is_archived:
            return self._result("archived", reply, session=session)
        why = stop or (reply.error if reply is not None else "no answer")
        return self._result(
            "failed",
            reply or answer,
            session=session or terminated,
            error=f"terminated, not archived: {why}",
        )

    def _checked(self, answer: Answer) -> bool:
        """A GET answer that can be acted on (a readable session, or a non-retried error)."""
        if answer.ok:
            return self._state(answer) is not None
        return not retryable(answer)

    def _archived(self, answer: Answer) -> bool:
        if answer.ok:
            self.t.authority.succeeded()
            session = self._state(answer)
            if session is not None and not session.is_archived:
                self.odd = "the archive answer says is_archived false"
            return session is not None and session.is_archived
        return not retryable(answer)

    async def _ask(
        self, send: Callable[[], Awaitable[Answer]], settled: Callable[[Answer], bool]
    ) -> tuple[Answer | None, str | None]:
        """The GETs of a check, the POSTs of an archive: own count, the session's deadline."""
        tries = self.t.policy.start(self.tries.started)
        return await self.x.ask(tries, send, settled, self._explain)

    def _explain(self, answer: Answer) -> str | None:
        return self.odd if answer.ok else None

    def _refused(self, answer: Answer) -> SessionResult:
        """A 401 stops the run; a 403 naming a permission stops it only when the run knows
        the token can terminate nothing (`worker.run.authority`); else the session failed."""
        reason = refusal(answer, self.t.authority.token_from)
        if reason is not None and (answer.status == 401 or self.t.authority.refuses_token()):
            self.t.halt(reason, auth=True)
        return self._result("failed", answer, error=answer.error)

    def _stopped(self, reason: str) -> SessionResult:
        return self._result("cancelled" if self.t.halt else "failed", error=reason)

    def _result(self, outcome: Outcome, answer: Answer | None = None, **more: Any) -> SessionResult:
        return session_result(self.session_id, self.source, self.tries, outcome, answer, **more)
