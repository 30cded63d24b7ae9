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

If ``tests/contract/node_modules`` lacks the pinned Prism, the fixture runs
``npm ci --prefix tests/contract --ignore-scripts`` (5.14.2 has no install scripts).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli_env, read_results, run_cli
from pydantic import BaseModel

from worker.results import RunFinished, RunStarted, SessionRecord, SessionSending

REPO = Path(__file__).resolve().parent.parent
CONTRACT_DIR = REPO / "tests" / "contract"
PRISM_BIN = CONTRACT_DIR / "node_modules" / ".bin" / "prism"
PRISM_VERSION = "5.14.2"
SPEC = REPO / "spec" / "devin-v3-sessions.openapi.yaml"
ORG = "org-abc123def456"
TOKEN = "cog_contract_check_0b7e4d21"
SEED = "20260"
IDS = [f"devin-contract{i:02d}_{'x' * (i % 3)}-z" for i in range(20)]
MODES = ("static", "seeded", "random")

# The whole module, npm ci on a cold cache included, stays well under this.
pytestmark = pytest.mark.timeout(240)

_LISTENING = "Prism is listening on"
_RECEIVED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
_VIOLATION = re.compile(r"Violation: (\S+) (.*)$")


# --------------------------------------------------------------------------- Prism


def _installed_version() -> str | None:
    manifest = CONTRACT_DIR / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    if not PRISM_BIN.exists() or not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def _ensure_prism() -> None:
    """Install Prism from the lockfile unless the pinned version is already there.

    Under a file lock: with pytest-xdist two workers may both need it, and two ``npm ci``
    in one folder break each other.
    """
    CONTRACT_DIR.joinpath(".install.lock").touch()
    with open(CONTRACT_DIR / ".install.lock", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install_prism()


def _install_prism() -> None:
    if _installed_version() == PRISM_VERSION:
        return
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail(
            "the Prism contract check needs Node.js >= 18.20 and npm on PATH "
            f"(node: {node}, npm: {npm}); install them, or run "
            "`npm ci --prefix tests/contract --ignore-scripts` where they are available",
            pytrace=False,
        )
    cmd = [npm, "ci", "--prefix", str(CONTRACT_DIR), "--ignore-scripts", "--no-audit", "--no-fund"]
    env = {**os.environ, "SCARF_ANALYTICS": "false"}
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=200, check=False
    )
    if done.returncode != 0 or _installed_version() != PRISM_VERSION:
        pytest.fail(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}",
            pytrace=False,
        )


def _prism_spec(tmp: Path) -> Path:
    """The vendored spec with the one change described in the module docstring."""
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for item in document["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                branches = param["schema"].get("anyOf", [])
                arrays = [b for b in branches if b.get("type") == "array"]
                if param["in"] == "query" and arrays and len(branches) == 2:
                    assert {"type": "null"} in branches, param
                    param["schema"] = arrays[0]  # a new object: YAML aliases stay intact
    path = tmp / "devin-v3-sessions.prism.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Prism:
    mode: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

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


def _start(mode: str, spec: Path, tmp: Path) -> Prism:
    port = _free_port()
    args = [str(PRISM_BIN), "mock", str(spec), "-h", "127.0.0.1", "-p", str(port), "--errors"]
    if mode == "seeded":
        args += ["-d", "--seed", SEED]
    elif mode == "random":
        args += ["-d"]
    log_path = tmp / f"prism-{mode}.log"
    env = {**os.environ, "SCARF_ANALYTICS": "false", "FORCE_COLOR": "0", "NO_COLOR": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO
        )
    return Prism(mode, port, log_path, process)


def _wait_listening(prism: Prism) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _LISTENING in prism.log():
            return
        if prism.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(
        f"Prism ({prism.mode}) did not start (exit {prism.process.poll()}):\n{prism.log()}"
    )


def _stop(prism: Prism) -> None:
    prism.process.terminate()
    try:
        prism.process.wait(5)
    except subprocess.TimeoutExpired:
        prism.process.kill()
        prism.process.wait(5)


@pytest.fixture(scope="module")
def prisms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Prism]]:
    _ensure_prism()
    tmp = tmp_path_factory.mktemp("prism")
    spec = _prism_spec(tmp)
    started: dict[str, Prism] = {}
    try:
        for mode in MODES:  # start all three, then wait: they boot in parallel
            started[mode] = _start(mode, spec, tmp)
        for prism in started.values():
            _wait_listening(prism)
        yield started
    finally:
        for prism in started.values():
            _stop(prism)


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
    assert done.returncode in (0, 1), where
    assert "Traceback" not in done.stderr, where
    listed = [(m, p) for m, p in traffic.requests if p == f"/v3/organizations/{ORG}/sessions"]
    assert listed and listed == traffic.requests, traffic.explain()
    assert all(m == "GET" for m, _ in listed), traffic.explain()
    assert done.stdout.startswith("session_id,"), done.stdout[:500]
