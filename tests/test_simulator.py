"""The built-in simulator, through real loopback HTTP with an aiohttp client."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import email.utils
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from worker.simulator import (
    SimulatorConfig,
    make_population,
    running_simulator,
    terminable_ids,
    write_ids_csv,
)
from worker.simulator import app as simulator_app
from worker.simulator.command import config_from_args, configure_parser
from worker.simulator.server import RunningSimulator, check_loopback

NOW = 1_800_000_000.0
ORG = "org-simulator"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Sim:
    """A running simulator plus a client session that carries its token."""

    run: RunningSimulator
    http: aiohttp.ClientSession
    clock: FakeClock

    def url(self, path: str) -> str:
        return self.run.base_url + path

    def session_url(self, devin_id: str, org: str = ORG) -> str:
        return self.url(f"/v3/organizations/{org}/sessions/{devin_id}")

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.http.request(method, self.url(path), **kwargs) as resp:
            body = await resp.read()
            parsed = orjson.loads(body) if resp.content_type.endswith("json") else body
            return resp.status, parsed, resp.headers

    async def delete(self, devin_id: str, archive: str = "false") -> tuple[int, Any, Any]:
        path = f"/v3/organizations/{ORG}/sessions/{devin_id}"
        return await self.call("DELETE", path, params={"archive": archive})

    async def get(self, devin_id: str) -> tuple[int, Any, Any]:
        return await self.call("GET", f"/v3/organizations/{ORG}/sessions/{devin_id}")

    def live_ids(self) -> list[str]:
        return terminable_ids(self.run.sessions)

    def ended_ids(self) -> list[str]:
        return [sid for sid, s in self.run.sessions.items() if s["status"] in ("exit", "error")]


@contextlib.asynccontextmanager
async def open_sim(timeout: float = 5.0, **settings: Any) -> AsyncIterator[Sim]:
    settings.setdefault("sessions", 40)
    config = SimulatorConfig(**settings)
    clock = FakeClock()
    headers = {"Authorization": f"Bearer {config.token}"}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        running_simulator(config, clock=clock, now=lambda: NOW) as run,
        aiohttp.ClientSession(headers=headers, timeout=client_timeout) as http,
    ):
        yield Sim(run, http, clock)


def _is_problem(body: Any, status: int) -> bool:
    return isinstance(body, dict) and body["status"] == status and isinstance(body["title"], str)


# --- auth, identity -----------------------------------------------------------------


async def test_missing_or_wrong_token_is_401_problem() -> None:
    async with open_sim() as sim:
        sid = sim.live_ids()[0]
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer cog_wrong"}):
            status, body, hdrs = await sim.call(
                "DELETE", f"/v3/organizations/{ORG}/sessions/{sid}", headers=headers
            )
            assert status == 401
            assert _is_problem(body, 401)
            assert body["detail"] == "Invalid or expired API key"
            assert hdrs["Content-Type"] == "application/problem+json"
        assert sim.run.stats.auth_failures == 2
        assert sim.run.sessions[sid]["status"] != "exit"


async def test_token_scheme_case_and_spaces_do_not_matter() -> None:
    async with open_sim() as sim:
        token = SimulatorConfig().token
        for header in (f"bearer {token}", f"BEARER  {token} ", f"Bearer {token}"):
            status, _, _ = await sim.call("GET", "/v3/self", headers={"Authorization": header})
            assert status == 200, header
        status, _, _ = await sim.call(
            "GET", "/v3/self", headers={"Authorization": f"Basic {token}"}
        )
        assert status == 401
        assert sim.run.stats.auth_failures == 1


async def test_self_names_the_org() -> None:
    async with open_sim() as sim:
        status, body, _ = await sim.call("GET", "/v3/self")
        assert status == 200
        assert body["principal_type"] == "service_user"
        assert body["org_id"] == ORG


# --- DELETE ---------------------------------------------------------------------------


async def test_terminate_and_archive() -> None:
    async with open_sim() as sim:
        sid = next(i for i in sim.live_ids() if not sim.run.sessions[i]["is_archived"])
        status, body, _ = await sim.delete(sid, archive="true")
        assert status == 200
        assert body["session_id"] == sid
        assert (body["status"], body["is_archived"], body["updated_at"]) == ("exit", True, NOW)
        for field in ("status_detail", "structured_output", "category", "subcategory"):
            assert body[field] is None
        status, got, _ = await sim.get(sid)
        assert (got["status"], got["is_archived"]) == ("exit", True)
        assert (sim.run.stats.terminated, sim.run.stats.archived) == (1, 1)


async def test_terminate_without_archive_never_unarchives() -> None:
    async with open_sim(sessions=200) as sim:
        plain = next(i for i in sim.live_ids() if not sim.run.sessions[i]["is_archived"])
        archived = next(i for i in sim.live_ids() if sim.run.sessions[i]["is_archived"])
        _, body, _ = await sim.delete(plain, archive="false")
        assert (body["status"], body["is_archived"]) == ("exit", False)
        _, body, _ = await sim.delete(archived, archive="false")
        assert (body["status"], body["is_archived"]) == ("exit", True)


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE", "false", "0", "no", "off"])
async def test_archive_accepts_fastapi_booleans(value: str) -> None:
    async with open_sim() as sim:
        sid = next(i for i in sim.live_ids() if not sim.run.sessions[i]["is_archived"])
        status, body, _ = await sim.delete(sid, archive=value)
        assert status == 200
        assert body["status"] == "exit"
        assert body["is_archived"] is (value.lower() in ("true", "1", "yes", "on"))


async def test_bad_archive_value_is_422() -> None:
    async with open_sim() as sim:
        sid = sim.live_ids()[0]
        status, body, _ = await sim.delete(sid, archive="maybe")
        assert status == 422 and _is_problem(body, 422)
        assert body["errors"][0]["loc"] == ["query", "archive"]
        assert sim.run.sessions[sid]["status"] != "exit"
    async with open_sim(legacy_422=True) as sim:
        status, body, _ = await sim.delete(sim.live_ids()[0], archive="maybe")
        assert status == 422
        assert body == {
            "detail": [
                {
                    "loc": ["query", "archive"],
                    "msg": "Input should be a valid boolean, unable to interpret input",
                    "type": "bool_parsing",
                }
            ]
        }


async def test_already_terminated_409_by_default() -> None:
    async with open_sim() as sim:
        sid = sim.ended_ids()[0]
        before = dict(sim.run.sessions[sid])
        status, body, _ = await sim.delete(sid, archive="true")
        assert status == 409 and _is_problem(body, 409)
        assert sim.run.sessions[sid] == before


async def test_already_terminated_200_mode() -> None:
    async with open_sim(already_terminated="200") as sim:
        sid = next(i for i in sim.ended_ids() if not sim.run.sessions[i]["is_archived"])
        status, body, _ = await sim.delete(sid, archive="true")
        assert status == 200
        assert body["status"] in ("exit", "error")
        assert body["is_archived"] is True
        assert sim.run.stats.terminated == 0


async def test_unknown_id_and_other_org_are_404() -> None:
    async with open_sim() as sim:
        status, body, _ = await sim.delete("devin-" + "0" * 32)
        assert status == 404 and _is_problem(body, 404)
        sid = sim.live_ids()[0]
        path = f"/v3/organizations/org-other/sessions/{sid}"
        status, body, _ = await sim.call("DELETE", path)
        assert status == 404
        assert sim.run.sessions[sid]["status"] != "exit"


async def test_lacks_manage_permission_is_403_but_reads_work() -> None:
    async with open_sim(lacks_manage_permission=True) as sim:
        sid = sim.live_ids()[0]
        status, body, _ = await sim.delete(sid)
        assert status == 403 and "ManageOrgSessions" in body["detail"]
        status, _, _ = await sim.call("POST", f"/v3/organizations/{ORG}/sessions/{sid}/archive")
        assert status == 403
        status, body, _ = await sim.get(sid)
        assert status == 200 and body["status"] != "exit"


async def test_a_share_of_sessions_forbidden_or_unarchivable_alone() -> None:
    async with open_sim(sessions=200, forbidden_share=0.25) as sim:
        answers = [(await sim.delete(sid))[0] for sid in sim.live_ids()]
        forbidden = answers.count(403)
        assert 25 <= forbidden <= 75 and set(answers) == {200, 403}
        sid = sim.live_ids()[answers.index(403)]
        status, body, _ = await sim.delete(sid)  # the same session, the same answer
        assert status == 403 and "lacks permission" in body["detail"] and sid in body["detail"]
        assert (await sim.get(sid))[0] == 200
    async with open_sim(sessions=200, archive_fail_share=0.25) as sim:
        path = f"/v3/organizations/{ORG}/sessions/{{}}"
        kept = []
        for sid in sim.live_ids():
            status, body, _ = await sim.call("DELETE", path.format(sid) + "?archive=true")
            assert status == 200 and body["status"] == "exit"
            if not body["is_archived"]:
                kept.append(sid)
                assert (await sim.call("POST", path.format(sid) + "/archive"))[0] == 500
        assert 25 <= len(kept) <= 75


async def test_post_archive_puts_session_to_sleep() -> None:
    async with open_sim() as sim:
        sid = next(i for i in sim.live_ids() if sim.run.sessions[i]["status"] == "running")
        status, body, _ = await sim.call("POST", f"/v3/organizations/{ORG}/sessions/{sid}/archive")
        assert status == 200
        assert (body["status"], body["is_archived"]) == ("suspended", True)


async def test_problem_content_type_modes() -> None:
    async with open_sim(problem_content_type="application/json") as sim:
        _, _, headers = await sim.delete("devin-unknown")
        assert headers["Content-Type"] == "application/json"
    async with open_sim(problem_content_type="mixed") as sim:
        types = {(await sim.delete("devin-unknown"))[2]["Content-Type"] for _ in range(2)}
        assert types == {"application/json", "application/problem+json"}


# --- rate limit -------------------------------------------------------------------------


async def test_rate_limit_token_bucket_on_injected_clock() -> None:
    async with open_sim(rate_limit=10, rate_burst=2) as sim:
        statuses = [(await sim.call("GET", "/v3/self"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        status, body, headers = await sim.call("GET", "/v3/self")
        assert status == 429 and _is_problem(body, 429)
        assert headers["Retry-After"] == "1"
        sim.clock.advance(0.1)
        assert (await sim.call("GET", "/v3/self"))[0] == 200
        assert sim.run.stats.throttled == 2


async def test_retry_after_seconds_rounds_up() -> None:
    async with open_sim(rate_limit=0.4, rate_burst=1) as sim:
        await sim.call("GET", "/v3/self")
        _, _, headers = await sim.call("GET", "/v3/self")
        assert headers["Retry-After"] == "3"  # 2.5 s until the next token


async def test_retry_after_http_date_absent_and_mixed() -> None:
    async with open_sim(rate_limit=1, rate_burst=1, retry_after="http-date") as sim:
        await sim.call("GET", "/v3/self")
        _, _, headers = await sim.call("GET", "/v3/self")
        when = email.utils.parsedate_to_datetime(headers["Retry-After"])
        assert when.timestamp() == NOW + 1
    async with open_sim(rate_limit=1, rate_burst=1, retry_after="absent") as sim:
        await sim.call("GET", "/v3/self")
        status, _, headers = await sim.call("GET", "/v3/self")
        assert status == 429 and "Retry-After" not in headers
    async with open_sim(rate_limit=1, rate_burst=1, retry_after="mixed") as sim:
        await sim.call("GET", "/v3/self")
        seen = [(await sim.call("GET", "/v3/self"))[2].get("Retry-After") for _ in range(3)]
        assert seen[0] == "1"
        assert email.utils.parsedate_to_datetime(seen[1]).timestamp() == NOW + 1
        assert seen[2] is None


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("500", 500, "application/problem+json"),
        ("502", 502, "text/html"),
        ("503", 503, "application/problem+json"),
        ("503-retry-after", 503, "application/problem+json"),
        ("504", 504, "text/plain"),
        ("429", 429, "application/problem+json"),
        ("409", 409, "application/problem+json"),
        ("404", 404, "application/problem+json"),
    ],
)
async def test_scripted_status_faults_then_normal(
    kind: str, status: int, content_type: str
) -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    async with open_sim(faults_by_id={sid: (kind, kind)}) as sim:
        for _ in range(2):
            got, _, headers = await sim.delete(sid)
            assert (got, headers["Content-Type"]) == (status, content_type)
            assert sim.run.sessions[sid]["status"] != "exit"
        if kind in ("503-retry-after", "429"):
            assert headers["Retry-After"] == "1"
        else:
            assert "Retry-After" not in headers
        assert (await sim.delete(sid))[0] == 200
        assert sim.run.stats.faults_injected == {kind: 2}
        assert sim.run.stats.deletes_by_session[sid] == 3


async def test_malformed_body_after_applying() -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    async with open_sim(faults_by_id={sid: ("malformed",)}) as sim:
        async with sim.http.delete(sim.session_url(sid)) as resp:
            assert resp.status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(await resp.read())
        assert sim.run.sessions[sid]["status"] == "exit"


@pytest.mark.parametrize(("ghost", "applied"), [(0.0, False), (1.0, True)])
async def test_reset_drops_the_connection(ghost: float, applied: bool) -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    script = {sid: ("reset", "reset")}
    async with open_sim(faults_by_id=script, ghost_success_rate=ghost) as sim:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await sim.delete(sid)
        # aiohttp re-sends an idempotent request once on a dropped connection.
        assert sim.run.stats.deletes_by_session[sid] == 2
        assert sim.run.stats.sessions_with_multiple_deletes == 1
        assert (sim.run.sessions[sid]["status"] == "exit") is applied
        assert sim.run.stats.faults_injected["reset"] == 2


async def test_single_reset_is_hidden_by_aiohttp_retry() -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    async with open_sim(faults_by_id={sid: ("reset",)}, ghost_success_rate=0.0) as sim:
        status, body, _ = await sim.delete(sid)
        assert (status, body["status"]) == (200, "exit")
        assert sim.run.stats.deletes_by_session[sid] == 2


@pytest.mark.parametrize(("ghost", "applied"), [(0.0, False), (1.0, True)])
async def test_timeout_hangs_past_the_client(ghost: float, applied: bool) -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    script = {sid: ("timeout",)}
    async with open_sim(
        timeout=0.05, faults_by_id=script, timeout_hang_s=30.0, ghost_success_rate=ghost
    ) as sim:
        with pytest.raises(TimeoutError):
            await sim.delete(sid)
        assert (sim.run.sessions[sid]["status"] == "exit") is applied
        assert sim.run.stats.faults_injected == {"timeout": 1}


async def test_short_timeout_fault_still_answers() -> None:
    sid = terminable_ids(make_population(SimulatorConfig(sessions=40), NOW))[0]
    async with open_sim(faults_by_id={sid: ("timeout",)}, timeout_hang_s=0.001) as sim:
        status, body, _ = await sim.delete(sid)
        assert (status, body["status"]) == (200, "exit")


class _RecordedSleeps:
    """``asyncio`` as the simulator app sees it, with every ``sleep`` delay recorded."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(delay)


