"""Contract check: the CLI against an independent mock server generated from the spec.

Prism (``@stoplight/prism-cli`` 5.14.2, pinned in ``tests/contract/package-lock.json``;
5.15+ needs Node 24) serves ``spec/devin-v3-sessions.openapi.yaml``, the vendored copy
of ``../shared/spec``, with one test-time change (``_prism_spec``): a query parameter
declared ``anyOf: [{type: array, ...}, {type: 'null'}]`` (``tags``, ``session_ids``,
``user_ids``, ``service_user_ids``, ``origins``, ``repo_names``, ``automation_ids``) gets
its array branch as its schema. Prism 5.14.2 only collects repeated query keys into an
array when the schema says ``type: array`` at the top, so it rejects ``tags=a`` (the
correct form/explode serialization of ``["a"]``) with "must be array", while it accepts
``tags=a&tags=b``. A query string cannot carry a JSON null, so the null branch changes
nothing the client can send. Everything else (3.1, ``servers``, the other ``anyOf``
schemas, every response schema) is served as it is.

Prism validates every request against the spec and answers a violating one with 422 (or
401 for a missing bearer token); it says so in an ``sl-violations`` response header,
which the worker never shows us, and in its log::

    [VALIDATOR] ⚠  warning   Request did not pass the validation rules
    [VALIDATOR] ✖  error     Request query parameter archive must be boolean
    ...
    [VALIDATOR] ✖  error     Violation: request.query.archive Request query parameter ar…

so the tests read the log, between two sentinel requests that fence off one test's
traffic. ``test_detector_sees_a_bad_request`` proves the detector on deliberately bad
requests. Three servers run side by side:

- ``static``: answers built from the schemas (``"string"``, ``0``, first enum value);
- ``seeded``: ``-d --seed``: a random schema-valid answer with random extra properties,
  the same one to every request (reproducible);
- ``random``: ``-d`` unseeded: a different random answer to every request (breadth).

``--errors`` is on, so an answer Prism generates that breaks its own schema would come
back as a 500: the worker has to cope with that as well.

The servers are started once per session by the pytest controller (``tests/prism.py``),
which first runs ``npm ci --prefix tests/contract --ignore-scripts`` if
``tests/contract/node_modules`` lacks the pinned Prism (5.14.2 has no install scripts).
Without Node and npm the tests are skipped and the session ends with a banner saying the
contract check was NOT run; with ``DEVIN_TERMINATE_REQUIRE_PRISM=1`` (CI) they fail.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prism as servers
import pytest
from conftest import cli_env, read_results, run_cli
from pydantic import BaseModel

from worker.output.records import RunFinished, RunStarted, SessionRecord, SessionSending

REPO = Path(__file__).resolve().parent.parent
ORG = "org-abc123def456"
TOKEN = "cog_contract_check_0b7e4d21"
IDS = [f"devin-contract{i:02d}_{'x' * (i % 3)}-z" for i in range(20)]
MODES = servers.MODES

# The whole module, npm ci on a cold cache included, stays well under this. One worker runs
# it all (conftest.ONE_WORKER): the tests read one shared Prism log between fences.
pytestmark = pytest.mark.timeout(240)

_RECEIVED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
_VIOLATION = re.compile(r"Violation: (\S+) (.*)$")


# --------------------------------------------------------------------------- Prism


class Prism(servers.Prism):
    def fence(self) -> int:
        """Send a sentinel request, wait until Prism has logged it; return the log offset.

        Prism logs in order, so everything it received before the sentinel is in the log
        once the sentinel is.
        """
        marker = f"/__fence/{uuid.uuid4().hex}"
        try:
            urllib.request.urlopen(self.base_url + marker, timeout=5).close()
        except urllib.error.HTTPError as err:  # 404: no such route, as intended
            err.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log()
            at = text.find(marker)
            if at >= 0:
                return text.find("\n", at) + 1
            time.sleep(0.02)
        raise AssertionError(f"Prism ({self.mode}) never logged {marker}")

    def traffic(self, start: int) -> Traffic:
        return Traffic(self.mode, self.log()[start : self.fence()])


@dataclass
class Traffic:
    """What Prism logged between two fences."""

    mode: str
    text: str

    @property
    def requests(self) -> list[tuple[str, str]]:
        found = [(m[1].upper(), m[2]) for m in _RECEIVED.finditer(self.text)]
        return [(method, path) for method, path in found if not path.startswith("/__fence/")]

    @property
    def violations(self) -> list[str]:
        return [m[0] for line in self.text.splitlines() if (m := _VIOLATION.search(line))]

    @property
    def request_violations(self) -> list[str]:
        return [v for v in self.violations if v.startswith("Violation: request")]

    def explain(self) -> str:
        return f"Prism ({self.mode}) log of this exchange:\n{self.text[-6000:]}"


def _not_run(problem: str) -> None:
    if servers.required():
        pytest.fail(problem, pytrace=False)
    pytest.skip(f"PRISM CONTRACT CHECK NOT RUN: {problem}")


@pytest.fixture(scope="module")
def prisms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Prism]]:
    """The session's servers (started by the controller), else this module's own."""
    found, problem = servers.published()
    if problem is not None:
        _not_run(problem)
    own = found is None
    try:
        if found is None:
            try:
                found = servers.start_all(tmp_path_factory.mktemp("prism"))
            except servers.PrismUnavailable as error:
                _not_run(str(error))
        assert found is not None
        for server in found.values():
            server.wait_listening()
        yield {m: Prism(m, p.port, p.log_path, p.pid) for m, p in found.items()}
    finally:
        if own:
            servers.stop_all()


@pytest.fixture(params=MODES)
def prism(request: pytest.FixtureRequest, prisms: dict[str, Prism]) -> Prism:
    return prisms[request.param]


# --------------------------------------------------------------------------- helpers


def _ids_file(tmp_path: Path) -> Path:
    path = tmp_path / "ids.csv"
    path.write_text("session_id\n" + "\n".join(IDS) + "\n")
    return path


def _run(
    prism: Prism, tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    results = tmp_path / "results.jsonl"
    args = ["run", str(_ids_file(tmp_path)), "--org-id", ORG, "--base-url", prism.base_url,
            "--yes", "--rate", "0", "--max-attempts", "2", "--log-format", "json",
            "--progress", "off", "--results", str(results), *extra]  # fmt: skip
    done = run_cli(args, cli_env(DEVIN_API_KEY=TOKEN), cwd=tmp_path, timeout=30)
    return done, results


_KINDS: dict[str, type[BaseModel]] = {
    "run.started": RunStarted,
    "session.sending": SessionSending,
    "session.result": SessionRecord,
    "run.finished": RunFinished,
}


def _check_results(path: Path, done: subprocess.CompletedProcess[str]) -> list[SessionRecord]:
    """Every line is a valid record; every id has exactly one session.result."""
    where = f"exit {done.returncode}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode in (0, 1), where
    assert "Traceback" not in done.stderr, where
    records: list[dict[str, Any]] = read_results(path)
    sessions: list[SessionRecord] = []
    for raw in records:
        model = _KINDS[raw["event"]].model_validate(raw)
        if isinstance(model, SessionRecord):
            sessions.append(model)
    assert [r["event"] for r in records[:1]] == ["run.started"], records[:1]
    assert records[-1]["event"] == "run.finished", records[-1]
    assert sorted(s.session_id or "" for s in sessions) == sorted(IDS), where
    return sessions


def _assert_no_request_violations(traffic: Traffic) -> None:
    assert not traffic.request_violations, (
        f"Prism rejected requests the worker sent: {traffic.request_violations}\n"
        + traffic.explain()
    )


def _session_paths(traffic: Traffic, method: str) -> list[str]:
    prefix = f"/v3/organizations/{ORG}/sessions/"
    return [
        p.removeprefix(prefix) for m, p in traffic.requests if m == method and p.startswith(prefix)
    ]


# --------------------------------------------------------------------------- tests


def test_detector_sees_a_bad_request(prisms: dict[str, Prism]) -> None:
    """The violation detector is not vacuous: Prism logs a bad request and we find it."""
    prism = prisms["static"]
    url = f"{prism.base_url}/v3/organizations/{ORG}/sessions/{IDS[0]}"

    def send(query: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(url + query, method="DELETE", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, resp.headers.get("sl-violations", "")
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers.get("sl-violations", "")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    start = prism.fence()
    assert send("?archive=true", auth) == (200, "")
    clean = prism.traffic(start)
    assert clean.requests == [("DELETE", f"/v3/organizations/{ORG}/sessions/{IDS[0]}")]
    assert clean.violations == []

    start = prism.fence()
    status, header = send("?archive=maybe", auth)
    bad_query = prism.traffic(start)
    assert status == 422
    assert json.loads(header)[0]["location"] == ["request", "query", "archive"]
    assert bad_query.request_violations == [
        "Violation: request.query.archive Request query parameter archive must be boolean"
    ], bad_query.explain()

    start = prism.fence()
    status, header = send("?archive=true", {})
    no_token = prism.traffic(start)
    assert status == 401
    assert "Invalid security scheme used" in header
    assert no_token.request_violations == ["Violation: request Invalid security scheme used"]


@pytest.mark.parametrize(
    ("mode", "archive"),
    [
        ("static", "--archive"),
        ("static", "--no-archive"),
        ("seeded", "--archive"),
        ("random", "--archive"),
    ],
)
def test_run_sends_only_valid_requests(
    prisms: dict[str, Prism], tmp_path: Path, mode: str, archive: str
) -> None:
    prism = prisms[mode]
    start = prism.fence()
    done, results = _run(prism, tmp_path, archive)
    traffic = prism.traffic(start)

    _assert_no_request_violations(traffic)
    sessions = _check_results(results, done)
    deleted = _session_paths(traffic, "DELETE")
    assert sorted(set(deleted)) == sorted(IDS), traffic.explain()
    # One DELETE per id. Prism's schema-valid 200 names another session ("string", or a
    # random id): no success. Each is settled by GET (answered the same way, so tried
    # --max-attempts 2 times), never by another DELETE, and ends failed, exit 1.
    assert len(deleted) == len(IDS), traffic.explain()
    assert sorted(_session_paths(traffic, "GET")) == sorted(IDS * 2), traffic.explain()
    for record in sessions:
        assert (record.http_status, record.attempts, record.outcome) == (200, 1, "failed")
        assert "the API answered for another session" in (record.error or ""), record
    assert done.returncode == 1, done.stderr[-4000:]


def test_dry_run_sends_only_valid_requests(prism: Prism, tmp_path: Path) -> None:
    start = prism.fence()
    done, results = _run(prism, tmp_path, "--archive", "--dry-run")
    traffic = prism.traffic(start)

    _assert_no_request_violations(traffic)
    sessions = _check_results(results, done)
    assert _session_paths(traffic, "DELETE") == [], traffic.explain()
    assert sorted(set(_session_paths(traffic, "GET"))) == sorted(IDS), traffic.explain()
    assert ("GET", "/v3/self") in traffic.requests, traffic.explain()
    # A schema-valid 200 to a GET names another session than the one asked for: it says
    # nothing about ours, so it is looked up again (--max-attempts 2), then failed.
    assert {(r.outcome, r.http_status, r.attempts) for r in sessions} == {("failed", 200, 2)}
    assert all("another session" in (r.error or "") for r in sessions)
    assert done.returncode == 1, done.stderr[-4000:]


@functools.cache
def _has_list_command() -> bool:
    done = run_cli(["list", "--help"], cli_env(), cwd=REPO, timeout=30)
    return done.returncode == 0


# Every server-side filter, so that each query parameter is checked; one value for some
# array filters and two for others (one value is where Prism needed the spec change).
LIST_FILTERS = [
    "--tag", "a", "--tag", "b c", "--user-id", "u1", "--user-id", "u2",
    "--service-user-id", "s1", "--origin", "api", "--origin", "slack",
    "--created-after", "2026-01-01", "--created-before", "1800000000",
    "--updated-after", "1700000000", "--updated-before", "2026-11-01T00:00:00+02:00",
    "--older-than", "7d", "--playbook-id", "pb-1", "--parent-session-id", "devin-parent",
    "--category", "bug_fixing", "--not-archived", "--status", "running", "--limit", "50",
]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "filters"), [("static", True), ("seeded", False), ("random", False)]
)
def test_list_sends_only_valid_requests(
    prisms: dict[str, Prism], tmp_path: Path, mode: str, filters: bool
) -> None:
    if not _has_list_command():
        pytest.skip("`python -m worker list` does not exist yet")
    prism = prisms[mode]
    start = prism.fence()
    done = run_cli(
        ["list", "--org-id", ORG, "--base-url", prism.base_url, "--log-format", "json",
         *(LIST_FILTERS if filters else [])],
        cli_env(DEVIN_API_KEY=TOKEN),
        cwd=tmp_path,
        timeout=30,  # a random has_next_page must not page forever
    )  # fmt: skip
    traffic = prism.traffic(start)

    _assert_no_request_violations(traffic)
    where = f"exit {done.returncode}\nstderr:\n{done.stderr[-4000:]}"
    # a random page may say there is a next one and give no cursor: paging stops, exit 3
    ended = done.returncode == 3 and "the API's session list does not end" in done.stderr
    assert done.returncode in (0, 1) or ended, where
    assert "Traceback" not in done.stderr, where
    listed = [(m, p) for m, p in traffic.requests if p == f"/v3/organizations/{ORG}/sessions"]
    # who the token is first, then the pages and nothing else
    assert traffic.requests[:1] == [("GET", "/v3/self")], traffic.explain()
    assert listed and listed == traffic.requests[1:], traffic.explain()
    assert all(m == "GET" for m, _ in listed), traffic.explain()
    assert done.stdout.startswith("session_id,"), done.stdout[:500]
