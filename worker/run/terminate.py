"""Terminate sessions: `Terminator`, what every session of a run shares (the client, the
rate gate, the policy, the halt, the slots, what the run knows of the token), and the entry
points for one session: `Terminator.terminate` (DELETE) and `Terminator.preview` (the dry
run's GET). The attempts of one session and the mapping of answers to outcomes are
`worker.run.attempts`. A session whose DELETE an earlier run or delivery may have sent
unseen is looked up first (`_look`), so that a terminal one is not sent another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from worker.devin.client import DevinClient
from worker.devin.state import SessionState
from worker.outcomes import SessionResult, Tally
from worker.run.attempts import Attempts
from worker.run.authority import Authority
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy
from worker.run.slots import Slots

__all__ = ["Terminator"]


@dataclass(slots=True)
class Terminator:
    """Everything one attempt needs, shared by all sessions of a run."""

    client: DevinClient
    gate: RateGate
    archive: bool
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    halt: Halt = field(default_factory=Halt)
    tally: Tally = field(default_factory=Tally)
    before_send: Callable[[str], None] | None = None  # before a session's first DELETE
    slots: Slots | None = None  # handed on while a session waits to retry
    authority: Authority = field(default_factory=Authority)  # may this token terminate?

    def terminate(
        self,
        session_id: str,
        source: str | None = None,
        *,
        sent_before: bool = False,
        terminated: str | None = None,
    ) -> Awaitable[SessionResult]:
        """The session's attempts, to await (most are its DELETEs alone: no layer of this).
        ``sent_before``: an earlier run or delivery may have sent a DELETE whose answer
        was never recorded: a GET goes first (a terminal session is not sent another), and
        a 404 or 409 is reconciled with a GET as for a lost answer.
        ``terminated``: an earlier run terminated it (this status) and owes the archive:
        with ``archive``, the archive call alone, no DELETE (unless the session's answer
        says it is not terminated after all)."""
        attempts = Attempts(self, session_id, source, uncertain=sent_before)
        if sent_before or (terminated is not None and self.archive):
            return self._owed(attempts, sent_before, terminated)
        return attempts.run()

    async def _owed(
        self, attempts: Attempts, sent_before: bool, terminated: str | None
    ) -> SessionResult:
        """A session an earlier run may have sent, or terminated without archiving."""
        if terminated is not None and self.archive:
            session_id = attempts.session_id
            known = SessionState(session_id=session_id, status=terminated, is_archived=False)
            owed = await attempts.archive_owed(known)
            if owed is not None:
                return owed
        if sent_before and (found := await _look(attempts)) is not None:
            return found
        return await attempts.run()

    async def preview(self, session_id: str, source: str | None = None) -> SessionResult:
        """Dry run: look the session up with GET; never DELETE."""
        return await Attempts(self, session_id, source, dry_run=True).run()


async def _look(attempts: Attempts) -> SessionResult | None:
    """A DELETE may have gone out unseen (a crash, a worker that died): ask first, and send
    none to a session that is terminal, or gone. None: send as usual."""
    get = partial(attempts.t.client.get_session, attempts.session_id)
    check, _ = await attempts._ask(get, attempts._checked)
    if check is not None and check.status == 404:
        return attempts._result("not_found", check, error=check.error)
    session = attempts._state(check) if check is not None and check.ok else None
    if check is None or session is None or not session.is_terminal:
        return None  # no answer to go by, or still running: the DELETE decides
    return await attempts.finished(check, session)  # ours, as an uncertain 409 is
