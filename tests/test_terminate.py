"""The terminate decision table: every status x fault x reconcile path, against a hostile
server on loopback that answers exactly what each case needs. Zero-wait backoff and a
fake clock (the policy's ``sleep`` moves it), so every case runs in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

import pytest
from hostile import (
    ORG,
    TOKEN,
    FakeClock,
    Hostile,
    Reply,
    fake_policy,
    ok,
    pause_gate,
    problem,
    serving,
)

from worker import terminate_sessions
from worker.api import RunSummary
from worker.devin.answer import Answer
from worker.devin.client import ClientOptions, DevinClient
from worker.outcomes import SessionResult
from worker.run.authority import PROOF, Authority
from worker.run.backoff import RetryBudget
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy
from worker.run.slots import Slots
from worker.run.terminate import Terminator

SID = "devin-target"
OTHER = "devin-victim"
GARBAGE = Reply(200, raw=b'{"session_id": "devin-tar')
ATTEMPTS = 4


def policy(clock: FakeClock, **kw: object) -> RetryPolicy:
    return fake_policy(clock, **{"max_attempts": ATTEMPTS, **kw})  # type: ignore[no-any-return]


@dataclass
class Case:
    result: SessionResult
    server: Hostile
    halt: Halt
    clock: FakeClock
    term: Terminator


async def decide(
    script: dict[str, Sequence[Reply]],
    *,
    archive: bool = False,
    dry_run: bool = False,
    ids: Sequence[str] = (SID,),
    **kw: object,
) -> Case:
    clock = FakeClock()
    server = Hostile(script)
    halt = Halt()
    options = ClientOptions("", ORG, TOKEN, timeout=5.0)
    async with serving(server) as url, DevinClient(replace(options, base_url=url)) as client:
        term = Terminator(client, RateGate(None), archive, policy=policy(clock, **kw), halt=halt)
        send = term.preview if dry_run else term.terminate
        results = [await send(sid) for sid in ids]
    return Case(results[-1], server, halt, clock, term)


def counts(case: Case) -> tuple[int, int, int]:
    s = case.server
    return s.count("DELETE"), s.count("GET"), s.count("POST")


# (script, archive, outcome, archived, (DELETEs, GETs, POSTs), words in the error)
TABLE = [
    pytest.param({"DELETE": [ok(SID)]}, False, "terminated", False, (1, 0, 0), None, id="200"),
    pytest.param(
        {"DELETE": [ok(SID, archived=True)]}, True, "archived", True, (1, 0, 0), None, id="200-arch"
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [ok(SID, archived=True)]},
        True, "archived", True, (1, 0, 1), None, id="200-not-archived-then-post",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [problem(503)]},
        True, "failed", False, (1, 0, ATTEMPTS), "terminated, not archived", id="archive-post-5xx",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [ok(SID)]},
        True, "failed", False, (1, 0, ATTEMPTS), "is_archived false", id="archive-post-ignored",
    ),
    pytest.param(
        {"DELETE": [ok(SID)], "POST": [problem(422, "cannot")]},
        True, "failed", False, (1, 0, 1), "cannot", id="archive-post-4xx",
    ),
    pytest.param(
        {"DELETE": [ok(SID), ok(SID, archived=True)], "POST": [problem(405)]},
        True, "archived", True, (2, 0, 1), None, id="no-archive-route-delete-again",
    ),
    pytest.param(
        {"DELETE": [ok(SID), problem(409)], "POST": [problem(404)]},
        True, "failed", False, (2, 0, 1), "not archived: HTTP 409", id="no-archive-route-409",
    ),
    pytest.param(
        {"DELETE": [ok(OTHER)], "GET": [ok(SID)]},
        False, "terminated", False, (1, 1, 0), None, id="mismatch-get-exit",
    ),
    pytest.param(
        {"DELETE": [ok(OTHER)], "GET": [ok(OTHER)]},
        False, "failed", None, (1, ATTEMPTS, 0), "another session", id="mismatch-get-mismatch",
    ),
    pytest.param(
        {"DELETE": [ok(OTHER)], "GET": [ok(SID, "running")]},
        False, "failed", None, (ATTEMPTS, ATTEMPTS, 0), "another session", id="mismatch-running",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [ok(SID)]},
        False, "terminated", False, (1, 1, 0), None, id="garbage-200-get-exit",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [ok(SID)], "POST": [ok(SID, archived=True)]},
        True, "archived", True, (1, 1, 1), None, id="garbage-200-archive",
    ),
    pytest.param(
        {"DELETE": [GARBAGE, problem(404)], "GET": [ok(SID, "running"), ok(SID)]},
        False, "terminated", False, (2, 2, 0), None, id="garbage-200-running-then-404",
    ),
    pytest.param(
        {"DELETE": [problem(503), problem(429), problem(409)], "GET": [ok(SID)]},
        False, "terminated", False, (3, 1, 0), None, id="5xx-429-409-still-ours",
    ),
    pytest.param(
        {"DELETE": [problem(429), problem(409)], "GET": [ok(SID)]},
        False, "already_terminated", False, (2, 1, 0), None, id="429-then-409-not-ours",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [problem(404)]},
        False, "not_found", None, (1, 1, 0), "unreadable", id="garbage-200-get-404",
    ),
    pytest.param(
        {"DELETE": [GARBAGE], "GET": [problem(500)]},
        False, "failed", None, (1, ATTEMPTS, 0), "GET to check", id="garbage-200-get-500",
    ),
    pytest.param(
        {"DELETE": [Reply(204)], "GET": [ok(SID)]},
        False, "terminated", False, (1, 1, 0), None, id="204-empty",
    ),
    pytest.param({"DELETE": [problem(404)]}, False, "not_found", None, (1, 0, 0), "404", id="404"),
    pytest.param(
        {"DELETE": [problem(503), problem(404)], "GET": [ok(SID)]},
        False, "terminated", False, (2, 1, 0), None, id="5xx-then-404-get-exit",
    ),
    pytest.param(
        {"DELETE": [problem(502), problem(404)], "GET": [problem(404)]},
        False, "not_found", None, (2, 1, 0), "HTTP 404", id="5xx-then-404-get-404",
    ),
    pytest.param(
        {"DELETE": [problem(409)], "GET": [ok(SID)]},
        False, "already_terminated", False, (1, 1, 0), None, id="409-get-exit",
    ),
    pytest.param(
        {"DELETE": [problem(409)], "GET": [ok(SID, "running")]},
        False, "failed", False, (1, 1, 0), "409", id="409-get-running",
    ),
    pytest.param(
        {"DELETE": [problem(500), problem(409)], "GET": [ok(SID)]},
        False, "terminated", False, (2, 1, 0), None, id="5xx-then-409-ours",
    ),
    pytest.param(
        {"DELETE": [problem(500), problem(409)], "GET": [ok(SID, archived=True)]},
        True, "archived", True, (2, 1, 0), None, id="5xx-then-409-archived",
    ),
    pytest.param(
        {"DELETE": [problem(500), problem(409)], "GET": [ok(SID)], "POST": [ok(SID, "exit", True)]},
        True, "archived", True, (2, 1, 1), None, id="5xx-409-not-archived-archive-kept",
    ),
    pytest.param(  # terminated before the run: with --archive, archived all the same
        {"DELETE": [problem(409)], "GET": [ok(SID)], "POST": [ok(SID, archived=True)]},
        True, "archived", True, (1, 1, 1), None, id="409-exit-archive-kept",
    ),
    pytest.param(  # terminated and archived before the run: nothing of ours
        {"DELETE": [problem(409)], "GET": [ok(SID, archived=True)]},
        True, "already_terminated", True, (1, 1, 0), None, id="409-exit-archived",
    ),
    pytest.param(
        {"DELETE": [problem(409)], "GET": [ok(OTHER)]},
        False, "failed", None, (1, ATTEMPTS, 0), "another session", id="409-get-mismatch",
    ),
    pytest.param(
        {"DELETE": [problem(422, "bad id")]}, False, "failed", None, (1, 0, 0), "bad id", id="422"
    ),
    pytest.param(
        {"DELETE": [problem(403, "forbidden here")]},
        False, "failed", None, (1, 0, 0), "forbidden", id="403-plain",
    ),
    pytest.param(
        {"DELETE": [problem(500)]},
        False, "failed", None, (ATTEMPTS, 0, 0), f"gave up after {ATTEMPTS}", id="500-forever",
    ),
    pytest.param(
        {"DELETE": [problem(408), problem(504), ok(SID)]},
        False, "terminated", False, (3, 0, 0), None, id="408-504-then-200",
    ),
    pytest.param(
        {"DELETE": [problem(429, **{"Retry-After": "3600"})]},
        False, "failed", None, (1, 0, 0), "more than retry_after_max (120 s)", id="429-ra-3600",
    ),
    pytest.param(
        {"DELETE": [problem(503, **{"Retry-After": "121"})]},
        False, "failed", None, (1, 0, 0), "asked to wait 121 s", id="503-ra-over-cap",
    ),
    pytest.param(
        {"DELETE": [Reply(200, huge=200 << 20)], "GET": [ok(SID)]},
        False, "terminated", False, (1, 1, 0), None, id="huge-200-get-exit",
    ),
    pytest.param(
        {"DELETE": [Reply(200, huge=200 << 20)], "GET": [Reply(200, huge=8 << 20, declared=True)]},
        False, "failed", None, (1, ATTEMPTS, 0), "answer too large (> 4 MiB)", id="huge-both",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("script", "archive", "outcome", "archived", "sent", "words"), TABLE)
async def test_decision_table(
    request: pytest.FixtureRequest,
    script: dict[str, Sequence[Reply]],
    archive: bool,
    outcome: str,
    archived: bool | None,
    sent: tuple[int, int, int],
    words: str | None,
) -> None:
    case = await decide(script, archive=archive)
    r = case.result
    assert (r.outcome, r.archived, counts(case)) == (outcome, archived, sent), r
    # attempts counts the DELETEs of the attempt loop; an archive retried by DELETE is not one
    again = request.node.callspec.id.startswith("no-archive-route")
    assert r.session_id == SID and r.attempts == sent[0] - again
    assert case.term.tally.requests == sum(sent)  # every request counted, checks too
    assert r.http_status is not None and (r.status is None) == (r.archived is None), r
    if r.archived is not None:
        assert r.status == ("running" if request.node.callspec.id == "409-get-running" else "exit")
    if words is None:
        assert r.error is None, r
    else:
        assert r.error is not None and words in r.error, r
    # only a 429 over the cap, with nothing else heard, ends the run; a 503 does not
    assert bool(case.halt) == (r.http_status == 429)
    assert case.server.streamed < 64 << 20  # a huge body is cut off, never read whole


@pytest.mark.parametrize(
    ("script", "outcome", "gets"),
    [
        ({"GET": [ok(SID, "running")]}, "would_terminate", 1),
        ({"GET": [ok(SID, "suspended", archived=True)]}, "would_terminate", 1),
        ({"GET": [ok(SID, "exit")]}, "already_terminated", 1),
        ({"GET": [ok(SID, "error")]}, "already_terminated", 1),
        ({"GET": [problem(404)]}, "not_found", 1),
        ({"GET": [problem(503), problem(404)]}, "not_found", 2),
        ({"GET": [problem(409)]}, "failed", 1),
        ({"GET": [problem(503), ok(SID, "new")]}, "would_terminate", 2),
        ({"GET": [ok(OTHER, "running")]}, "failed", ATTEMPTS),
        ({"GET": [GARBAGE, ok(SID, "running")]}, "would_terminate", 2),
    ],
)
async def test_dry_run_tells_the_truth(
    script: dict[str, Sequence[Reply]], outcome: str, gets: int
) -> None:
    case = await decide({"DELETE": [ok(SID)], **script}, dry_run=True, archive=True)
    r = case.result
    assert (r.outcome, counts(case)) == (outcome, (0, gets, 0)), r
    last = script["GET"][-1]
    assert r.http_status == last.status and r.attempts == gets
    if outcome in ("would_terminate", "already_terminated"):
        assert isinstance(last.json, dict)
        assert (r.status, r.archived) == (last.json["status"], last.json["is_archived"])


async def test_a_refused_token_halts_the_run_as_an_auth_failure() -> None:
    case = await decide({"DELETE": [problem(401, "bad token")]})
    assert case.result.outcome == "failed" and case.halt.auth and case.halt.fatal
    assert case.halt.reason is not None and "DEVIN_API_KEY" in case.halt.reason
    for detail in ("needs ManageOrgSessions", "Missing Permission"):
        ids = [f"devin-{n}" for n in range(PROOF)]
        once = await decide({"DELETE": [problem(403, detail)]})  # one proves nothing yet
        assert once.result.outcome == "failed" and not once.halt
        lacks = await decide({"DELETE": [problem(403, detail)] * PROOF}, ids=ids)
        assert lacks.halt.auth and "lacks a permission" in str(lacks.halt.reason)
        assert "needs ManageOrgSessions (and ViewOrgSessions" in str(lacks.halt.reason)


def test_a_token_is_refused_by_proof_permission_403s_and_never_after_a_success() -> None:
    authority = Authority()
    assert [authority.refuses_token() for _ in range(PROOF)] == [False] * (PROOF - 1) + [True]
    authority.succeeded()
    assert not any(authority.refuses_token() for _ in range(PROOF * 2))


async def test_a_refused_token_names_where_it_came_from() -> None:
    server = Hostile({"DELETE": [problem(401, "bad token")]})
    halt, source = Halt(), "the token file /etc/devin/token"
    options = ClientOptions("", ORG, TOKEN, timeout=5.0)
    async with serving(server) as url, DevinClient(replace(options, base_url=url)) as client:
        term = Terminator(
            client, RateGate(None), False, halt=halt, authority=Authority(token_from=source)
        )
        await term.terminate(SID)
    assert halt.reason is not None and halt.reason.endswith(f"check the token from {source}")
    assert "DEVIN_API_KEY" not in halt.reason


async def test_a_permission_403_after_a_success_is_about_its_session() -> None:
    detail = "lacks permission to manage session devin-9 (owned by another user)"
    ids = ["devin-a", *[f"devin-{n}" for n in range(PROOF + 1)]]
    case = await decide({"DELETE": [ok("devin-a"), *[problem(403, detail)] * (PROOF + 1)]}, ids=ids)
    assert not case.halt and case.term.authority.can_terminate
    r = case.result
    assert (r.outcome, r.http_status, r.attempts) == ("failed", 403, 1)
    assert r.error is not None and detail in r.error  # the server's own reason


async def test_a_429_over_the_cap_with_nothing_else_heard_ends_the_run() -> None:
    script = {"DELETE": [problem(429, **{"Retry-After": "3600"})]}
    case = await decide(script, ids=["devin-a", "devin-b"])
    assert case.halt.fatal and not case.halt.auth
    assert str(case.halt.reason).startswith("the API kept throttling: 1 answer(s) in a row")
    assert case.result.outcome == "cancelled" and counts(case) == (1, 0, 0)
    assert case.clock.now == 1000.0  # nobody waited for the cap


async def test_after_good_answers_three_429s_over_the_cap_end_the_run() -> None:
    script = {"DELETE": [ok("devin-a"), *[problem(429, **{"Retry-After": "3600"})] * 3, ok(SID)]}
    ids = ["devin-a", "devin-b", "devin-c", "devin-d", "devin-e"]
    case = await decide(script, ids=ids)
    assert str(case.halt.reason).startswith("the API kept throttling: 3 answer(s) in a row")
    # the fifth session is not sent at all once the run halted
    assert case.result.outcome == "cancelled" and counts(case) == (4, 0, 0)


async def test_the_session_deadline_bounds_waits_and_attempts() -> None:
    # Retry-After 50 s (under the cap): one wait of 50 fits (50 + 5 <= 120), a second
    # would end at 105 + 5... and the third at 155: stopped there, long before 6 attempts.
    script = {"DELETE": [problem(503, **{"Retry-After": "50"})]}
    case = await decide(script, max_attempts=10)
    r = case.result
    assert r.outcome == "failed" and r.attempts == 3, r
    assert r.error is not None and "session_timeout (120 s) would pass before attempt 4" in r.error
    assert case.clock.now == 1100.0 and r.elapsed_ms == 100_000.0


async def test_a_deadline_exactly_met_still_retries() -> None:
    script = {"DELETE": [problem(503, **{"Retry-After": "57.5"}), ok(SID)]}
    case = await decide(script, session_timeout=62.5)  # 0 + 57.5 + 5 == 62.5: allowed
    assert case.result.outcome == "terminated" and case.result.attempts == 2


async def test_the_retry_budget_stops_retries_run_wide() -> None:
    script = {"DELETE": [problem(500)]}
    case = await decide(script, budget=RetryBudget(capacity=10, retry_cost=5))
    assert case.result.outcome == "failed" and counts(case) == (3, 0, 0)
    assert "retry budget of the run spent" in str(case.result.error)


async def test_a_halt_ends_a_retry_wait_at_once() -> None:
    server = Hostile({"DELETE": [problem(503, **{"Retry-After": "100"})]})
    halt = Halt()
    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        term = Terminator(
            client, RateGate(None), False, halt=halt, policy=RetryPolicy(session_timeout=1e6)
        )
        task = asyncio.ensure_future(term.terminate(SID))
        while server.count("DELETE") == 0:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        halt("stop now", fatal=True)
        result = await asyncio.wait_for(task, 5)
    assert result.outcome == "cancelled" and result.error == "not sent: stop now"
    assert server.count("DELETE") == 1


async def test_a_paused_gate_holds_a_session_no_longer_than_its_deadline() -> None:
    gate = RateGate(10.0, max_pause=3600.0)
    pause_gate(gate, 3600.0)  # everyone paused for an hour
    server = Hostile({"DELETE": [ok(SID)]})
    try:
        async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
            term = Terminator(client, gate, False, policy=RetryPolicy(session_timeout=0.05))
            result = await asyncio.wait_for(term.terminate(SID), 5)
    finally:
        await gate.aclose()
    assert result.outcome == "failed" and server.count("DELETE") == 0
    assert "passed waiting for the rate gate" in str(result.error)


async def _run_against(server: Hostile, **options: object) -> RunSummary:
    async with serving(server) as url:
        return await terminate_sessions(
            [f"devin-s{i:03d}" for i in range(200)],
            org_id=ORG,
            token=TOKEN,
            base_url=url,
            backoff_base=0,
            breaker_window=1000,
            **options,
        )


async def test_endless_429_with_retry_after_3600_ends_the_run_at_once_with_exit_3() -> None:
    server = Hostile({"DELETE": [problem(429, **{"Retry-After": "3600"})]})
    summary = await _run_against(server, rate=50, concurrency=8)
    assert summary.exit_code == 3
    assert str(summary.reason).startswith("the API kept throttling: 1 answer(s) in a row")
    # the first answer was enough: only what was in flight then was sent, and failed;
    # nobody waited out the gate's pause
    sent = server.count("DELETE")
    assert 1 <= sent <= 8 and summary.counts["failed"] == sent


async def test_endless_429_without_retry_after_ends_the_run_with_exit_3() -> None:
    server = Hostile({"DELETE": [problem(429)]})
    summary = await _run_against(server, rate=0, throttle_timeout=0.05, max_attempts=100)
    assert summary.exit_code == 3
    assert str(summary.reason).startswith("the API kept throttling: only 429 answers for")
    assert summary.counts.get("terminated", 0) == 0


def test_a_foreign_session_id_is_quoted_and_cut() -> None:
    from worker.run.answers import read_session

    body = f'{{"session_id": "devin-{"x" * 200}\\nrm", "status": "exit"}}'.encode()
    session, why = read_session(Answer(200, body), SID)
    assert session is None and why is not None
    assert why == f"the API answered for another session: {('devin-' + 'x' * 200)[:80]!r}"


async def test_a_race_raises_what_the_awaitable_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("gate broke")

    with pytest.raises(RuntimeError, match="gate broke"):
        await Halt().race(broken())
    halted = Halt()
    halted("stop")
    assert not await halted.race(asyncio.sleep(0))
    assert not await Halt().race(asyncio.sleep(10), timeout=0.001)
    assert await Halt().race(asyncio.sleep(0))


async def test_an_archive_without_its_route_is_asked_again_by_delete_with_archive() -> None:
    script = {"DELETE": [ok(SID), ok(SID, archived=True)], "POST": [problem(405)]}
    case = await decide(script, archive=True)
    deletes = [path for method, path in case.server.requests if method == "DELETE"]
    assert deletes == [f"/v3/organizations/{ORG}/sessions/{SID}?archive=true"] * 2
    posts = [path for method, path in case.server.requests if method == "POST"]
    assert posts == [f"/v3/organizations/{ORG}/sessions/{SID}/archive"]
    assert case.result.http_status == 200


@pytest.mark.parametrize(
    ("script", "archive", "given_back"),
    [
        ({"DELETE": [ok(SID)]}, False, 1),
        ({"DELETE": [ok(SID, archived=True)]}, True, 1),
        ({"DELETE": [problem(404)]}, False, 1),
        ({"DELETE": [problem(409)], "GET": [ok(SID)]}, False, 1),
        ({"DELETE": [problem(503), ok(SID)]}, False, 0),  # took 5, gave 5 back
        ({"DELETE": [problem(422)]}, False, 0),
        ({"DELETE": [problem(503)]}, False, -5 * (ATTEMPTS - 1)),
    ],
)
async def test_settled_sessions_give_back_to_the_retry_budget(
    script: dict[str, Sequence[Reply]], archive: bool, given_back: int
) -> None:
    budget = RetryBudget(capacity=1000, available=500)
    await decide(script, archive=archive, budget=budget)
    assert budget.available == 500 + given_back


async def test_a_session_waiting_to_retry_hands_its_concurrency_slot_on() -> None:
    server = Hostile({"DELETE": [problem(503, **{"Retry-After": "1"}), ok(SID)]})
    slots = Slots(1)
    waiting, resume = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        assert seconds >= 1.0  # the Retry-After, not a zero backoff
        waiting.set()
        await resume.wait()

    async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
        policy = RetryPolicy(sleep=sleep)
        term = Terminator(client, RateGate(None), False, policy=policy, slots=slots)
        await slots.acquire()  # the slot the pipeline took for this session
        task = asyncio.create_task(term.terminate(SID))
        await asyncio.wait_for(waiting.wait(), 5)
        assert not slots.locked()  # free for another session while this one waits
        await slots.acquire()  # another session takes it, sends, and gives it back
        slots.release()
        resume.set()
        result = await asyncio.wait_for(task, 5)
    assert result.outcome == "terminated" and result.attempts == 2
    assert slots.locked()  # taken back before the retry, for the pipeline to release


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "https://api.devin.ai/prefix/",
        "http://[::1]:9",
    ],
)
@pytest.mark.parametrize(
    "session_id", ["devin-abc_1", "devin-a/../b", "dévin?x=1#f", "devin-a%2Fb", "devin-.."]
)
def test_a_session_url_is_the_prefix_and_the_quoted_id(base: str, session_id: str) -> None:
    """Built from the prefix's parts parsed once: the same URL as the quoted id appended to
    the prefix, and no id leaves ``.../sessions/`` (its ``/ ? # %`` are encoded)."""
    client = DevinClient(ClientOptions(base_url=base, org_id="org x/y", token="t"))
    prefix = f"{base.rstrip('/')}/v3/organizations/org%20x%2Fy/sessions/"
    quoted = quote(session_id, safe="")
    assert str(client.session_url(session_id)) == prefix + quoted
    assert str(client.session_url(session_id, "/archive")) == f"{prefix}{quoted}/archive"
    built = client.session_url(session_id, query="archive=false")
    assert str(built) == f"{prefix}{quoted}?archive=false"
    assert built.raw_parts[-1] == quoted and built.query == {"archive": "false"}
