"""`devin-terminate list`: filters, paging, retries and the pipe into `run -`, against the
simulator as a subprocess."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli

from worker.commands.listing import COLUMNS, add_list_arguments, build_query
from worker.commands.options import parse_duration, parse_time


def _all_sessions(sim: Any) -> list[dict[str, Any]]:
    """Every session of the simulator, paged with plain urllib (no code of ours)."""
    sessions: list[dict[str, Any]] = []
    after = ""
    while True:
        url = f"{sim.base_url}/v3/organizations/{sim.org_id}/sessions?first=200"
        request = urllib.request.Request(url + (f"&after={after}" if after else ""))
        request.add_header("Authorization", f"Bearer {sim.token}")
        with urllib.request.urlopen(request, timeout=10) as resp:
            page = json.load(resp)
        sessions += page["items"]
        if not page["has_next_page"]:
            return sessions
        after = page["end_cursor"]


def _ids(stdout: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(stdout)))
    assert tuple(rows[0]) == COLUMNS
    return [row[0] for row in rows[1:]]


def _running_before(sessions: list[dict[str, Any]], cutoff: float) -> set[str]:
    return {
        s["session_id"] for s in sessions if s["status"] == "running" and s["created_at"] < cutoff
    }


def test_list_then_run_terminates_exactly_the_matches(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "700", "--seed", "7")
    population = _all_sessions(sim)
    gets_before = sim.stats()["requests_by_method"].get("GET", 0)
    t0 = time.time()
    listed = run_cli(
        ["list", "--status", "running", "--older-than", "1h"], cli_env(sim), cwd=tmp_path
    )
    t1 = time.time()
    assert listed.returncode == 0, listed.stderr[-2000:]
    ids = _ids(listed.stdout)
    assert len(ids) == len(set(ids))
    # The CLI's clock read falls between t0 and t1: only a session created in that second
    # of the cutoff could go either way.
    assert _running_before(population, int(t0 - 3600)) <= set(ids)
    assert set(ids) <= _running_before(population, int(t1 - 3600) + 1)
    assert len(ids) > 100
    assert sim.stats()["requests_by_method"]["GET"] - gets_before >= 4  # 700 sessions, 200 a page
    out = tmp_path / "results.jsonl"
    run = run_cli(
        ["run", "-", "--yes", "--rate", "0", "--results", str(out)],
        cli_env(sim),
        cwd=tmp_path,
        stdin=listed.stdout,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sim.stats()["deletes_by_session"] == dict.fromkeys(ids, 1)


def test_list_filters_server_side_and_columns(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "300", "--seed", "2")
    population = _all_sessions(sim)
    args = [
        "list",
        "--tag",
        "ci",
        "--tag",
        "prod",
        "--not-archived",
        "--origin",
        "api",
        "--columns",
        "session_id,tags,is_archived,origin,created_at",
    ]
    proc = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    expected = {
        s["session_id"]
        for s in population
        if {"ci", "prod"} & set(s["tags"]) and not s["is_archived"] and s["origin"] == "api"
    }
    assert {row["session_id"] for row in rows} == expected and expected
    assert all(row["is_archived"] == "false" and row["origin"] == "api" for row in rows)
    assert all(row["created_at"].endswith("Z") for row in rows)


def test_list_survives_faults_and_honours_limit(simulator: Any, tmp_path: Path) -> None:
    sim = simulator(
        "--sessions", "450", "--fault-rate", "0.3", "--fault-kinds", "500,503,malformed"
    )
    proc = run_cli(["list"], cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = set(_ids(proc.stdout))
    assert set(sim.ids()) < listed  # 450 live sessions, already-terminated ones on top
    assert len(sim.ids()) == 450
    limited = run_cli(["list", "--limit", "5"], cli_env(sim), cwd=tmp_path)
    assert limited.returncode == 0 and len(_ids(limited.stdout)) == 5


def test_list_refused_token_exits_3_and_prints_nothing(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "10")
    proc = run_cli(["list"], cli_env(sim, DEVIN_API_KEY="cog_wrong"), cwd=tmp_path)
    assert proc.returncode == 3
    assert proc.stdout == ""
    # the identity check (GET /v3/self) refuses it before any page is asked for
    assert "refused the token" in proc.stderr and "DEVIN_API_KEY" in proc.stderr
    assert "cog_wrong" not in proc.stderr


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_list_arguments(parser)
    return parser.parse_args(argv)


def test_build_query_uses_the_injected_clock() -> None:
    now = 1_750_000_000.0
    query = build_query(_args("--older-than", "7d", "--tag", "a", "--tag", "b", "--archived"), now)
    assert query == {
        "first": 200,
        "tags": ["a", "b"],
        "is_archived": True,
        "created_before": int(now) - 7 * 86400,
    }
    tighter = build_query(_args("--older-than", "1h", "--created-before", "1000"), now)
    assert tighter["created_before"] == 1000
    assert build_query(_args("--not-archived"), now)["is_archived"] is False


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("1h", 3600), ("7d", 604800), ("2w", 1209600), ("30s", 30)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7", "1y", "-1d", "d", ""])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_parse_time_accepts_unix_seconds_and_iso_dates() -> None:
    assert parse_time("1714560000") == 1714560000
    assert parse_time("2024-05-01") == 1714521600
    assert parse_time("2024-05-01T12:00:00Z") == 1714564800
    assert parse_time("2024-05-01T14:00:00+02:00") == 1714564800
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday")


@pytest.mark.parametrize("knob", ["--cycling-cursors", "--endless-empty-pages"])
def test_list_pages_that_never_end_stop_with_exit_3(
    simulator: Any, tmp_path: Path, knob: str
) -> None:
    sim = simulator("--sessions", "500", knob)
    proc = run_cli(["list", "--format", "ids"], cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1 and "does not end" in proc.stderr
    # the cycle shows only when its cursor comes back: one page may have been printed twice
    ids = proc.stdout.split()
    assert len(ids) >= 200 and len(ids) - len(set(ids)) <= 200
    assert sim.stats()["requests_by_method"]["GET"] < 50
