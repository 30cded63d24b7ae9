"""Never lose a result: faults, throttling, bad tokens, signals, kill -9, overlapping runs.

Every test runs the CLI as a subprocess against the simulator, also a subprocess, and reads
the result log back. Backoff is zero (conftest's environment); Retry-After is capped at 0.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, read_results, run_args, run_cli, session_results

from worker.run.authority import PROOF

FINAL = {"terminated", "archived", "already_terminated", "not_found"}


def _popen(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """The CLI in the background; its stderr goes to ``cwd/stderr-N.log`` (no pipes to leak)."""
    log = cwd / f"stderr-{len(list(cwd.glob('stderr-*.log')))}.log"
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def _wait_for_results(
    path: Path, count: int, proc: subprocess.Popen[str], limit: float = 30
) -> None:
    """Poll the result log (not a timing assumption: we wait for a state, bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b'"session.result"') >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run did not write {count} results in time (exit {proc.poll()})")


def test_every_fault_kind_still_settles_each_id_once(simulator: Any, tmp_path: Path) -> None:
    sim = simulator(
        "--sessions",
        "300",
        "--fault-rate",
        "0.2",
        "--timeout-hang-s",
        "2",
        "--rate-limit",
        "400",
        "--ghost-success-rate",
        "0.5",
        "--seed",
        "11",
    )
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        [
            "run",
            str(sim.ids_path),
            "--results",
            str(out),
            "--rate",
            "800",
            "--timeout",
            "0.5",
            "--concurrency",
            "16",
            "--max-attempts",
            "10",
        ],
        cli_env(sim),
        cwd=tmp_path,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = session_results(out)
    assert Counter(r["session_id"] for r in results) == dict.fromkeys(sim.ids(), 1)
    # a DELETE that timed out or was cut off may have been applied: still reported as ours
    assert {r["outcome"] for r in results} == {"terminated"}
    stats = sim.stats()
    assert sum(stats["faults_injected"].values()) > 20
    assert stats["terminated"] == len(sim.ids())


def test_bad_token_stops_after_at_most_concurrency_requests(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "200")
    out = tmp_path / "r.jsonl"
    env = cli_env(sim, DEVIN_API_KEY="cog_wrong_token")
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(out), "--concurrency", "4", "--rate", "0"],
        env,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert sim.stats()["requests_total"] == 1  # the identity check refused it: no DELETE
    assert "DEVIN_API_KEY" in proc.stderr
    assert read_results(out) == []  # stopped before run.started: nothing to resume


def test_token_without_permission_exits_3_naming_it(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "100", "--lacks-manage-permission")
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(out), "--concurrency", "4", "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "ManageOrgSessions" in proc.stderr
    # PROOF permission 403s with no success stop it, and the requests in flight then
    assert sim.stats()["deletes_total"] <= PROOF + 3


def test_breaker_trips_when_most_sessions_fail(simulator: Any, tmp_path: Path) -> None:
    # Every DELETE answers 500 (scripted per id: the identity check is not faulted, or its
    # quick retries would add 3 s of waiting to what is tested here).
    fail = [f"--fault-script={sid}=500,500" for sid in simulator("--seed", "9").ids()]
    sim = simulator("--seed", "9", *fail)
    assert len(sim.ids()) >= 100
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        run_args(sim, out, "--max-attempts", "2", "--breaker-window", "20"),
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "failure breaker" in proc.stderr
    results = session_results(out)
    assert len(results) < len(sim.ids())  # it stopped starting new sessions
    assert read_results(out)[-1]["exit_code"] == 3


