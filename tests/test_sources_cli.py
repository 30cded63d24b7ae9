"""The input side of the CLI contract, as subprocesses: signals while stdin is silent, a
closed stdin, inputs that can be read only once (pipes, FIFOs), hostile titles through
``list | run -``."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cli_env, run_cli, session_results


def _popen(
    args: list[str], env: dict[str, str], cwd: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_sigterm_while_stdin_is_silent_exits_143(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "5")
    results = tmp_path / "r.jsonl"
    prom = tmp_path / "dt.prom"
    args = ["run", "-", "--results", str(results), "--metrics-file", str(prom)]
    proc = _popen(args, cli_env(sim), tmp_path, stdin=subprocess.PIPE)
    assert proc.stderr is not None and proc.stdin is not None
    seen = b""
    for line in proc.stderr:  # wait until the run reads stdin
        seen += line
        if b"run.started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    rest = seen + proc.stderr.read()
    proc.stdin.close()
    proc.stderr.close()
    assert code == 143, rest[-3000:]
    assert b"Fatal Python error" not in rest and b"Traceback" not in rest
    assert "devin_terminate_run_exit_code 143.0" in prom.read_text()  # an interrupted night


def test_closed_stdin_and_csv_without_ids_are_exit_2(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "5")
    proc = subprocess.run(
        f"exec {sys.executable} -m worker run - <&-",
        shell=True,
        env=cli_env(sim),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "stdin" in proc.stderr and "Traceback" not in proc.stderr
    # A piped CSV without a column of ids: exit 2 naming the header, not a traceback.
    piped = run_cli(
        ["run", "-", "--results", str(tmp_path / "r.jsonl")],
        cli_env(sim),
        cwd=tmp_path,
        stdin="Owner,Note\r\nann,hello\r\n",
    )
    assert piped.returncode == 2, piped.stderr
    assert "'Owner', 'Note'" in piped.stderr and "--column" in piped.stderr
    assert "Traceback" not in piped.stderr


def _feed(path: str, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as fifo:
            fifo.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_fifo_and_pipe_are_read_once_and_whole(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "40")
    ids = sim.ids()
    data = sim.ids_path.read_bytes()
    # A spreadsheet's export (BOM, ";", CRLF, "Session ID") through a FIFO, sniffed.
    sheet = "".join(f'ann;{sid};"note; with\r\n{ids[0]}"\r\n' for sid in ids)
    fifo = tmp_path / "ids-fifo"
    os.mkfifo(fifo)
    writer = _feed(str(fifo), ("\ufeffOwner;Session ID;Note\r\n" + sheet).encode())
    first = run_cli(
        ["run", str(fifo), "--results", str(tmp_path / "a.jsonl"), "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
        timeout=60,
    )
    writer.join(10)
    assert first.returncode == 0, first.stderr[-2000:]
    assert sorted(r["session_id"] for r in session_results(tmp_path / "a.jsonl")) == sorted(ids)
    # A pipe named /dev/fd/N, as `run <(cmd)` gives it, counted first: spooled, not lost.
    read_end, write_end = os.pipe()
    results = tmp_path / "b.jsonl"
    proc = _popen(
        [
            "run",
            f"/dev/fd/{read_end}",
            "--results",
            str(results),
            "--rate",
            "0",
            "--max-sessions",
            "1000",
            "--no-resume",
        ],
        cli_env(sim),
        tmp_path,
        pass_fds=(read_end,),
    )
    os.close(read_end)
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(data)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(60) == 0, err[-2000:]
    outcomes = {r["session_id"]: r["outcome"] for r in session_results(results)}
    assert sorted(outcomes) == sorted(ids)
    assert set(outcomes.values()) == {"already_terminated"}
    assert sim.stats()["deletes_by_session"] == dict.fromkeys(ids, 2)


def test_hostile_titles_list_into_run_terminates_exactly_the_listed(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "80", "--hostile-titles", "--seed", "3")
    listed = run_cli(["list", "--status", "running"], cli_env(sim), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(listed.stdout, newline="")))
    assert any("\ndevin-" in row["title"] for row in rows)  # ids on lines of their own
    ids = [row["session_id"] for row in rows]
    run = run_cli(
        ["run", "-", "--rate", "0", "--results", str(tmp_path / "r.jsonl")],
        cli_env(sim),
        cwd=tmp_path,
        stdin=listed.stdout,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert sim.stats()["deletes_by_session"] == dict.fromkeys(ids, 1)


def test_sigterm_while_a_fifo_is_spooled_exits_143(tmp_path: Path) -> None:
    fifo = tmp_path / "ids"
    os.mkfifo(fifo)
    env = cli_env(
        DEVIN_API_KEY="cog_unused", DEVIN_ORG_ID="org-x", DEVIN_API_URL="http://127.0.0.1:9"
    )
    args = ["run", str(fifo), "--max-sessions", "10", "--results", str(tmp_path / "r.jsonl")]
    args += ["--metrics-file", str(tmp_path / "dt.prom")]
    proc = _popen(args, env, tmp_path)
    writer = None
    while writer is None:  # opening the writing end succeeds once the run has opened it
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet; the run must still be starting
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(0.01)
    os.write(writer, b"devin-a\n")  # then silence: the run waits to spool the rest
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    os.close(writer)
    assert proc.wait(30) == 143, err
    assert b"Traceback" not in err
    # the process left with os._exit before anything was sent: the metrics file says so
    assert "devin_terminate_run_exit_code 143.0" in (tmp_path / "dt.prom").read_text()


@pytest.mark.parametrize("distinct", [True, False], ids=["new-ids", "yes"])
def test_max_sessions_on_an_endless_stream_refuses_at_once(
    simulator: Any, tmp_path: Path, distinct: bool
) -> None:
    """The spool is counted as it is copied: it stops at the first id over the limit, or at
    its byte bound when the ids repeat (``yes devin-x``); what was written is what was read."""
    sim = simulator("--sessions", "3")
    results = tmp_path / "r.jsonl"
    proc = _popen(
        ["run", "-", "--max-sessions", "10", "--results", str(results), "-y"],
        cli_env(sim),
        tmp_path,
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    written = 0
    try:
        for n in range(1 << 30):
            line = f"devin-{n if distinct else 0:032x}\n".encode() * 64
            proc.stdin.write(line)
            written += len(line)
    except BrokenPipeError:
        pass
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    assert proc.wait(10) == 2
    said = proc.stderr.read()
    proc.stderr.close()
    assert (b"more distinct session ids than --max-sessions 10" if distinct else b"1 MiB") in said
    assert written < (1 << 20) + (1 << 18)  # the bound, a block and the pipe's buffer
    assert sim.stats()["deletes_total"] == 0 and not results.exists()
