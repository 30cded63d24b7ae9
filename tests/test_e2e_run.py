"""End to end: the CLI as a subprocess against the simulator on loopback, result log read back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from conftest import cli_env, read_results, run_cli, session_results

from worker.output.records import RunFinished, RunStarted, SessionRecord


def test_archives_every_session_once(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "400", "--seed", "3")
    ids = sim.ids()
    out = tmp_path / "results.jsonl"
    proc = run_cli(
        [
            "run",
            str(sim.ids_path),
            "--archive",
            "--results",
            str(out),
            "--rate",
            "0",
            "--concurrency",
            "16",
        ],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = session_results(out)
    assert Counter(r["outcome"] for r in results) == {"archived": len(ids)}
    assert sorted(r["session_id"] for r in results) == sorted(ids)
    assert all(r["archived"] is True and r["status"] == "exit" for r in results)
    stats = sim.stats()
    assert stats["deletes_by_session"] == dict.fromkeys(ids, 1)
    records = read_results(out)
    RunStarted.model_validate(records[0])
    RunFinished.model_validate(records[-1])
    for record in results:
        SessionRecord.model_validate(record)
    assert records[-1]["exit_code"] == 0 and records[-1]["counts"]["archived"] == len(ids)
    assert (out.stat().st_mode & 0o777) == 0o600


def test_rerun_resumes_and_sends_nothing(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "60")
    out = tmp_path / "results.jsonl"
    args = ["run", str(sim.ids_path), "--results", str(out), "--rate", "0"]
    assert run_cli(args, cli_env(sim), cwd=tmp_path).returncode == 0
    before = sim.stats()["requests_total"]
    again = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sim.stats()["requests_total"] == before + 1  # the identity check, GET /v3/self
    finished = read_results(out)[-1]
    assert finished["counts"] == {"skipped": len(sim.ids())}


def test_demo_tells_its_story_and_accounts_for_every_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli(["demo", "--sessions", "40", "--dir", str(out)], cli_env(), cwd=tmp_path)
    # the demo's own verdict: 0 when every id and malformed line is accounted for (the run
    # inside it exits 1 on purpose: its input holds malformed lines, each `invalid`)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exit code:  1: finished" in proc.stdout
    assert "demo: OK, every id and every malformed line is accounted for" in proc.stdout
    outcomes = Counter(r["outcome"] for r in session_results(out / "results.jsonl"))
    assert outcomes["invalid"] == 8 and outcomes["not_found"] == 5
    # with --archive, the 10 sessions already terminated are archived too, unless they were
    # already (then `already_terminated`)
    assert outcomes["archived"] > 40 and "failed" not in outcomes


def test_a_403_naming_a_permission_fails_its_session_and_the_run_goes_on(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "100", "--forbidden-share", "0.1")
    out = tmp_path / "results.jsonl"
    args = ["run", str(sim.ids_path), "--results", str(out), "--rate", "0"]
    first = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-2000:]
    results = session_results(out)
    failed = {r["session_id"] for r in results if r["outcome"] == "failed"}
    assert 3 <= len(failed) <= 20
    assert Counter(r["outcome"] for r in results) == {
        "terminated": 100 - len(failed),
        "failed": len(failed),
    }
    assert all("lacks permission" in r["error"] for r in results if r["outcome"] == "failed")
    again = run_cli(args, cli_env(sim), cwd=tmp_path)  # the rerun tries those alone, again
    assert again.returncode == 1, again.stderr[-2000:]
    by_session = sim.stats()["deletes_by_session"]
    assert {sid for sid, n in by_session.items() if n == 2} == failed
    assert read_results(out)[-1]["counts"] == {"skipped": 100 - len(failed), "failed": len(failed)}


def test_archive_is_a_promise_kept_on_the_rerun(tmp_path: Path) -> None:
    """An archive that failed is sent alone by the next run (no second DELETE); a session
    terminated before the run is archived too."""
    from tests.servers import ORG, TOKEN, serve, simulator_app

    app = simulator_app(sessions=60, archive_fail_share=0.2, archive_fail_times=2, seed=5)
    with serve(app) as api:
        sessions = api.sim.sessions
        live = [s for s, v in sessions.items() if v["status"] not in ("exit", "error")]
        ended = [s for s, v in sessions.items() if v["status"] == "exit" and not v["is_archived"]]
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join([*live, *ended]) + "\n")
        env = cli_env(DEVIN_API_KEY=TOKEN, DEVIN_ORG_ID=ORG, DEVIN_API_URL=api.base_url)
        out = tmp_path / "r.jsonl"
        args = ["run", str(ids), "--archive", "--results", str(out), "--rate", "0"]
        first = run_cli([*args, "--max-attempts", "2"], env, cwd=tmp_path)
        assert first.returncode == 1, first.stderr[-2000:]
        owed = {r["session_id"] for r in session_results(out) if r["outcome"] == "failed"}
        assert owed and all(
            r["error"].startswith("terminated, not archived")
            for r in session_results(out)
            if r["outcome"] == "failed"
        )
        deletes = dict(api.sim.stats.snapshot()["deletes_by_session"])
        again = run_cli(args, env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        assert api.sim.stats.snapshot()["deletes_by_session"] == deletes  # no second DELETE
        assert all(sessions[s]["is_archived"] for s in [*live, *ended])
    latest = {r["session_id"]: r["outcome"] for r in session_results(out)}
    assert set(latest.values()) == {"archived"} and len(latest) == len(live) + len(ended)
    assert ended and read_results(out)[-1]["counts"] == {
        "skipped": len(live) + len(ended) - len(owed),
        "archived": len(owed),
    }
