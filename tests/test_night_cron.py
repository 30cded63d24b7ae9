"""The shipped crontab line, run the way cron runs it: ``env -i`` with cron's environment
(PATH=/usr/bin:/bin, SHELL=/bin/sh, HOME) and the crontab's own variable lines, against the
simulator. The only edit is the one a user makes: the install path of the command."""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, read_results

CRONTAB = REPO / "config" / "devin-terminate.crontab"
PLACEHOLDER = "$HOME/.local/bin/devin-terminate"
INSTALLED = Path(sys.executable).parent / "devin-terminate"

pytestmark = pytest.mark.skipif(
    shutil.which("flock") is None or not INSTALLED.exists(),
    reason="needs util-linux flock and the installed console script",
)


def _crontab() -> tuple[dict[str, str], str]:
    """The variable lines and the one job line (its command, after the five time fields)."""
    env: dict[str, str] = {}
    jobs = []
    for line in CRONTAB.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip().isidentifier() and " " not in name.strip():
            env[name.strip()] = value.strip()
        else:
            jobs.append(line.split(None, 5)[5])
    assert len(jobs) == 1, jobs
    return env, jobs[0]


def _night_dir(home: Path, base_url: str, org: str, token: str) -> Path:
    night = home / "devin-terminate"
    night.mkdir(parents=True)
    (night / "config.toml").write_text(
        f'org_id = "{org}"\nbase_url = "{base_url}"\nrate = 0\nconcurrency = 16\n'
        "backoff_base = 0\nretry_after_max = 0\ntimeout = 5\n"
    )
    token_file = night / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return night


def _cron(home: Path) -> subprocess.CompletedProcess[str]:
    env, command = _crontab()
    assert env["PATH"] == "/usr/bin:/bin" and env["SHELL"] == "/bin/sh" and "MAILTO" in env
    assert PLACEHOLDER in command
    command = command.replace(PLACEHOLDER, str(INSTALLED))  # the user's one edit
    # the textfile collector's directory: the night's own here
    metrics = home / "textfile_collector" / "devin_terminate.prom"
    metrics.parent.mkdir(exist_ok=True)
    assert env["DEVIN_TERMINATE_METRICS_FILE"].endswith("/textfile_collector/devin_terminate.prom")
    env["DEVIN_TERMINATE_METRICS_FILE"] = str(metrics)
    cron_env = {**env, "HOME": str(home), "LOGNAME": "cron", "USER": "cron"}
    cron_env.pop("MAILTO")
    argv = ["env", "-i", *(f"{k}={v}" for k, v in cron_env.items()), "/bin/sh", "-c", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd="/")


def test_the_shipped_line_terminates_the_stale_sessions_silently(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "80", "--seed", "3")
    night = _night_dir(tmp_path, sim.base_url, sim.org_id, sim.token)
    proc = _cron(tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    stale = (night / "stale.csv").read_text().splitlines()[1:]
    assert stale, "the simulator has sessions idle for a week"
    results = [r for r in read_results(night / "results.jsonl") if r["event"] == "session.result"]
    assert {r["session_id"] for r in results} == {line.split(",")[0] for line in stale}
    assert {r["outcome"] for r in results} <= {"terminated", "archived"}
    metrics = (tmp_path / "textfile_collector" / "devin_terminate.prom").read_text()
    assert "devin_terminate_run_exit_code 0.0" in metrics
    assert f'devin_terminate_run_sessions{{outcome="terminated"}} {len(results)}.0' in metrics
    again = _cron(tmp_path)  # the next night: nothing left idle and running
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_an_unreachable_api_gives_a_short_message_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    _night_dir(tmp_path, f"http://127.0.0.1:{port}", "org-test", "cog_test_token_5f3a9c1e")
    proc = _cron(tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 0 < len(text.splitlines()) <= 10, text
    assert "cannot connect" in text and "exit" in text
    assert "cog_test_token" not in text


def test_a_night_still_running_makes_the_next_one_say_so(tmp_path: Path) -> None:
    night = _night_dir(tmp_path, "http://127.0.0.1:9", "org-test", "cog_x")
    holder = subprocess.Popen(["flock", str(night / "night.lock"), "sleep", "30"])
    try:
        for _ in range(200):  # until the holder has the lock
            probe = subprocess.run(["flock", "-n", str(night / "night.lock"), "true"], check=False)
            if probe.returncode != 0:
                break
        proc = _cron(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 75
    assert "exit 75" in proc.stdout + proc.stderr
