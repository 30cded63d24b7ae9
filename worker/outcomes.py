"""What happened to one session (the value every stage passes along) and to a whole run."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

Outcome = Literal[
    "terminated",
    "archived",
    "already_terminated",
    "not_found",
    "failed",
    "cancelled",
    "invalid",
    "would_terminate",
]

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

# A session whose latest outcome is one of these is done: a resumed run skips it (with
# --archive, once its result also says it is archived).
FINAL_OUTCOMES: frozenset[str] = frozenset(
    {"terminated", "archived", "already_terminated", "not_found"}
)

# The session statuses of a terminated session (``exit``; ``error`` ended on its own).
TERMINAL_STATUSES: frozenset[str] = frozenset({"exit", "error"})

# An HTTP status's class as the tally counts it ("2xx"): a status has three digits
_CLASSES = tuple(f"{digit}xx" for digit in range(10))


def refused_unsent(http_status: object) -> bool:
    """A non-final result with this status proves its DELETE did nothing: a plain 4xx
    refusal. A cancelled request, a timeout, a 5xx or a throttle may hide one that worked."""
    return type(http_status) is int and 400 <= http_status < 500 and http_status not in (408, 429)


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The result of one session id (or of one invalid input line, ``session_id`` None)."""

    session_id: str | None
    outcome: Outcome
    archived: bool | None = None
    status: str | None = None
    http_status: int | None = None
    attempts: int = 0
    elapsed_ms: float = 0.0
    error: str | None = None
    source: str | None = None
    input: str | None = None  # the offending text of an invalid line


@dataclass(slots=True)
class Tally:
    """Live figures of a run, read by progress displays (from any thread) and the summary."""

    counts: Counter[str] = field(default_factory=Counter)
    expected: int | None = None  # distinct ids of the inputs, when known before the run
    started: float = field(default_factory=time.monotonic)
    rate_limit: float | None = None  # the rate currently granted (adaptive control moves it)
    requests: int = 0  # every request sent, retries and checks included
    # what came back, counted by the client for every request it sent (the identity check
    # and list pages too): (method, status class "2xx" ... "5xx", or "none": no answer)
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    throttled: int = 0  # 429 answers
    retries: int = 0  # retries scheduled (each waits its backoff or Retry-After)
    in_flight: int = 0  # requests sent and not answered yet

    def answered(self, method: str, status: int | None) -> None:
        """One request ended: with an HTTP ``status``, or None (no answer: a transport
        failure, a timeout, or cancelled at shutdown)."""
        self.answers[method, "none" if status is None else _CLASSES[status // 100]] += 1
        if status == 429:
            self.throttled += 1


@dataclass(slots=True)
class RunReport:
    counts: dict[str, int]
    exit_code: int
    interrupted: bool
    reason: str | None
    elapsed_s: float
    requests: int


def exit_code(counts: Mapping[str, int], *, signalled: int | None, aborted: bool) -> int:
    """The signal's code (130, 143); 3 when the run was aborted; 1 when a session failed, an
    input line was invalid or a session was cancelled; else 0."""
    if signalled is not None:
        return signalled
    if aborted:
        return 3
    if counts.get("failed") or counts.get("invalid") or counts.get("cancelled"):
        return 1
    return 0
