"""``run --metrics-file``: a node_exporter textfile written on every way out of a run, its
figures those of the log's ``run.finished``, its last success carried over a failed night."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cli_env, read_results, run_args, run_cli
from prometheus_client.parser import text_string_to_metric_families

from worker.errors import AuthError
from worker.output.textfile import RunMetricsFile, write_atomically


def _figures(path: Path) -> dict[str, Any]:
    """name (with the outcome label, if any) -> value, through Prometheus' own parser."""
    figures: dict[str, Any] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            outcome = sample.labels.get("outcome")
            figures[f"{sample.name}:{outcome}" if outcome else sample.name] = sample.value
    return figures


def _sessions(figures: dict[str, Any]) -> dict[str, int]:
    prefix = "devin_terminate_run_sessions:"
    return {k[len(prefix) :]: int(v) for k, v in figures.items() if k.startswith(prefix) and v}


def test_a_night_writes_what_its_run_finished_says(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "40", "--seed", "4", "--rate-limit", "30")
    prom, results = tmp_path / "dt.prom", tmp_path / "r.jsonl"
    args = run_args(sim, results, "--metrics-file", str(prom), "--rate", "200")
    proc = run_cli(args, cli_env(sim), cwd=tmp_path)
    finished = read_results(results)[-1]
    assert finished["event"] == "run.finished" and proc.returncode == finished["exit_code"] == 0
    figures = _figures(prom)
    assert _sessions(figures) == {k: v for k, v in finished["counts"].items() if v}
    assert figures["devin_terminate_run_exit_code"] == 0
    stats = sim.stats()
    assert figures["devin_terminate_run_throttled_requests"] == stats["throttled"] > 0
    # every request but the identity check (GET /v3/self), as the summary counts them
    assert figures["devin_terminate_run_requests"] == stats["requests_total"] - 1
    start, end = (
        figures["devin_terminate_run_start_time_seconds"],
        figures["devin_terminate_run_end_time_seconds"],
    )
    assert start <= end == figures["devin_terminate_run_last_success_time_seconds"]
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir() if "prom" in p.name) == ["dt.prom"]


def test_an_unreachable_api_still_writes_the_exit_code_and_keeps_the_last_success(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "5")
    prom = tmp_path / "dt.prom"
    args = run_args(sim, tmp_path / "r.jsonl", "--metrics-file", str(prom))
    assert run_cli(args, cli_env(sim), cwd=tmp_path).returncode == 0
    success = _figures(prom)["devin_terminate_run_last_success_time_seconds"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    env = cli_env(sim, DEVIN_API_URL=closed, DEVIN_TERMINATE_METRICS_FILE=str(prom))
    proc = run_cli(run_args(sim, tmp_path / "r2.jsonl"), env, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    figures = _figures(prom)
    assert figures["devin_terminate_run_exit_code"] == 3
    assert figures["devin_terminate_run_last_success_time_seconds"] == success
    assert figures["devin_terminate_run_end_time_seconds"] > success
    assert _sessions(figures) == {} and figures["devin_terminate_run_requests"] == 0


def test_a_metrics_file_that_cannot_be_written_is_refused_before_the_run(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "3")
    prom = tmp_path / "no-such-dir" / "dt.prom"
    args = run_args(sim, tmp_path / "r.jsonl", "--metrics-file", str(prom))
    proc = run_cli(args, cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 2 and "textfile_collector" in proc.stderr
    assert sim.stats()["requests_total"] == 0


@pytest.mark.parametrize(
    ("raised", "code"),
    [(KeyboardInterrupt(), 130), (AuthError("token refused"), 3), (RuntimeError("bug"), 1)],
)
def test_every_way_out_writes_its_exit_code(
    tmp_path: Path, raised: BaseException, code: int
) -> None:
    prom = tmp_path / "dt.prom"
    write_atomically(prom, b"devin_terminate_run_last_success_time_seconds 1234.5\n")
    with pytest.raises(type(raised)), RunMetricsFile(prom, clock=lambda: 2000.0) as night:
        night.tally.counts["terminated"] += 2
        raise raised
    figures = _figures(prom)
    assert figures["devin_terminate_run_exit_code"] == code
    assert figures["devin_terminate_run_last_success_time_seconds"] == 1234.5
    assert _sessions(figures) == {"terminated": 2}


def test_the_early_exit_hook_writes_once(tmp_path: Path) -> None:
    prom = tmp_path / "dt.prom"
    prom.write_text("garbage {{{ not a metrics file\n")
    night = RunMetricsFile(prom)
    night.exit(143)  # what a SIGTERM before the pipeline calls, before os._exit
    night.exit(0)  # a second word changes nothing
    figures = _figures(prom)
    assert figures["devin_terminate_run_exit_code"] == 143
    assert "devin_terminate_run_last_success_time_seconds" not in figures


def test_the_file_is_replaced_whole_whatever_the_umask(tmp_path: Path) -> None:
    prom = tmp_path / "dt.prom"
    old = os.umask(0o077)
    try:
        write_atomically(prom, b"a 1\n")
        (tmp_path / f".dt.prom.{os.getpid()}.tmp").symlink_to(tmp_path / "elsewhere")
        write_atomically(prom, b"a 2\n")  # a planted link is removed, never written through
    finally:
        os.umask(old)
    assert prom.read_text() == "a 2\n" and stat.S_IMODE(prom.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dt.prom"]


def test_the_example_alerts_read_figures_that_the_file_has(tmp_path: Path) -> None:
    import re

    import yaml

    from worker.output.textfile import render

    alerts = yaml.safe_load((REPO / "config" / "alerts.yml").read_text())
    night = next(g for g in alerts["groups"] if g["name"] == "devin-terminate-night")
    named = {n for rule in night["rules"] for n in re.findall(r"devin_terminate_\w+", rule["expr"])}
    prom = tmp_path / "dt.prom"
    write_atomically(
        prom,
        render(started=1, ended=2, exit_code=0, counts={}, requests=0, throttled=0, last_success=2),
    )
    assert named and named <= {name.split(":")[0] for name in _figures(prom)}


@pytest.mark.subprocess
def test_a_run_without_the_setting_never_imports_prometheus_client(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    (tmp_path / "ids.txt").write_text("devin-abc\n")
    code = (
        "import sys, worker.cli; code = worker.cli.main(['run', 'ids.txt', '-y']); "
        "print(code, 'prometheus_client' in sys.modules)"
    )
    env = cli_env(DEVIN_API_KEY="cog_x", DEVIN_ORG_ID="org-x", DEVIN_API_URL=closed)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.stdout.split() == ["3", "False"], proc.stderr