@pytest.mark.parametrize(("latency_ms", "jitter_ms"), [(0.0, 0.0), (20.0, 0.0), (20.0, 10.0)])
async def test_latency_delays_but_answers(
    monkeypatch: pytest.MonkeyPatch, latency_ms: float, jitter_ms: float
) -> None:
    sleeps = _RecordedSleeps()
    monkeypatch.setattr(simulator_app, "asyncio", sleeps)
    loop = asyncio.get_running_loop()
    async with open_sim(latency_ms=latency_ms, latency_jitter_ms=jitter_ms) as sim:
        answered = []
        for sid in sim.live_ids()[:4]:
            sent = loop.time()
            status, body, _ = await sim.delete(sid)
            answered.append(loop.time() - sent)
            assert (status, body["status"]) == (200, "exit")
    if latency_ms == 0:
        assert sleeps.delays == []  # no latency asked, none added
        return
    assert len(sleeps.delays) == 4  # one delay per request, before it is answered
    low, high = latency_ms / 1000, (latency_ms + jitter_ms) / 1000
    assert all(low <= d <= high for d in sleeps.delays), sleeps.delays
    assert all(took >= d for took, d in zip(answered, sleeps.delays, strict=True))
    assert (len(set(sleeps.delays)) > 1) == (jitter_ms > 0), sleeps.delays


