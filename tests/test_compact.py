"""A year of nights in a few seconds: with ``compact`` after each, the result log's size and
the records the resume scan reads stay flat; without it they grow night by night."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from worker import cli
from worker.output.compact import compact
from worker.output.results import ResultLog, scan_results

DAY = 86400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PER_NIGHT = 10


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at))


def _night(log: ResultLog, night: int, failed_before: list[str]) -> list[str]:
    """A night: yesterday's failures retried (they succeed), 10 new stale sessions of which
    two fail, one invalid line; the run records around them."""
    at = START + night * DAY
    ts = _iso(at)
    log.write({"event": "run.started", "run_id": f"n{night}", "ts": ts, "inputs": ["stale.csv"]})
    fresh = [f"devin-n{night}s{i}" for i in range(PER_NIGHT)]
    failed = fresh[:2]
    for sid in [*failed_before, *fresh]:
        outcome = "failed" if sid in failed else "terminated"
        log.write(
            {
                "event": "session.result",
                "run_id": f"n{night}",
                "ts": ts,
                "session_id": sid,
                "outcome": outcome,
                "attempts": 1,
                "error": None,
                "source": "stale.csv:2",
            }
        )
    log.write(
        {
            "event": "session.result",
            "run_id": f"n{night}",
            "ts": ts,
            "session_id": None,
            "outcome": "invalid",
            "source": "stale.csv:1",
            "input": "bad",
        }
    )
    log.write({"event": "run.finished", "run_id": f"n{night}", "ts": ts, "counts": {}})
    return failed


@pytest.mark.parametrize("compacted", [True, False])
def test_a_year_of_nights_stays_flat(
    tmp_path: Path, compacted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # durability is not what is measured here, and 730 fsyncs cost seconds on a busy disk
    monkeypatch.setattr("os.fsync", lambda fd: None)
    path = tmp_path / "results.jsonl"
    sizes, scanned = [], []
    failed: list[str] = []
    for night in range(365):
        log = ResultLog(path, f"n{night}")
        failed = _night(log, night, failed)
        log.close()
        if compacted:
            compact(path, 30 * DAY, now=START + night * DAY + 3600)
        if night in (60, 364):
            sizes.append(path.stat().st_size)
            scanned.append(scan_results(path).records)
    if compacted:
        assert sizes[1] <= sizes[0] * 1.05 and scanned[1] <= scanned[0] * 1.05
        assert scanned[1] <= 31 * (PER_NIGHT + 3)
        prior = scan_results(path)  # yesterday's failures are not settled: they are retried
        assert failed[0] not in prior.settled and "devin-n364s9" in prior.settled
    else:
        assert sizes[1] > sizes[0] * 5  # the growth compact prevents


def test_compact_keeps_the_latest_record_per_id_and_the_run_records(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [
        {"event": "run.started", "run_id": "a", "ts": _iso(START)},
        {
            "event": "session.result",
            "run_id": "a",
            "ts": _iso(START),
            "session_id": "devin-x",
            "outcome": "failed",
        },
        {"event": "run.finished", "run_id": "a", "ts": _iso(START)},
        {"event": "run.started", "run_id": "b", "ts": _iso(START + 60)},
        {
            "event": "session.result",
            "run_id": "b",
            "ts": _iso(START + 60),
            "session_id": "devin-x",
            "outcome": "terminated",
        },
        {"event": "run.finished", "run_id": "b", "ts": _iso(START + 60)},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines) + b'{"torn')
    done = compact(path, DAY, now=START + 120)
    kept = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [(r["event"], r["run_id"]) for r in kept] == [
        ("run.started", "a"),
        ("run.finished", "a"),
        ("run.started", "b"),
        ("session.result", "b"),
        ("run.finished", "b"),
    ]
    assert (done.records_before, done.records_after) == (6, 5)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "devin-x" in scan_results(path).settled


def test_compact_command_takes_the_run_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.output.lock import RunLock

    path = tmp_path / "r.jsonl"
    path.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(path)
    with RunLock(path):  # the run's lock, named by the log: held through any name of it
        assert cli.main(["compact", str(path)]) == 4
        assert cli.main(["compact", str(link)]) == 4
    with RunLock(path, tmp_path / "custom.lock"):  # a run with its own --lock: the log's inode
        assert cli.main(["compact", str(link)]) == 4
    assert cli.main(["compact", "-q", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == path.resolve()
    assert not list(tmp_path.glob("*.lock.lock"))
    assert cli.main(["compact", "-q", str(path), "--keep", "30d"]) == 0
    assert cli.main(["compact", "-q", str(tmp_path / "none.jsonl")]) == 0
    assert capsys.readouterr().out == ""


def test_compact_keeps_the_intents_no_final_result_followed(tmp_path: Path) -> None:
    """An interrupted run leaves intents without answers: resume needs them after compact."""
    path = tmp_path / "r.jsonl"
    ts = _iso(START)

    def sending(sid: str) -> dict[str, object]:
        return {"event": "session.sending", "run_id": "a", "ts": ts, "session_id": sid}

    def result(sid: str, outcome: str, status: int | None) -> dict[str, object]:
        return {
            "event": "session.result",
            "run_id": "a",
            "ts": ts,
            "session_id": sid,
            "outcome": outcome,
            "http_status": status,
        }

    lines = [
        sending("devin-lost"),  # killed before the answer came
        sending("devin-done"),
        result("devin-done", "terminated", 200),
        sending("devin-5xx"),
        result("devin-5xx", "failed", 503),  # the DELETE may have worked unseen
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    before = scan_results(path)
    compact(path, DAY, now=START + 60)
    kept = [
        (r["event"], r["session_id"]) for r in map(orjson.loads, path.read_bytes().splitlines())
    ]
    assert kept == [
        ("session.sending", "devin-lost"),
        ("session.result", "devin-done"),
        ("session.sending", "devin-5xx"),
        ("session.result", "devin-5xx"),
    ]
    after = scan_results(path)
    assert after.sent == before.sent == {"devin-lost", "devin-5xx"}
    assert len(after.settled) == 1 and "devin-done" in after.settled
