"""Identity preflight on every run, and a result log bound to one org and one API."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import cli_env, read_results, run_cli
from tests.servers import ORG, TOKEN, closed_port, echo_app, serve, settings, simulator_app
from worker.errors import AuthError, ConfigError, PreflightError
from worker.run.job import run_job
from worker.simulator import terminable_ids


def _ids(tmp_path: Path, ids: list[str]) -> str:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return str(path)


def _outcomes(path: Path) -> Counter[str]:
    return Counter(r["outcome"] for r in read_results(path) if r["event"] == "session.result")


def test_wrong_org_sends_nothing_then_the_right_org_terminates_all(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with serve(simulator_app()) as api:
        ids = terminable_ids(api.sim.sessions)
        inputs = [_ids(tmp_path, ids)]
        with pytest.raises(PreflightError) as caught:
            run_job(settings(api.base_url, out, org_id="org-typo"), inputs)
        assert caught.value.exit_code == 3
        assert "org-typo" in str(caught.value) and ORG in str(caught.value)
        assert api.sim.stats.snapshot()["deletes_total"] == 0
        assert _outcomes(out) == {}  # no final outcome, not even run.started
        report = run_job(settings(api.base_url, out), inputs)
    assert report.exit_code == 0
    assert _outcomes(out) == {"terminated": len(ids)}


@pytest.mark.parametrize("org", [None, "string", 42])
def test_an_enterprise_token_with_no_org_may_act_on_the_org(tmp_path: Path, org: object) -> None:
    """Also a placeholder that is no org id at all (a mock server's): nothing to compare."""

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"principal_type": "enterprise_service_user", "org_id": org})

    with serve(echo_app(whoami)) as api:
        report = run_job(settings(api.base_url, tmp_path / "r.jsonl"), [_ids(tmp_path, [])])
    assert report.exit_code == 0


@pytest.mark.parametrize("suffix", ["/v3", "/api"])
def test_a_base_url_with_an_extra_path_stops_at_once(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "r.jsonl"
    with serve(simulator_app()) as api:
        ids = _ids(tmp_path, terminable_ids(api.sim.sessions))
        with pytest.raises(PreflightError, match="answered 404") as caught:
            run_job(settings(api.base_url + suffix, out), [ids])
        assert api.sim.stats.snapshot()["deletes_total"] == 0
    assert f"{api.base_url}{suffix}/v3/self" in str(caught.value)
    assert _outcomes(out) == {}


def test_nothing_listening_stops_in_seconds_with_one_cause(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(PreflightError, match="cannot reach the API") as caught:
        run_job(settings(url, tmp_path / "r.jsonl"), [_ids(tmp_path, ["devin-a", "devin-b"])])
    assert time.monotonic() - started < 5
    assert url in str(caught.value) and "\n" not in str(caught.value)
    assert _outcomes(tmp_path / "r.jsonl") == {}


def test_a_tls_failure_stops_in_seconds_with_one_cause(tmp_path: Path) -> None:
    """https to a server that speaks plain http: the TLS handshake fails, no retry."""
    with serve(simulator_app()) as api:
        url = api.base_url.replace("http://", "https://")
        started = time.monotonic()
        with pytest.raises(PreflightError, match="cannot reach the API") as caught:
            run_job(settings(url, tmp_path / "r.jsonl"), [_ids(tmp_path, ["devin-a"])])
        assert api.sim.stats.snapshot()["requests_total"] == 0
    assert time.monotonic() - started < 5 and url in str(caught.value)


def test_a_refused_token_stops_every_run_not_only_dry_runs(tmp_path: Path) -> None:
    with serve(simulator_app()) as api:
        s = settings(api.base_url, tmp_path / "r.jsonl", token="cog_wrong_token_123456")
        with pytest.raises(AuthError):
            run_job(s, [_ids(tmp_path, terminable_ids(api.sim.sessions))])
        assert api.sim.stats.snapshot()["deletes_total"] == 0


def test_a_flaky_gateway_gets_quick_retries(tmp_path: Path) -> None:
    calls: list[int] = []

    async def whoami(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) < 3:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return web.json_response({"org_id": ORG})

    with serve(echo_app(whoami)) as api:
        report = run_job(settings(api.base_url, tmp_path / "r.jsonl"), [_ids(tmp_path, [])])
    assert report.exit_code == 0 and len(calls) == 3


def test_a_log_of_another_org_or_api_is_refused_not_skipped(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with serve(simulator_app()) as api:
        ids = _ids(tmp_path, terminable_ids(api.sim.sessions))
        assert run_job(settings(api.base_url, out), [ids]).exit_code == 0
        first = read_results(out)[0]
        assert first["org_id"] == ORG and first["base_url"] == api.base_url
    with serve(simulator_app(org_id="org-other")) as other:
        with pytest.raises(ConfigError, match=f"belongs to org {ORG}") as caught:
            run_job(settings(other.base_url, out, org_id="org-other"), [ids])
        assert caught.value.exit_code == 2
        moved = pytest.raises(ConfigError, match="belongs to org")
        with serve(simulator_app()) as elsewhere, moved:  # the same org at another API
            run_job(settings(elsewhere.base_url, out), [ids])
        assert other.sim.stats.snapshot()["requests_total"] == 0


def test_cli_nothing_listening_exit_3_few_lines_within_seconds(tmp_path: Path) -> None:
    ids = _ids(tmp_path, [f"devin-{n}" for n in range(100)])
    env = cli_env(
        None,
        DEVIN_API_KEY=TOKEN,
        DEVIN_ORG_ID=ORG,
        DEVIN_API_URL=f"http://127.0.0.1:{closed_port()}",
    )
    started = time.monotonic()
    proc = run_cli(["run", ids, "--results", str(tmp_path / "r.jsonl")], env, cwd=tmp_path)
    assert time.monotonic() - started < 10
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 10 and "cannot reach the API" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [r for r in read_results(tmp_path / "r.jsonl") if r["event"] == "session.result"]


def test_messages_name_where_the_token_and_org_id_came_from(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "3")
    token = tmp_path / "token"
    token.write_text("cog_wrong_token_from_file\n")
    token.chmod(0o600)
    env = cli_env(sim, DEVIN_API_KEY="")
    refused = run_cli(["list", "--token-file", str(token)], env, cwd=tmp_path)
    assert refused.returncode == 3 and f"check the token file {token}" in refused.stderr
    assert "DEVIN_API_KEY" not in refused.stderr
    other = run_cli(["list"], cli_env(sim, DEVIN_ORG_ID="org-other"), cwd=tmp_path)
    assert other.returncode == 3 and "the org id from DEVIN_ORG_ID" in other.stderr
