"""The whole record each decision writes (outcome, the HTTP status it rests on, the exact
error, attempts, source), what was sent, and a run halted between two requests of one
session, against a hostile server on loopback. Zero-wait backoff and a fake clock (the
policy's ``sleep`` moves it): every case runs in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import structlog.testing
from aiohttp import web
from hostile import ORG, TOKEN, FakeClock, Hostile, Reply, fake_policy, ok, problem, serving

from worker.devin.client import ClientOptions, DevinClient
from worker.devin.retry_after import parse_retry_after
from worker.outcomes import SessionResult
from worker.run.backoff import Backoff, RetryBudget
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy
from worker.run.terminate import Terminator

SID = "devin-target"
SOURCE = "ids.csv:7"
GARBAGE = Reply(200, raw=b'{"session_id": "devin-tar')
NOPE = "HTTP {}: error: nope"


class Recording(Hostile):
    """Records each query string; halts the run while answering the ``halt_on``-th request."""

    def __init__(self, script: dict[str, Sequence[Reply]], halt: Halt, halt_on: int = 0) -> None:
        super().__init__(script)
        self.queries: list[tuple[str, str]] = []
        self.halt, self.halt_on = halt, halt_on

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.queries.append((request.method, request.query_string))
        if len(self.queries) == self.halt_on:
            self.halt("operator stop", fatal=True)
        return await super().handle(request)


@dataclass
class Case:
    result: SessionResult
    server: Recording
    clock: FakeClock
    halt: Halt = field(default_factory=Halt)

    @property
    def sent(self) -> tuple[int, int, int]:
        return tuple(self.server.count(m) for m in ("DELETE", "GET", "POST"))  # type: ignore[return-value]


async def decide(
    script: dict[str, Sequence[Reply]],
    *,
    archive: bool = False,
    dry_run: bool = False,
    halt_on: int = 0,
    **kw: object,
) -> Case:
    clock, halt = FakeClock(), Halt()
    policy = fake_policy(clock, **kw)
    server = Recording(script, halt, halt_on)
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(client, RateGate(None), archive, policy=policy, halt=halt)
        send = term.preview if dry_run else term.terminate
        result = await send(SID, SOURCE)
    assert result.session_id == SID and result.source == SOURCE
    return Case(result, server, clock, halt)


UNREADABLE = "unreadable answer to a 200: HTTP 200: unreadable body"
NOT_ARCHIVED = "terminated, not archived: "

# (script, archive, outcome, http_status, error, attempts, (DELETEs, GETs, POSTs))
RECORDS = [
    pytest.param(
        {"DELETE": [ok(SID)]}, False, "terminated", 200, None, 1, (1, 0, 0), id="200"
    ),
    pytest.param(
        {"DELETE": [problem(404)]}, False, "not_found", 404, NOPE.format(404), 1, (1, 0, 0),
        id="404",
    ),
    pytest.param(
        {"DELETE": [problem(503), problem(404)], "GET": [problem(404)]},
        False, "not_found", 404, NOPE.format(404), 2, (2, 1, 0), id="5xx-404-get-404",
    ),
    pytest.param(
        {"DELETE": [problem(409)], "GET": [ok(SID, "running")]},
        False, "failed", 409, NOPE.format(409), 1, (1, 1, 0), id="409-running",
    ),
    pytest.param(
        {"DELETE": [problem(409)], "GET": [ok(SID)]},
        False, "already_terminated", 409, None, 1, (1, 1, 0), id="409-exit",
    ),
    pytest.param(
        {"DELETE": [problem(500), problem(409)], "GET": [ok(SID)]},
        False, "terminated", 409, None, 2, (2, 1, 0), id="5xx-409-ours",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [ok(SID)]},
        False, "terminated", 200, None, 1, (1, 1, 0), id="garbage-get-exit",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [problem(500)]},
        False, "failed", 200,
        f"{UNREADABLE}; GET to check: gave up after 4 attempts: HTTP 500: error: nope",
        1, (1, 4, 0),
        id="garbage-get-5xx",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [problem(422, "gone weird")]},
        False, "failed", 200, f"{UNREADABLE}; GET to check: HTTP 422: error: gone weird",
        1, (1, 1, 0),
        id="garbage-get-422",
    ),
    pytest.param(
        {"DELETE": [problem(403, "forbidden here")]},
        False, "failed", 403, "HTTP 403: error: forbidden here", 1, (1, 0, 0), id="403",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [problem(503)]},
        True, "failed", 503, f"{NOT_ARCHIVED}gave up after 4 attempts: HTTP 503: error: nope", 1,
        (1, 0, 4), id="archive-5xx",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [ok(SID)]},
        True, "failed", 200,
        f"{NOT_ARCHIVED}gave up after 4 attempts: the archive answer says is_archived false",
        1, (1, 0, 4), id="archive-ignored",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [GARBAGE]},
        True, "failed", 200, f"{NOT_ARCHIVED}gave up after 4 attempts: {UNREADABLE}", 1,
        (1, 0, 4), id="archive-garbage",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [ok(SID, archived=True)]},
        True, "archived", 200, None, 1, (1, 0, 1), id="archive-post",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("script", "archive", "outcome", "http_status", "error", "attempts", "sent"), RECORDS
)
async def test_the_record_of_each_decision(
    script: dict[str, Sequence[Reply]],
    archive: bool,
    outcome: str,
    http_status: int,
    error: str | None,
    attempts: int,
    sent: tuple[int, int, int],
) -> None:
    case = await decide(script, archive=archive)
    r = case.result
    assert (r.outcome, r.http_status, r.error) == (outcome, http_status, error), r
    assert (r.attempts, case.sent) == (attempts, sent), r


async def test_no_archive_route_sends_the_delete_again_with_archive_true() -> None:
    script = {"DELETE": [ok(SID), ok(SID, archived=True)], "POST": [problem(405)]}
    case = await decide(script, archive=True)
    assert (case.result.outcome, case.result.archived, case.result.http_status) == (
        "archived",
        True,
        200,
    )
    deletes = [query for method, query in case.server.queries if method == "DELETE"]
    assert deletes == ["archive=true", "archive=true"]


async def test_a_dry_run_after_a_5xx_says_not_found_for_a_404() -> None:
    case = await decide({"GET": [problem(503), problem(404)]}, dry_run=True)
    r = case.result
    assert (r.outcome, r.http_status, r.error, r.attempts) == (
        "not_found",
        404,
        NOPE.format(404),
        2,
    )
    assert case.sent == (0, 2, 0)


async def test_a_dry_run_409_is_a_failure_with_its_status() -> None:
    case = await decide({"GET": [problem(409)]}, dry_run=True)
    r = case.result
    assert (r.outcome, r.http_status, r.error, case.sent) == (
        "failed",
        409,
        NOPE.format(409),
        (0, 1, 0),
    )


async def test_a_halt_after_a_409_sends_no_check() -> None:
    case = await decide({"DELETE": [problem(409)], "GET": [ok(SID)]}, halt_on=1)
    r = case.result
    assert (r.outcome, r.http_status, case.sent) == ("failed", 409, (1, 0, 0))
    assert r.error == f"{NOPE.format(409)}; GET to check: not sent: operator stop"


async def test_a_halt_after_the_delete_sends_no_archive_call() -> None:
    case = await decide({"DELETE": [ok(SID)], "POST": [ok(SID, archived=True)]}, archive=True,
                        halt_on=1)  # fmt: skip
    r = case.result
    assert (r.outcome, r.http_status, case.sent) == ("failed", 200, (1, 0, 0))
    assert r.error == f"{NOT_ARCHIVED}not sent: operator stop"


async def test_the_checks_share_the_session_deadline() -> None:
    # DELETE at 0 s, waits 50 s, 409 at 50 s; GET at 50 s, waits 50 s, GET at 100 s: a
    # third would start at 150 s, past 120 s counted from the session's first attempt
    script = {
        "DELETE": [problem(503, **{"Retry-After": "50"}), problem(409)],
        "GET": [problem(503, **{"Retry-After": "50"})],
    }
    case = await decide(script, max_attempts=10)
    r = case.result
    assert (r.outcome, case.sent, case.clock.now) == ("failed", (2, 2, 0), 1100.0), r
    assert r.error == (
        f"{NOPE.format(409)}; GET to check: session_timeout (120 s) would pass before "
        "attempt 3: HTTP 503: error: nope"
    )


def test_an_http_date_is_read_against_the_real_clock_by_default() -> None:
    later = datetime.now(UTC).replace(microsecond=0).year + 1
    seconds = parse_retry_after(f"Fri, 01 Jan {later} 00:00:00 GMT")
    assert seconds is not None and 0 < seconds <= 366 * 86400
    assert parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT") == 0.0


@dataclass
class GateSignals:
    """A rate gate that lets everything through, each grant at the next whole second, and
    records what it was told, with the grant time each report carried."""

    told: list[tuple[str, float | None]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    grants: int = 0

    def at_once(self) -> float | None:
        return None  # every grant waits its turn

    async def acquire(self) -> float:
        await asyncio.sleep(0)
        self.grants += 1
        return float(self.grants)

    def throttled(self, retry_after: float | None, sent: float) -> None:
        self.told.append(("throttled", retry_after))
        self.sent.append(sent)

    def overloaded(self, retry_after: float | None, sent: float) -> None:
        self.told.append(("overloaded", retry_after))
        self.sent.append(sent)

    def accepted(self, sent: float) -> None:
        self.told.append(("accepted", None))
        self.sent.append(sent)


async def test_the_gate_is_told_of_each_throttle_and_each_other_answer() -> None:
    script = {
        "DELETE": [
            problem(429, **{"Retry-After": "2"}),
            problem(503, **{"Retry-After": "3"}),
            problem(503),
            problem(504, **{"Retry-After": "1"}),
            problem(429),
            ok(SID),
        ]
    }
    gate = GateSignals()
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=6, backoff=Backoff(base=0.0), clock=clock, sleep=clock.sleep)
    server = Recording(script, Halt())
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(client, gate, False, policy=policy)  # type: ignore[arg-type]
        result = await term.terminate(SID)
    assert result.outcome == "terminated" and result.attempts == 6
    assert gate.told == [  # a 429 throttles; a 5xx that says when to return overloads
        ("throttled", 2.0),
        ("overloaded", 3.0),
        ("accepted", None),
        ("overloaded", 1.0),
        ("throttled", None),
        ("accepted", None),
    ]
    assert gate.sent == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # each answer with its own grant
    # every wait asked: 2 s and 3 s for the Retry-Afters, 1 s for the 504's, zero otherwise
    assert clock.now == 1000.0 + 2 + 3 + 1


# (script, archive, outcome) of one session retried once, then settled
SETTLED_AFTER_A_RETRY = [
    ({"DELETE": [problem(503), ok(SID)]}, False, "terminated"),
    ({"DELETE": [problem(503), ok(SID, archived=True)]}, True, "archived"),
    ({"DELETE": [problem(503), problem(409)], "GET": [ok(SID, "exit", True)]}, True, "archived"),
    ({"DELETE": [problem(503), problem(404)], "GET": [problem(404)]}, False, "not_found"),
]


@pytest.mark.parametrize(("script", "archive", "outcome"), SETTLED_AFTER_A_RETRY)
async def test_a_session_settled_after_a_retry_gives_its_cost_back(
    script: dict[str, Sequence[Reply]], archive: bool, outcome: str
) -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, available=5)
    case = await decide(script, archive=archive, budget=budget)
    assert (case.result.outcome, case.result.attempts) == (outcome, 2)
    assert budget.available == 5  # took 5 for the retry, gave 5 back


async def test_a_failed_session_keeps_its_retries_spent() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, available=5)
    case = await decide({"DELETE": [problem(503), problem(422)]}, budget=budget)
    assert (case.result.outcome, case.result.http_status, budget.available) == ("failed", 422, 0)
    again = await decide({"DELETE": [problem(503)]}, budget=budget)
    assert again.result.error == "retry budget of the run spent: HTTP 503: error: nope"
    assert again.sent == (1, 0, 0)


async def test_a_first_time_success_gives_one_back() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, available=5)
    await decide({"DELETE": [ok(SID)]}, budget=budget)
    assert budget.available == 6


async def test_a_throttle_does_not_make_a_later_404_uncertain() -> None:
    case = await decide({"DELETE": [problem(429), problem(408), problem(404)]})
    assert (case.result.outcome, case.sent) == ("not_found", (3, 0, 0))


async def test_a_5xx_stays_uncertain_through_a_later_throttle() -> None:
    case = await decide({"DELETE": [problem(503), problem(429), problem(404)], "GET": [ok(SID)]})
    r = case.result
    assert (r.outcome, r.http_status, r.status, r.archived, case.sent) == (
        "terminated",
        404,
        "exit",
        False,
        (3, 1, 0),
    )


async def test_an_unreadable_2xx_may_have_worked() -> None:
    # the GET says running (the DELETE did not take), so it is sent again; its 409 and a
    # GET saying exit: the unreadable 2xx may have been ours
    script = {"DELETE": [GARBAGE, problem(409)], "GET": [ok(SID, "running"), ok(SID)]}
    case = await decide(script)
    assert (case.result.outcome, case.result.attempts, case.sent) == ("terminated", 2, (2, 2, 0))


async def test_sent_before_makes_a_404_a_question() -> None:
    clock, halt = FakeClock(), Halt()
    server = Recording({"DELETE": [problem(404)], "GET": [ok(SID, archived=False)]}, halt)
    policy = RetryPolicy(backoff=Backoff(base=0.0), clock=clock, sleep=clock.sleep)
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(client, RateGate(None), False, policy=policy, halt=halt)
        result = await term.terminate(SID, "queue", sent_before=True)
    assert (result.outcome, result.source, server.count("GET")) == ("terminated", "queue", 1)


async def test_the_intent_is_written_once_before_the_first_delete_only() -> None:
    clock, halt = FakeClock(), Halt()
    server = Recording({"DELETE": [problem(503), ok(SID)], "GET": [ok(SID, "running")]}, halt)
    policy = RetryPolicy(backoff=Backoff(base=0.0), clock=clock, sleep=clock.sleep)
    intents: list[tuple[str, int]] = []
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(client, RateGate(None), False, policy=policy, halt=halt)
        term.before_send = lambda sid: intents.append((sid, server.count("DELETE")))
        await term.terminate(SID)
        assert intents == [(SID, 0)] and term.tally.requests == 2
        preview = await term.preview(SID, "dry")
    assert intents == [(SID, 0)] and term.tally.requests == 3
    assert (preview.outcome, preview.http_status, preview.status, preview.archived) == (
        "would_terminate",
        200,
        "running",
        False,
    )
    assert (preview.source, [q for m, q in server.queries if m == "DELETE"]) == (
        "dry",
        ["archive=false", "archive=false"],
    )


async def test_elapsed_is_kept_to_a_tenth_of_a_millisecond() -> None:
    case = await decide({"DELETE": [problem(503, **{"Retry-After": "0.01234"}), ok(SID)]})
    assert case.result.elapsed_ms == 12.3


async def test_each_retry_is_logged_with_its_reason_and_wait() -> None:
    script = {"DELETE": [problem(503, **{"Retry-After": "0.01234"}), GARBAGE], "GET": [ok(SID)]}
    with structlog.testing.capture_logs() as logs:
        case = await decide(script)
    assert case.result.outcome == "terminated"
    retries = [e for e in logs if e["event"] == "session.retry"]
    assert retries == [
        {
            "event": "session.retry",
            "log_level": "debug",
            "session_id": SID,
            "attempt": 1,
            "error": "HTTP 503: error: nope",
            "delay_s": 0.012,
        }
    ]


async def test_an_unreadable_dry_run_answer_is_retried_with_its_reason() -> None:
    script = {"GET": [GARBAGE, problem(500)]}
    with structlog.testing.capture_logs() as logs:
        case = await decide(script, dry_run=True, max_attempts=2)
    assert case.result.error == "gave up after 2 attempts: HTTP 500: error: nope"
    errors = [e["error"] for e in logs if e["event"] == "session.retry"]
    assert errors == [UNREADABLE]


async def _owed(script: dict[str, Sequence[Reply]]) -> Case:
    """A session an earlier run terminated (``exit``) and owes the archive of."""
    clock, halt = FakeClock(), Halt()
    server = Recording(script, halt)
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(client, RateGate(None), True, policy=fake_policy(clock), halt=halt)
        result = await term.terminate(SID, SOURCE, terminated="exit")
    return Case(result, server, clock, halt)


async def test_an_owed_archive_is_the_archive_call_alone() -> None:
    case = await _owed({"POST": [ok(SID, archived=True)]})
    r = case.result
    assert (r.outcome, r.status, r.archived, case.sent) == ("archived", "exit", True, (0, 0, 1))


async def test_an_owed_archive_that_fails_keeps_the_known_state_and_sends_no_delete() -> None:
    case = await _owed({"POST": [problem(503)]})
    r = case.result
    assert (r.outcome, r.status, r.archived, case.sent) == ("failed", "exit", False, (0, 0, 4))
    assert r.error == f"{NOT_ARCHIVED}gave up after 4 attempts: HTTP 503: error: nope"


async def test_an_owed_archive_of_a_session_not_terminated_sends_the_delete_after_all() -> None:
    script = {"POST": [ok(SID, "running", archived=True)], "DELETE": [ok(SID, archived=True)]}
    case = await _owed(script)
    assert (case.result.outcome, case.result.status, case.sent) == ("archived", "exit", (1, 0, 1))


async def test_a_409_found_terminated_unarchived_keeps_its_state_when_the_archive_fails() -> None:
    script = {"DELETE": [problem(409)], "GET": [ok(SID)], "POST": [problem(503)]}
    r = (await decide(script, archive=True)).result
    assert (r.outcome, r.http_status, r.status, r.archived) == ("failed", 503, "exit", False)


async def test_a_halt_before_the_archive_of_a_409_keeps_the_409() -> None:
    script = {"DELETE": [problem(409)], "GET": [ok(SID)]}
    case = await decide(script, archive=True, halt_on=2)  # halted while the GET is answered
    r = case.result
    # failed, its terminated state kept: the next run owes the archive call alone
    assert (r.outcome, r.http_status, r.status, case.sent) == ("failed", 409, "exit", (1, 1, 0))
    assert r.error == f"{NOT_ARCHIVED}not sent: operator stop"