async def test_random_faults_by_rate() -> None:
    async with open_sim(fault_rate=1.0, fault_kinds=("503",)) as sim:
        for sid in sim.live_ids()[:5]:
            assert (await sim.delete(sid))[0] == 503
        assert sim.run.stats.faults_injected == {"503": 5}
        assert sim.run.stats.requests_by_status == {"503": 5}


# --- list -------------------------------------------------------------------------------


async def _list_all(sim: Sim, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: list[tuple[str, str]] = []
    while True:
        path = f"/v3/organizations/{ORG}/sessions"
        status, page, _ = await sim.call("GET", path, params=params + after)
        assert status == 200
        items += page["items"]
        assert page["total"] >= len(items)
        if not page["has_next_page"]:
            assert page["end_cursor"] is None
            return items
        after = [("after", page["end_cursor"])]


async def test_list_pages_newest_first() -> None:
    async with open_sim(sessions=25) as sim:
        items = await _list_all(sim, [("first", "10")])
        assert len(items) == len(sim.run.sessions) > 25  # 25 live, terminated ones on top
        assert len(sim.live_ids()) == 25
        assert {s["session_id"] for s in items} == set(sim.run.sessions)
        created = [s["created_at"] for s in items]
        assert created == sorted(created, reverse=True)


async def test_list_filters() -> None:
    async with open_sim(sessions=120) as sim:
        sessions = list(sim.run.sessions.values())
        items = await _list_all(sim, [("first", "7"), ("tags", "ci"), ("tags", "prod")])
        expected = {s["session_id"] for s in sessions if {"ci", "prod"} & set(s["tags"])}
        assert {s["session_id"] for s in items} == expected and expected
        cut = sorted(s["created_at"] for s in sessions)[60]
        params = [("created_after", str(cut)), ("is_archived", "false"), ("whatever", "x")]
        items = await _list_all(sim, params)
        expected = {
            s["session_id"] for s in sessions if s["created_at"] >= cut and not s["is_archived"]
        }
        assert {s["session_id"] for s in items} == expected
        two = [s["session_id"] for s in sessions[:2]]
        items = await _list_all(sim, [("session_ids", two[0]), ("session_ids", two[1])])
        assert sorted(s["session_id"] for s in items) == sorted(two)


@pytest.mark.parametrize(
    "params",
    [
        {"first": "0"},
        {"first": "201"},
        {"first": "ten"},
        {"after": "garbage!"},
        {"after": base64.urlsafe_b64encode(b"offset:-3").decode()},
        {"created_after": "yesterday"},
        {"is_archived": "perhaps"},
    ],
)
async def test_list_rejects_bad_params_with_422(params: dict[str, str]) -> None:
    async with open_sim() as sim:
        status, body, _ = await sim.call("GET", f"/v3/organizations/{ORG}/sessions", params=params)
        assert status == 422 and _is_problem(body, 422)
        assert body["errors"][0]["loc"] == ["query", next(iter(params))]


# --- stats -----------------------------------------------------------------------------


async def test_stats_counts_and_peak_window() -> None:
    async with open_sim() as sim:
        a, b = sim.live_ids()[:2]
        for step, sid in zip((0.0, 0.5, 0.4, 0.6, 0.1), (a, a, b, a, b), strict=True):
            sim.clock.advance(step)
            await sim.delete(sid)
        status, stats, _ = await sim.call("GET", "/_simulator/stats", headers={"Authorization": ""})
        assert status == 200
        assert stats["deletes_by_session"] == {a: 3, b: 2}
        assert stats["sessions_with_multiple_deletes"] == 2
        assert stats["peak_requests_per_second"] == 3
        assert stats["requests_by_method"] == {"DELETE": 5}
        assert stats["requests_by_status"] == {"200": 2, "409": 3}
        assert (stats["terminated"], stats["requests_total"]) == (2, 5)
        assert (stats["first_request_at"], stats["last_request_at"]) == (1000.0, 1001.6)


async def test_unexpected_requests_are_404_and_listed() -> None:
    async with open_sim() as sim:
        assert (await sim.call("GET", "/v1/sessions"))[0] == 404
        assert (await sim.call("PUT", f"/v3/organizations/{ORG}/sessions/devin-x"))[0] == 404
        _, stats, _ = await sim.call("GET", "/_simulator/stats")
        assert stats["unexpected_requests"] == [
            "GET /v1/sessions",
            f"PUT /v3/organizations/{ORG}/sessions/devin-x",
        ]
        assert stats["unexpected_total"] == 2
        await sim.call("POST", "/_simulator/reset-stats")
        assert sim.run.stats.requests_total == 0 and sim.run.stats.unexpected_requests == []


# --- population, config, command --------------------------------------------------------


def test_population_is_seeded_and_mixed(tmp_path: Path) -> None:
    config = SimulatorConfig(sessions=300, seed=7)
    one, two = make_population(config, NOW), make_population(config, NOW)
    assert one == two
    assert make_population(SimulatorConfig(sessions=300, seed=8), NOW) != one
    statuses = {s["status"] for s in one.values()}
    assert {"running", "suspended", "new", "exit", "error"} <= statuses
    assert any(s["is_archived"] for s in one.values())
    for sid, s in one.items():
        assert sid == s["session_id"] and len(sid) == len("devin-") + 32
        assert s["url"] == "https://app.devin.ai/sessions/" + sid.removeprefix("devin-")
        assert NOW - 31 * 86400 < s["created_at"] <= s["updated_at"] <= NOW
    ids = terminable_ids(one)
    write_ids_csv(tmp_path / "ids.csv", ids)
    rows = list(csv.reader((tmp_path / "ids.csv").read_text().splitlines()))
    assert rows[0] == ["session_id"] and [r[0] for r in rows[1:]] == ids


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="fault_kinds"):
        SimulatorConfig(fault_kinds=("418",))
    with pytest.raises(ValueError, match="retry_after"):
        SimulatorConfig(retry_after="never")
    with pytest.raises(ValueError, match="fault_rate"):
        SimulatorConfig(fault_rate=1.5)
    assert SimulatorConfig(rate_limit=250).burst == 25
    assert SimulatorConfig(rate_limit=3).burst == 1


