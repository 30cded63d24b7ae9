"""The result log: records, permissions, torn lines and the resume scan."""

from __future__ import annotations

import json
from pathlib import Path

from worker.outcomes import SessionResult
from worker.results import ResultLog, SessionRecord, scan_results


def test_records_validate_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    log = ResultLog(path, "run1")
    log.result(
        SessionResult(
            "devin-a",
            "archived",
            archived=True,
            status="exit",
            http_status=200,
            attempts=1,
            elapsed_ms=3.5,
            source="ids.csv:2",
        )
    )
    log.close()
    record = json.loads(path.read_text())
    SessionRecord.model_validate(record)
    assert record["outcome"] == "archived" and record["source"] == "ids.csv:2"
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # loosened by hand: the next run tightens it again
    ResultLog(path, "run2").close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_latest_outcome_wins_and_torn_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        {"event": "run.started", "run_id": "x"},
        {"event": "session.result", "session_id": "devin-a", "outcome": "failed"},
        {"event": "session.result", "session_id": "devin-a", "outcome": "terminated"},
        {"event": "session.result", "session_id": "devin-b", "outcome": "terminated"},
        {"event": "session.result", "session_id": "devin-c", "outcome": "cancelled"},
        {"event": "session.result", "session_id": None, "outcome": "invalid"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + '\nnot json\n{"event": "session.res'
    path.write_text(text)
    prior = scan_results(path)
    assert "devin-a" in prior.settled and "devin-b" in prior.settled
    assert "devin-c" not in prior.settled and len(prior.settled) == 2
    assert prior.bad_lines == [7, 8] and prior.torn_tail
    log = ResultLog(path, "run2")  # appending after a torn line starts a fresh line
    log.result(SessionResult("devin-c", "terminated"))
    log.close()
    assert json.loads(path.read_text().splitlines()[-1])["session_id"] == "devin-c"
    assert "devin-c" in scan_results(path).settled


def test_no_resume_moves_the_old_log_aside(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"event": "run.started"}\n')
    log = ResultLog(path, "run3", fresh=True)
    log.close()
    assert log.moved_to is not None and log.moved_to.read_text() == '{"event": "run.started"}\n'
    assert path.read_text() == "" and not scan_results(tmp_path / "missing.jsonl").settled
