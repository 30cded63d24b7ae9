"""``report``: counts that agree with the runs, the latest record per id across logs, and
exports (csv, json, ids) that other tools, and ``run -``, read back."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
import pytest
from conftest import quick_settings, read_results, run_cli

from worker import cli
from worker.output.report import summarize
from worker.run.job import run_job
from worker.settings import Settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.population import make_population, terminable_ids
from worker.simulator.server import RunningSimulator, simulator_in_thread

BASE = SimulatorConfig(
    sessions=40, seed=9, token="cog_report", org_id="org-report", exit_ratio=0.0, error_ratio=0.0
)
DOOMED = terminable_ids(make_population(BASE, time.time()))[:3]
CONFIG = replace(BASE, faults_by_id={s: ("500", "500") for s in DOOMED})


@dataclass
class Nights:
    sim: RunningSimulator
    logs: list[Path]
    ids: list[str]


def _settings(sim: RunningSimulator, results: Path, **extra: object) -> Settings:
    extra = {"max_attempts": 2, **extra}
    settings: Settings = quick_settings(CONFIG.org_id, CONFIG.token, sim.base_url, results, **extra)
    return settings


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    """Two logs: the first has failures, invalid lines, a duplicate, unknown ids and
    deferred ids; the second a run of its own."""
    tmp = tmp_path_factory.mktemp("report")
    with simulator_in_thread(CONFIG) as sim:
        ids = terminable_ids(sim.sessions)
        first = tmp / "first.txt"
        first.write_text("\n".join([*ids[:20], ids[5], "devin-nosuch1", "bad id!", "x,y"]) + "\n")
        run_job(_settings(sim, tmp / "a.jsonl", limit=18), [str(first)])
        second = tmp / "second.txt"
        second.write_text("\n".join(ids[20:30]) + "\n")
        run_job(_settings(sim, tmp / "b.jsonl", archive=True), [str(second)])
        yield Nights(sim, [tmp / "a.jsonl", tmp / "b.jsonl"], ids)


def _report(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["report", *args])
    return code, capsys.readouterr().out


def test_counts_over_two_logs_equal_their_run_finished_counts(
    nights: Nights, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _report(*map(str, nights.logs), "--format", "json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    finished: Counter[str] = Counter()
    for log in nights.logs:
        for record in read_results(log):
            if record["event"] == "run.finished":
                finished.update(record["counts"])
    assert doc["counts"] == dict(finished)
    assert {"failed", "invalid", "deferred", "duplicate", "archived"} <= finished.keys()
    assert doc["runs"] == 2
    listed = {(s["session_id"], s["outcome"]) for s in doc["sessions"]}
    assert {(sid, "failed") for sid in DOOMED} <= listed
    assert sum(1 for s in doc["sessions"] if s["outcome"] == "invalid") == 2


def test_failed_ids_piped_into_run_retry_exactly_what_failed(
    nights: Nights, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _report(
        *map(str, nights.logs), "--outcome", "failed", "--format", "ids", capsys=capsys
    )
    assert code == 0 and sorted(out.split()) == sorted(DOOMED)
    retry = tmp_path / "retry.jsonl"
    report = run_job(_settings(nights.sim, retry), ["-"], stdin=io.BytesIO(out.encode()))
    assert report.exit_code == 0
    sent = {r["session_id"] for r in read_results(retry) if r["event"] == "session.result"}
    assert sent == set(DOOMED)
    # across all three logs the latest record of each doomed id is no longer a failure
    latest = summarize([*nights.logs, retry]).latest
    assert {latest[sid].outcome for sid in DOOMED} == {"terminated"}


def test_archived_as_rfc4180_csv(nights: Nights, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _report(
        str(nights.logs[1]), "--outcome", "archived", "--format", "csv", capsys=capsys
    )
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and out.endswith("\r\n")
    assert rows[0] == ["session_id", "outcome", "time", "run_id", "reason"]
    assert {row[0] for row in rows[1:]} == set(nights.ids[20:30])
    assert {row[1] for row in rows[1:]} == {"archived"}
    run_id = read_results(nights.logs[1])[0]["run_id"]
    assert {row[3] for row in rows[1:]} == {run_id} and all(row[2] for row in rows[1:])


def test_table_names_failures_and_invalid_lines(
    nights: Nights, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _report(*map(str, nights.logs), capsys=capsys)
    assert code == 0
    for sid in DOOMED:
        assert any(line.startswith(f"failed {sid}: ") for line in out.splitlines()), out
    assert sum(line.startswith("invalid ") and "[run " in line for line in out.splitlines()) == 2


def test_latest_record_wins_and_hostile_text_stays_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "r.jsonl"
    records = [
        {
            "event": "session.result",
            "run_id": "r2",
            "ts": "2026-01-02T00:00:00.000Z",
            "session_id": "devin-a",
            "outcome": "terminated",
            "attempts": 1,
            "error": None,
        },
        {
            "event": "session.result",
            "run_id": "r1",
            "ts": "2026-01-01T00:00:00.000Z",
            "session_id": "devin-a",
            "outcome": "failed",
            "attempts": 6,
            "error": "x",
        },
        {
            "event": "session.result",
            "run_id": "r1",
            "ts": "2026-01-01T00:00:00.000Z",
            "session_id": "devin-b",
            "outcome": "failed",
            "attempts": 6,
            "error": "HTTP 500: evil\ninjected line\x1b[31m",
        },
        {
            "event": "session.result",
            "run_id": "r1",
            "ts": "2026-01-01T00:00:00.000Z",
            "session_id": "devin-../x",
            "outcome": "failed",
            "attempts": 1,
            "error": None,
        },
    ]
    log.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"{torn")
    code, out = _report(str(log), capsys=capsys)
    lines = out.splitlines()
    assert code == 0
    assert not any("devin-a" in line for line in lines[2:] if line.startswith("failed"))
    assert sum(line.startswith("failed devin-b") for line in lines) == 1
    assert not any(line.startswith("injected") for line in lines) and "\x1b" not in out
    assert "unreadable lines: 1" in out
    _, ids = _report(str(log), "--outcome", "failed", "--format", "ids", capsys=capsys)
    assert ids.split() == ["devin-b"]  # never the id that is not valid


def test_unknown_outcome_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "r.jsonl"
    log.write_text("")
    assert cli.main(["report", str(log), "--outcome", "faild"]) == 2
    assert "did you mean failed" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing.jsonl")]) == 2


def test_report_reads_one_moment_of_a_live_log(tmp_path: Path) -> None:
    """A run appending while the log is read: what it adds meanwhile is not read."""
    from worker.output.history import snapshot_lines

    log = tmp_path / "r.jsonl"
    before = [b'{"n": %d}\n' % n for n in range(20_000)]  # more than a read buffer holds
    log.write_bytes(b"".join(before))
    with open(log, "rb") as fh:
        lines = snapshot_lines(fh)
        first = next(lines)
        with open(log, "ab") as run:  # the live run writes on, a line half-written at the end
            run.write(b'{"c": 3}\n{"d": ')
        assert [first, *lines] == before


def test_report_takes_quiet_and_verbose(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    log.write_text("")
    for flag in ("-q", "-v"):
        proc = run_cli(["report", str(log), flag], {}, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