def test_command_flags_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    argv = (
        "--port 0 --sessions 5 --rate-limit 50 --retry-after mixed --fault-kinds 500,reset"
        " --fault-script devin-a=503,reset --fault-script devin-b=timeout --unknown-enums"
        " --already-terminated 200 --lacks-manage-permission --legacy-422 --org-id org-x"
    )
    args = parser.parse_args(argv.split())
    config = config_from_args(args)
    assert (config.sessions, config.rate_limit, config.retry_after) == (5, 50.0, "mixed")
    assert config.fault_kinds == ("500", "reset")
    assert config.faults_by_id == {"devin-a": ("503", "reset"), "devin-b": ("timeout",)}
    assert config.unknown_enums and config.lacks_manage_permission and config.legacy_422
    assert (config.already_terminated, config.org_id, args.port) == ("200", "org-x", 0)


async def test_refuses_non_loopback_hosts() -> None:
    for host in ("127.0.0.2", "::1", "localhost"):
        check_loopback(host)
    with pytest.raises(ValueError, match="loopback"):
        async with running_simulator(SimulatorConfig(), host="0.0.0.0"):
            pass


@pytest.mark.parametrize("slow_429s", [False, True])
async def test_429s_are_answered_at_once_unless_slow_429s(
    monkeypatch: pytest.MonkeyPatch, slow_429s: bool
) -> None:
    """A gateway answers its 429s before any work; ``--slow-429s`` plays a server whose
    429s take as long as the rest."""
    sleeps = _RecordedSleeps()
    monkeypatch.setattr(simulator_app, "asyncio", sleeps)
    config = {"rate_limit": 0.5, "rate_burst": 1, "latency_ms": 20.0, "slow_429s": slow_429s}
    async with open_sim(**config) as sim:
        first, second = sim.live_ids()[:2]
        assert (await sim.delete(first))[0] == 200
        assert (await sim.delete(second))[0] == 429
    assert sleeps.delays == ([0.02, 0.02] if slow_429s else [0.02])
