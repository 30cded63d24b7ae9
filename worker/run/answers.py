"""What one answer says, read without side effects: retried or not, the session a 2xx
describes (and why it cannot be used), the halt reason of a refused token; the result
recorded for a session."""

from __future__ import annotations

from worker._names import TOKEN_ENV
from worker.devin.answer import Answer
from worker.devin.state import SessionState
from worker.outcomes import FINAL_OUTCOMES, Outcome, SessionResult
from worker.run.retry import Tries

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def retryable(answer: Answer) -> bool:
    """No answer, or a status that may recover (408, 429, 5xx of a gateway or overload)."""
    return answer.status is None or answer.status in RETRY_STATUSES


def read_session(answer: Answer, session_id: str) -> tuple[SessionState | None, str | None]:
    """The session a 2xx describes, or None and why it cannot be used: an unreadable body,
    or a body that describes another session than ``session_id``."""
    session = answer.session
    if session is None:
        return None, f"unreadable answer to a {answer.status}: {answer.error}"
    if session.session_id != session_id:
        return None, f"the API answered for another session: {session.session_id[:80]!r}"
    return session, None


def refusal(answer: Answer, token_from: str = TOKEN_ENV) -> str | None:
    """Why the run must halt on this 401/403 (the token, or a permission it lacks); None
    for a 403 about this one session. ``token_from``: where the token came from, as the
    message names it (``DEVIN_API_KEY``, or the token file)."""
    text = answer.error
    if answer.status == 401:
        return f"the API rejected the token ({text}); check the token from {token_from}"
    if answer.status == 403 and (
        "permission" in text.lower() or "manageorgsessions" in text.lower()
    ):
        return (
            f"the token lacks a permission ({text}); no request with it succeeded. "
            "Terminating sessions needs ManageOrgSessions (and ViewOrgSessions for checks)"
        )
    return None


def session_result(
    session_id: str,
    source: str | None,
    tries: Tries,
    outcome: Outcome,
    answer: Answer | None = None,
    *,
    session: SessionState | None = None,
    error: str | None = None,
) -> SessionResult:
    """The result of one session's attempts; a final outcome gives its retry tokens back."""
    if outcome in FINAL_OUTCOMES:
        tries.refund()
    return SessionResult(
        session_id,
        outcome,
        archived=session.is_archived if session else None,
        status=str(session.status) if session else None,
        http_status=answer.status if answer is not None else None,
        attempts=tries.attempts,
        elapsed_ms=round(tries.elapsed() * 1000, 1),
        error=error,
        source=source,
    )