@pytest.mark.subprocess
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_drains_and_records_every_request(
    simulator: Any, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    sim = simulator("--sessions", "400", "--latency-ms", "50")
    out = tmp_path / "r.jsonl"
    proc = _popen(
        run_args(sim, out, "--concurrency", "8", "--drain-timeout", "5"),
        cli_env(sim),
        tmp_path,
    )
    _wait_for_results(out, 20, proc)
    sent_at = time.monotonic()
    proc.send_signal(sig)
    proc.wait(20)
    assert proc.returncode == code
    assert time.monotonic() - sent_at < 5 + 2
    records = read_results(out)
    assert records[-1]["event"] == "run.finished" and records[-1]["interrupted"] is True
    results = session_results(out)
    deletes = sim.stats()["deletes_by_session"]
    recorded = {r["session_id"] for r in results}
    assert set(deletes) <= recorded  # a record for every request sent
    assert len(results) < len(sim.ids())


@pytest.mark.subprocess
def test_a_signal_during_a_stuck_identity_check_exits_at_once(tmp_path: Path) -> None:
    """An API that takes the connection and never answers GET /v3/self: SIGTERM does not
    wait out the drain (nothing was sent), and no record is written."""
    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        api.listen()
        env = cli_env(
            DEVIN_API_KEY="cog_test_token_5f3a9c1e",
            DEVIN_ORG_ID="org-test",
            DEVIN_API_URL=f"http://127.0.0.1:{api.getsockname()[1]}",
        )
        ids = tmp_path / "ids.txt"
        ids.write_text("devin-a\n")
        out = tmp_path / "r.jsonl"
        proc = _popen(
            ["run", str(ids), "--results", str(out), "--drain-timeout", "30"], env, tmp_path
        )
        api.settimeout(20)
        held, _ = api.accept()  # the identity check is waiting for its answer
        with held:
            held.recv(4096)
            sent_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    assert proc.returncode == 143
    assert time.monotonic() - sent_at < 3
    assert read_results(out) == []


@pytest.mark.subprocess
def test_second_signal_or_deadline_cancels_requests_in_flight(
    simulator: Any, tmp_path: Path
) -> None:
    # Every DELETE hangs (the identity check does not): five requests stay in flight.
    hang = [
        f"--fault-script={sid}=timeout"
        for sid in simulator("--sessions", "50", "--seed", "8").ids()
    ]
    sim = simulator("--sessions", "50", "--seed", "8", "--timeout-hang-s", "60", *hang)
    out = tmp_path / "r.jsonl"
    proc = _popen(
        run_args(sim, out, "--concurrency", "5", "--drain-timeout", "30"),
        cli_env(sim),
        tmp_path,
    )
    deadline = time.monotonic() + 20
    while sim.stats()["deletes_total"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)  # let the first signal be handled before the second
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    assert proc.returncode == 130
    results = session_results(out)
    assert Counter(r["outcome"] for r in results) == {"cancelled": 5}
    assert read_results(out)[-1]["interrupted"] is True


@pytest.mark.subprocess
def test_kill_9_then_rerun_settles_each_id_exactly_once(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "600", "--latency-ms", "5", "--already-terminated", "409")
    out = tmp_path / "r.jsonl"
    args = run_args(sim, out, "--concurrency", "8")
    for kill_after in (30, 150, 300):
        proc = _popen(args, cli_env(sim), tmp_path)
        _wait_for_results(out, kill_after, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with out.open("ab") as fh:
        fh.write(b'{"event": "session.result", "session_id": "devin-torn')  # a torn last line
    settled_before = {
        r["session_id"] for r in session_results(out, strict=False) if r["outcome"] in FINAL
    }
    deletes_before = dict(sim.stats()["deletes_by_session"])
    final = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "results.unreadable_lines" in final.stderr
    deletes_after = sim.stats()["deletes_by_session"]
    resent = {sid for sid in settled_before if deletes_after.get(sid) != deletes_before.get(sid)}
    assert resent == set()  # no id that had a final record was sent again
    latest: dict[str, str] = {}
    for record in session_results(out, strict=False):
        latest[record["session_id"]] = record["outcome"]
    assert set(latest) == set(sim.ids())
    assert set(latest.values()) <= FINAL
    finals = Counter(
        r["session_id"] for r in session_results(out, strict=False) if r["outcome"] in FINAL
    )
    assert all(n == 1 for n in finals.values())


@pytest.mark.subprocess
def test_second_run_on_same_log_exits_4_and_changes_nothing(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "100", "--latency-ms", "200")
    out = tmp_path / "r.jsonl"
    args = run_args(sim, out, "--concurrency", "2")
    first = _popen(args, cli_env(sim), tmp_path)
    _wait_for_results(out, 1, first)
    before = out.read_bytes()
    second = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert second.returncode == 4
    assert "holds the lock" in second.stderr
    # Neither moved, truncated nor rewritten: the first run only appended to it since.
    assert out.read_bytes().startswith(before)
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 143
    records = read_results(out)
    assert [r["event"] for r in records].count("run.started") == 1
    assert len({r["run_id"] for r in records}) == 1  # every record is the first run's
    # Every DELETE the simulator received is an attempt the first run recorded: the second
    # sent none (no faults here, so each attempt reached the simulator exactly once).
    attempts = sum(r["attempts"] for r in session_results(out))
    assert sim.stats()["deletes_total"] == attempts > 0


@pytest.mark.subprocess
def test_lock_of_a_killed_run_does_not_block(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "50", "--latency-ms", "100")
    out = tmp_path / "r.jsonl"
    args = run_args(sim, out, "--concurrency", "2")
    proc = _popen(args, cli_env(sim), tmp_path)
    _wait_for_results(out, 1, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    assert Path(f"{out}.lock").exists()
    again = run_cli([*args, "--concurrency", "16"], cli_env(sim), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]


def test_uncertain_attempts_are_reconciled_to_the_truth(simulator: Any, tmp_path: Path) -> None:
    probe = simulator("--sessions", "20", "--seed", "4")
    listing = run_cli(["list", "--status", "exit"], cli_env(probe), cwd=tmp_path)
    ended = listing.stdout.splitlines()[1].split(",")[0]
    live = probe.ids()[0]
    # same seed, same population: the live one's DELETE times out but takes effect (ghost),
    # then 409; the ended one answers 503 first, then 409.
    sim = simulator(
        "--sessions",
        "20",
        "--seed",
        "4",
        "--ghost-success-rate",
        "1",
        "--timeout-hang-s",
        "2",
        "--fault-script",
        f"{live}=timeout",
        "--fault-script",
        f"{ended}=503",
    )
    source = tmp_path / "two.txt"
    source.write_text(f"{live}\n{ended}\n")
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", str(source), "--archive", "--results", str(out), "--rate", "0", "--timeout", "0.5"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcomes = {r["session_id"]: (r["outcome"], r["attempts"]) for r in session_results(out)}
    # the ended one was not ours, but --archive promises archived sessions: it is archived
    assert outcomes == {live: ("archived", 2), ended: ("archived", 2)}
