"""The simulator's answers checked against the vendored OpenAPI files with openapi-core."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import ResponseValidationError

from worker.simulator import SimulatorConfig, running_simulator, terminable_ids
from worker.simulator.population import UNKNOWN_VALUES
from worker.simulator.server import RunningSimulator

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO / "spec"
SHARED_SPEC_DIR = REPO.parent / "shared" / "spec"
HOST = "https://api.devin.ai"
ORG = "org-simulator"
NOW = 1_800_000_000.0


def _load(name: str) -> OpenAPI:
    document = yaml.safe_load((SPEC_DIR / name).read_text(encoding="utf-8"))
    # The original page declares `servers: []`; give openapi-core a server to match.
    document["servers"] = [{"url": HOST}]
    return OpenAPI.from_dict(document)


@pytest.fixture(scope="module")
def v3() -> OpenAPI:
    return _load("devin-v3-sessions.openapi.yaml")


@pytest.fixture(scope="module")
def original() -> OpenAPI:
    return _load("terminate-session.openapi.yaml")


class Exchange:
    """One request and its answer, as openapi-core wants them."""

    def __init__(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        self.request = MockRequest(HOST, method.lower(), path, args=query)
        self.status = status
        self.content_type = ""
        self.body = b""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    def response(self) -> MockResponse:
        # The spec declares application/json for every body, ProblemDetail included;
        # application/problem+json is the same document (checked separately).
        return MockResponse(self.body, status_code=self.status, content_type="application/json")


@contextlib.asynccontextmanager
async def client(**settings: Any) -> AsyncIterator[tuple[RunningSimulator, Any]]:
    config = SimulatorConfig(sessions=30, **settings)
    async with (
        running_simulator(config, now=lambda: NOW) as sim,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {config.token}"}) as http,
    ):

        async def call(
            method: str, path: str, query: dict[str, str] | None = None, **kw: Any
        ) -> Exchange:
            query = query or {}
            async with http.request(method, sim.base_url + path, params=query, **kw) as resp:
                exchange = Exchange(method, path, query, resp.status)
                exchange.content_type = resp.content_type
                exchange.body = await resp.read()
            return exchange

        yield sim, call


def _session_path(devin_id: str) -> str:
    return f"/v3/organizations/{ORG}/sessions/{devin_id}"


def _valid(spec: OpenAPI, exchange: Exchange) -> None:
    spec.validate_response(exchange.request, exchange.response())


async def test_success_answers_match_the_spec(v3: OpenAPI, original: OpenAPI) -> None:
    async with client() as (sim, call):
        sid = terminable_ids(sim.sessions)[0]
        for exchange in (
            await call("GET", _session_path(sid)),
            await call("GET", f"/v3/organizations/{ORG}/sessions", {"first": "5"}),
            await call("GET", f"/v3/organizations/{ORG}/sessions", {"tags": "ci"}),
            await call("GET", "/v3/self"),
            await call("POST", _session_path(terminable_ids(sim.sessions)[1]) + "/archive"),
        ):
            assert exchange.status == 200
            if "/archive" not in exchange.request.path:  # archive is not in the spec file
                _valid(v3, exchange)
        deleted = await call("DELETE", _session_path(sid), {"archive": "true"})
        assert deleted.status == 200
        _valid(v3, deleted)
        _valid(original, deleted)


async def test_every_session_of_the_population_matches(v3: OpenAPI) -> None:
    async with client() as (sim, call):
        for sid in sim.sessions:
            _valid(v3, await call("GET", _session_path(sid)))


@pytest.mark.parametrize(
    ("settings", "method", "path", "query", "status"),
    [
        ({"token": "cog_other"}, "DELETE", _session_path("devin-x"), {}, 401),
        ({"lacks_manage_permission": True}, "DELETE", _session_path("devin-x"), {}, 403),
        ({}, "DELETE", _session_path("devin-" + "0" * 32), {"archive": "false"}, 404),
        ({}, "GET", _session_path("devin-" + "0" * 32), {}, 404),
        ({}, "DELETE", _session_path("devin-x"), {"archive": "sometimes"}, 422),
        ({}, "GET", f"/v3/organizations/{ORG}/sessions", {"first": "500"}, 422),
        ({"rate_limit": 0.001, "rate_burst": 1}, "GET", "/v3/self", {}, 429),
    ],
)
async def test_error_answers_are_problem_details(
    v3: OpenAPI,
    settings: dict[str, Any],
    method: str,
    path: str,
    query: dict[str, str],
    status: int,
) -> None:
    async with client(**settings) as (_, call):
        if status == 401:
            exchange = await call(method, path, query, headers={"Authorization": "Bearer no"})
        else:
            if status == 429:
                await call(method, path, query)  # spends the only token
            exchange = await call(method, path, query)
        assert exchange.status == status
        assert exchange.content_type == "application/problem+json"
        assert exchange.json["status"] == status
        _valid(v3, exchange)


async def test_409_for_already_terminated_is_a_problem_detail(v3: OpenAPI) -> None:
    async with client() as (sim, call):
        ended = next(s for s, v in sim.sessions.items() if v["status"] in ("exit", "error"))
        exchange = await call("DELETE", _session_path(ended), {"archive": "true"})
        assert exchange.status == 409
        _valid(v3, exchange)


async def test_legacy_422_matches_the_original_page(original: OpenAPI) -> None:
    async with client(legacy_422=True) as (_, call):
        exchange = await call("DELETE", _session_path("devin-x"), {"archive": "maybe"})
        assert (exchange.status, exchange.content_type) == (422, "application/json")
        _valid(original, exchange)


async def test_unknown_enums_do_not_validate_but_are_present(v3: OpenAPI) -> None:
    async with client(unknown_enums=True) as (sim, call):
        sid = terminable_ids(sim.sessions)[0]
        got = await call("GET", _session_path(sid))
        with pytest.raises(ResponseValidationError):
            _valid(v3, got)
        body = got.json
        for field, value in UNKNOWN_VALUES.items():
            assert body[field] == value
        assert "hibernation" in body and body["status"] in (
            "new",
            "claimed",
            "running",
            "suspended",
            "resuming",
        )
        deleted = (await call("DELETE", _session_path(sid))).json
        assert (deleted["origin"], deleted["devin_mode"], deleted["status"]) == (
            "zapier",
            "turbo",
            "exit",
        )
        prs = [pr for s in sim.sessions.values() for pr in s["pull_requests"]]
        assert prs and all("pr_number" in pr for pr in prs)


def test_vendored_specs_match_the_shared_copies() -> None:
    if not SHARED_SPEC_DIR.is_dir():
        pytest.skip(f"{SHARED_SPEC_DIR} is absent: nothing to compare the vendored specs with")
    names = sorted(p.name for p in SHARED_SPEC_DIR.glob("*.yaml"))
    assert names == sorted(p.name for p in SPEC_DIR.glob("*.yaml"))
    for name in names:
        assert (SPEC_DIR / name).read_bytes() == (SHARED_SPEC_DIR / name).read_bytes(), name
