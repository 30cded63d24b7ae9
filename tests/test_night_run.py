"""A nightly run, in-process against the simulator: --limit drains a backlog, stderr stays
a page a person reads, report agrees with the runs and feeds their failures back."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import quick_settings, read_results

from worker import cli
from worker.run.job import run_job
from worker.simulator.config import SimulatorConfig
from worker.simulator.population import make_population, terminable_ids
from worker.simulator.server import RunningSimulator, simulator_in_thread

CONFIG = SimulatorConfig(
    sessions=60,
    exit_ratio=0.0,
    error_ratio=0.0,
    seed=5,
    token="cog_night_token",
    org_id="org-night",
)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with simulator_in_thread(CONFIG) as running:
        yield running


def _settings(sim: RunningSimulator, results: Path, **extra: object) -> object:
    return quick_settings(CONFIG.org_id, CONFIG.token, sim.base_url, results, **extra)


def test_a_backlog_of_three_limits_drains_in_three_runs(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    ids = terminable_ids(sim.sessions)[:30]
    backlog = tmp_path / "backlog.txt"
    backlog.write_text("\n".join(ids) + "\n")
    results = tmp_path / "r.jsonl"
    seen: set[str] = set()
    for night in range(3):
        report = run_job(_settings(sim, results, limit=10), [str(backlog)])  # type: ignore[arg-type]
        assert report.exit_code == 0
        done = report.counts.get("terminated", 0)
        assert done == 10, report.counts
        assert report.counts.get("deferred", 0) == 20 - 10 * night
        assert report.counts.get("skipped", 0) == 10 * night
        finished = read_results(results)[-1]
        assert finished["event"] == "run.finished" and finished["counts"] == report.counts
    seen = {r["session_id"] for r in read_results(results) if r["event"] == "session.result"}
    assert seen == set(ids)


def test_limit_counts_a_deferred_duplicate_once(sim: RunningSimulator, tmp_path: Path) -> None:
    ids = terminable_ids(sim.sessions)[-4:]
    src = tmp_path / "ids.txt"
    src.write_text("\n".join([*ids, ids[3]]) + "\n")
    report = run_job(_settings(sim, tmp_path / "r.jsonl", limit=2), [str(src)])  # type: ignore[arg-type]
    assert report.exit_code == 0
    assert report.counts == {"terminated": 2, "deferred": 2, "duplicate": 1}


def test_limit_must_be_positive(sim: RunningSimulator, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="limit"):
        _settings(sim, tmp_path / "r.jsonl", limit=0)


def _stderr_of_run(
    capsys: pytest.CaptureFixture[str], args: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[str]]:
    monkeypatch.setenv("DEVIN_API_KEY", "cog_faulty_token")
    for name in ("DEVIN_TERMINATE_LOG_FORMAT", "DEVIN_TERMINATE_BACKOFF_BASE"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(args)
    return code, capsys.readouterr().err.splitlines()


def test_a_faulty_run_writes_a_page_not_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 ids, 2% transient faults of every kind plus two ids that always fail: the
    start, one line per failed session, the summary; no retry lines, no JSON."""
    base = SimulatorConfig(
        sessions=1000,
        seed=11,
        token="cog_faulty_token",
        org_id="org-faulty",
        fault_rate=0.02,
        timeout_hang_s=0.5,
        exit_ratio=0.0,
        error_ratio=0.0,
    )
    doomed = terminable_ids(make_population(base, time.time()))[:2]
    config = replace(base, faults_by_id={sid: ("502",) * 10 for sid in doomed})
    with simulator_in_thread(config) as faulty:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(terminable_ids(faulty.sessions)) + "\n")
        code, lines = _stderr_of_run(
            capsys,
            [
                "run",
                str(ids),
                "--org-id",
                config.org_id,
                "--base-url",
                faulty.base_url,
                "--rate",
                "0",
                "--concurrency",
                "32",
                "--timeout",
                "0.3",
                "--backoff-base",
                "0",
                "--max-attempts",
                "4",
                "--results",
                str(tmp_path / "r.jsonl"),
                "-y",
            ],
            monkeypatch,
        )
    failed = [line for line in lines if " session.failed " in line]
    assert code == 1
    assert len(lines) <= 20 + len(failed), "\n".join(lines)
    assert {sid for sid in doomed if any(sid in line for line in failed)} == set(doomed)
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert not any("session.retry" in line for line in lines)
    assert "run.started" in lines[0]
    assert re.match(r"^done in [\d.]+ s: .*exit 1 ", lines[-1]), lines[-1]
    for sid in doomed:
        line = next(line for line in failed if sid in line)
        assert "attempts=4" in line and "HTTP 502" in line, line


def test_quiet_says_nothing_unless_a_person_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = SimulatorConfig(
        sessions=12,
        seed=4,
        token="cog_faulty_token",
        org_id="org-q",
        exit_ratio=0.0,
        error_ratio=0.0,
    )
    doomed = terminable_ids(make_population(base, time.time()))[0]
    config = replace(base, faults_by_id={doomed: ("503",) * 3})
    with simulator_in_thread(config) as sim:
        ids = tmp_path / "ids.txt"
        common = [
            "--org-id",
            config.org_id,
            "--base-url",
            sim.base_url,
            "--rate",
            "0",
            "--backoff-base",
            "0",
            "--retry-after-max",
            "0",
            "--max-attempts",
            "3",
            "-q",
            "-y",
            "--results",
            str(tmp_path / "r.jsonl"),
        ]
        ids.write_text("\n".join(terminable_ids(sim.sessions)) + "\n")
        code, lines = _stderr_of_run(capsys, ["run", str(ids), *common], monkeypatch)
        assert code == 1 and len(lines) == 2, lines
        assert doomed in lines[0] and "session.failed" in lines[0] and "HTTP 503" in lines[0]
        assert lines[1].startswith("done in ")
        code, lines = _stderr_of_run(capsys, ["run", str(ids), *common], monkeypatch)
        assert (code, lines) == (0, [])  # the retry worked: a clean night is silent
