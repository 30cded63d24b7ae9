"""The result log: records, permissions, torn lines and the resume scan."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.outcomes import SessionResult
from worker.output import results
from worker.output.records import SessionRecord
from worker.output.results import ResultLog, read_records, scan_results


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


def test_every_field_of_a_record_and_input_only_when_given(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    log = ResultLog(path, "run4")
    log.result(SessionResult(None, "invalid", error="bad id", source="a.txt:3", input="x\ty"))
    log.result(SessionResult("devin-b", "terminated", attempts=2, elapsed_ms=1.5))
    log.finished(counts={"terminated": 1}, elapsed_s=1.23456, exit_code=1, interrupted=False)
    log.close()
    bad, good, done = (json.loads(line) for line in path.read_text().splitlines())
    assert bad["input"] == "x\ty" and bad["session_id"] is None and bad["source"] == "a.txt:3"
    assert "input" not in good
    assert {k: good[k] for k in ("run_id", "outcome", "attempts", "elapsed_ms")} == {
        "run_id": "run4",
        "outcome": "terminated",
        "attempts": 2,
        "elapsed_ms": 1.5,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", good["ts"])
    del done["ts"]
    assert done == {
        "event": "run.finished",
        "run_id": "run4",
        "counts": {"terminated": 1},
        "elapsed_s": 1.235,
        "exit_code": 1,
        "interrupted": False,
    }


def test_only_a_log_with_content_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert ResultLog(path, "a", fresh=True).moved_to is None  # nothing there: nothing moved
    path.write_text("")
    empty = ResultLog(path, "b", fresh=True)
    assert empty.moved_to is None and path.exists()
    path.write_text("x")
    log = ResultLog(path, "c", fresh=True)
    assert log.moved_to is not None and log.moved_to.read_text() == "x"
    assert re.fullmatch(r"r\.jsonl\.\d{8}T\d{6}\.bak", log.moved_to.name), log.moved_to.name
    for opened in (empty, log):
        opened.close()


def test_a_later_non_final_outcome_unsettles_and_counts_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        {"event": "session.result", "session_id": "devin-a", "outcome": "terminated"},
        {"event": "session.result", "session_id": "devin-a", "outcome": "failed"},
        {"event": "session.result", "session_id": "devin-b", "outcome": "terminated"},
        {"event": "run.finished"},
    ]
    path.write_text("garbled\n" + "\n".join(json.dumps(line) for line in lines) + "\n")
    prior = scan_results(path)
    assert "devin-a" not in prior.settled and "devin-b" in prior.settled
    assert prior.records == 3 and prior.bad_lines == [1]
    assert prior.torn_tail is False
    path.write_text(json.dumps(lines[0]) + "\ngarbled but whole\n")
    whole = scan_results(path)
    assert whole.bad_lines == [2] and whole.torn_tail is False  # a full line, not a torn one
    path.write_text('{"event": "session.res\n' + json.dumps(lines[2]) + "\n")
    assert scan_results(path).torn_tail is False  # a readable line after the bad one


def test_read_records_skips_what_is_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"event": "a"}\nnot json\n\xff\xfe\n[1, 2]\n\n{"event": "b"}\n{"event": "c')
    assert [r["event"] for r in read_records(path)] == ["a", "b"]


def test_appending_keeps_the_log_and_mends_only_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    clean = '{"event": "run.started"}\n'
    path.write_text(clean)
    log = ResultLog(path, "run5")  # resume: appended to, not moved aside
    log.result(SessionResult("devin-a", "terminated"))
    log.close()
    log.close()  # closing twice is harmless
    text = path.read_text()
    assert log.moved_to is None and text.startswith(clean) and "\n\n" not in text
    assert len(text.splitlines()) == 2
    path.write_text('{}\n{"ev')  # torn, with a newline early in the file
    ResultLog(path, "run6").close()
    assert path.read_text() == '{}\n{"ev'  # nothing recorded: nothing written
    log = ResultLog(path, "run7")
    log.result(SessionResult("devin-b", "terminated"))
    log.close()
    lines = path.read_text().split("\n")
    assert lines[:2] == ["{}", '{"ev'] and '"devin-b"' in lines[2] and lines[3] == ""


def test_timestamps_are_utc_whatever_the_local_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30: a local time would be far off
    time.tzset()
    monkeypatch.setattr(results, "_second", [-1, ""])
    try:
        path = tmp_path / "r.jsonl"
        log = ResultLog(path, "run7")
        log.started()
        log.close()
    finally:
        monkeypatch.undo()
        time.tzset()
    stamp = json.loads(path.read_text())["ts"]
    written = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - written).total_seconds()) < 60


def test_timestamp_is_the_second_and_its_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "_second", [-1, ""])
    monkeypatch.setattr(results.time, "time", lambda: 1_800_000_000.9995)
    assert results._now() == "2027-01-15T08:00:00.999Z"  # truncated, never rounded up
    for now, stamp in [
        (1_800_000_000.6004, "2027-01-15T08:00:00.600Z"),
        (1_800_000_001.0004, "2027-01-15T08:00:01.000Z"),  # the next second, formatted anew
        (1_800_000_001.25, "2027-01-15T08:00:01.250Z"),
        (1_800_000_000.0 - 2**-22, "2027-01-15T07:59:59.999Z"),  # the last fraction there is
    ]:
        monkeypatch.setattr(results.time, "time", lambda now=now: now)
        assert results._now() == stamp


def test_a_log_of_several_blocks_reads_as_its_lines(tmp_path: Path) -> None:
    """Lines cut by the 1 MiB blocks the scan reads, one line longer than a block, settled
    and unsettled ids between blocks, a torn last line: as line by line."""
    pad = "x" * 700  # a record of about 800 bytes: a block ends inside a line
    rows = [
        {"event": "session.result", "session_id": f"devin-{n}", "outcome": "terminated", "e": pad}
        for n in range(3000)
    ]
    rows[2000] = {"event": "session.result", "session_id": "devin-5", "outcome": "failed"}
    lines = [json.dumps(row) for row in rows]
    lines[1500] = "garbled " * 200_000  # 1.6 MiB: no line end in a whole block
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + '\n{"event": "session.res')
    prior = scan_results(path)
    assert prior.bad_lines == [1501, 3001] and prior.torn_tail
    assert prior.records == 2999 and len(prior.settled) == 2997
    assert "devin-5" not in prior.settled and "devin-1500" not in prior.settled
    assert all(f"devin-{n}" in prior.settled for n in (0, 1499, 1501, 2001, 2999))
