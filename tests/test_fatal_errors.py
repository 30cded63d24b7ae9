"""One line and the documented exit code, never a traceback: bad paths, bad values, a full
disk (at once on /dev/full, and mid-run through an injected writer)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from tests.conftest import read_results
from tests.servers import ORG, TOKEN, serve, settings, simulator_app
from tests.virtualtime import virtual
from worker.cli import main
from worker.errors import ResultLogError
from worker.input.idset import IdSet
from worker.input.sources import InputItem
from worker.output.results import ResultLog
from worker.run.pipeline import Pipeline
from worker.run.watch import WATCH_S, watching
from worker.simulator import SimulatorConfig, running_simulator, terminable_ids


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DEVIN_API_KEY", TOKEN)
    monkeypatch.setenv("DEVIN_ORG_ID", ORG)
    monkeypatch.setenv("DEVIN_TERMINATE_LOG_FORMAT", "json")
    monkeypatch.setenv("DEVIN_TERMINATE_PROGRESS", "off")
    ids = tmp_path / "ids.txt"
    ids.write_text("devin-a\ndevin-b\n")
    return ids


def _one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and all(n in err for n in needles), err
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--rate", "inf", "finite"),
        ("--rate", "nan", "finite"),
        ("--timeout", "inf", "finite"),
        ("--progress-interval", "inf", "finite"),
        ("--rate", "1e-9", "at least 0.01"),
        ("--timeout", "0", "timeout"),
    ],
)
def test_absurd_values_exit_2_with_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, needle: str
) -> None:
    out = env.parent / "r.jsonl"
    assert main(["run", str(env), "--results", str(out), flag, value]) == 2
    _one_line(capsys, flag.lstrip("-").replace("-", "_"), needle)
    assert not out.exists()


def test_results_paths_that_cannot_be_a_log_exit_2_with_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    bad = [a_file / "r.jsonl", tmp_path, tmp_path / "missing" / "r.jsonl"]
    if Path("/sys/kernel").is_dir():
        bad.append(Path("/sys/kernel/r.jsonl"))  # unwritable even for root
    for path in bad:
        assert main(["run", str(env), "--results", str(path)]) == 2, path
        _one_line(capsys, str(path))


def test_results_on_a_full_disk_exit_3_with_one_line_and_send_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve(simulator_app()) as api:
        ids = tmp_path / "real.txt"
        ids.write_text("\n".join(terminable_ids(api.sim.sessions)) + "\n")
        lock = str(tmp_path / "x.lock")
        args = ["run", str(ids), "--results", "/dev/full", "--lock", lock, "--rate", "0"]
        code = main([*args, "--base-url", api.base_url])
        assert api.sim.stats.snapshot()["deletes_total"] == 0
    assert code == 3
    _one_line(capsys, "No space left on device", "/dev/full")


class TinyDisk:
    """``os.write`` on a disk with ``room`` bytes left: short writes, then ENOSPC."""

    def __init__(self, room: int, chunk: int = 1 << 20) -> None:
        self.room, self.chunk = room, chunk

    def __call__(self, fd: int, data: bytes) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        size = min(len(data), self.room, self.chunk)
        self.room -= size
        return os.write(fd, data[:size])


def test_short_writes_are_completed(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "r.jsonl", "run", writer=TinyDisk(1 << 20, chunk=7))
    for n in range(20):
        log.sending(f"devin-{n}")
    log.close()
    assert [r["session_id"] for r in read_results(tmp_path / "r.jsonl")] == [
        f"devin-{n}" for n in range(20)
    ]


async def _items(ids: list[str]) -> object:
    for session_id in ids:
        yield InputItem(session_id=session_id, source="t", raw=session_id)


async def test_a_disk_filling_mid_run_stops_sending_at_once(tmp_path: Path) -> None:
    config = SimulatorConfig(sessions=300, token=TOKEN, org_id=ORG, latency_ms=2)
    async with running_simulator(config) as sim:
        ids = terminable_ids(sim.sessions)
        log = ResultLog(tmp_path / "r.jsonl", "run", writer=TinyDisk(6_000))
        s = settings(sim.base_url, tmp_path / "r.jsonl", concurrency=4)
        pipeline = Pipeline(s, log.result, before_send=log.sending, sent=IdSet())
        report = await pipeline.run(_items(ids))  # type: ignore[arg-type]
        with pytest.raises(ResultLogError):
            log.finished(counts={}, elapsed_s=0, exit_code=3, interrupted=False)
        log.close()
        deleted = set(sim.stats.deletes_by_session)
    assert report.exit_code == 3 and "No space left on device" in (report.reason or "")
    records = read_results(tmp_path / "r.jsonl", strict=False)
    recorded = {r["session_id"] for r in records if r["event"] == "session.result"}
    intents = {r["session_id"] for r in records if r["event"] == "session.sending"}
    assert recorded and len(deleted) < len(ids)  # it stopped early
    assert deleted <= intents  # no DELETE without its intent written whole first
    assert len(deleted - recorded) <= s.concurrency  # at most the answers in flight are lost


def _gone(log: Path, how: str) -> None:
    if how == "deleted":
        log.unlink()
    elif how == "renamed or moved":
        log.rename(log.with_name("elsewhere.jsonl"))
    elif how == "truncated":
        os.truncate(log, 0)
    else:  # replaced by another file
        log.with_name("new.jsonl").write_text("")
        log.with_name("new.jsonl").rename(log)


@pytest.mark.parametrize("how", ["deleted", "renamed or moved", "truncated", "replaced"])
def test_a_log_gone_is_seen_before_the_next_record(tmp_path: Path, how: str) -> None:
    log = ResultLog(tmp_path / "r.jsonl", "run")
    log.sending("devin-a")
    log.check()  # nothing happened
    _gone(tmp_path / "r.jsonl", how)
    with pytest.raises(ResultLogError, match=how.split()[0]):
        log.sending("devin-b")
    with pytest.raises(ResultLogError):  # and stays refused
        log.finished(counts={}, elapsed_s=0, exit_code=3, interrupted=False)
    log.close()
    assert b"devin-b" not in b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))


@pytest.mark.parametrize("how", ["deleted", "renamed or moved", "truncated", "replaced"])
async def test_in_a_loop_a_log_gone_is_seen_at_the_next_turn(tmp_path: Path, how: str) -> None:
    """One look at the path per turn of the loop speaks for the records written in that
    turn (no wait between them); the first record of the next turn looks again."""
    log = ResultLog(tmp_path / "r.jsonl", "run")
    log.sending("devin-a")
    _gone(tmp_path / "r.jsonl", how)
    log.sending("devin-b")  # the same turn: written with devin-a, as one batch
    await asyncio.sleep(0)
    with pytest.raises(ResultLogError, match=how.split()[0]):
        log.sending("devin-c")
    log.close()
    assert b"devin-c" not in b"".join(p.read_bytes() for p in tmp_path.glob("*.jsonl"))


@pytest.mark.parametrize("how", ["deleted", "renamed or moved", "truncated"])
def test_a_log_gone_mid_run_stops_it_exit_3_with_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    import threading

    log = tmp_path / "r.jsonl"
    with serve(simulator_app(sessions=200, latency_ms=5)) as api:
        ids = tmp_path / "real.txt"
        ids.write_text("\n".join(terminable_ids(api.sim.sessions)) + "\n")
        stop = threading.Event()

        def meddle() -> None:  # someone else, while the run goes on
            while not stop.wait(0.005):
                if api.sim.stats.snapshot()["deletes_total"] >= 10:
                    _gone(log, how)
                    return

        meddler = threading.Thread(target=meddle)
        meddler.start()
        args = ["run", str(ids), "--results", str(log), "--concurrency", "2", "--rate", "0"]
        try:
            code = main([*args, "--base-url", api.base_url])
        finally:
            stop.set()
            meddler.join()
        deletes = api.sim.stats.snapshot()["deletes_total"]
    assert code == 3 and 10 <= deletes < 40
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if f"was {how}" in line]) == 1, err


@virtual
async def test_a_log_gone_between_records_is_seen_within_the_watch() -> None:
    """No record for seconds (slow answers): the watch still sees the log gone in time."""
    loop = asyncio.get_running_loop()
    gone_at, stopped_at = 10.0, []
    stops: list[ResultLogError] = []

    def check() -> None:
        if loop.time() >= gone_at:
            raise ResultLogError("the result log r.jsonl was deleted during the run")

    def stop(exc: ResultLogError) -> None:
        stops.append(exc)
        stopped_at.append(loop.time())

    async with watching(check, stop):
        await asyncio.sleep(30)  # a request that takes its time
    assert len(stops) == 1 and "deleted" in str(stops[0])
    assert gone_at <= stopped_at[0] <= gone_at + WATCH_S <= gone_at + 1
