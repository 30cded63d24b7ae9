"""What an operator sees: a live bar and a summary table on a terminal (a real
pseudo-terminal), JSON progress lines and a JSON summary without one; and the figures."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli, run_on_pty

from worker.outcomes import Tally
from worker.output.meter import Meter

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _terminal_env(sim: Any, **extra: str) -> dict[str, str]:
    env = cli_env(sim, TERM="xterm-256color", COLUMNS="160", DEVIN_TERMINATE_LOG_FORMAT="auto")
    env.update(extra)
    return env


def _colours(text: str) -> list[str]:
    """SGR parameters that set a foreground or background colour."""
    found = []
    for params in _SGR.findall(text):
        codes = [int(p) for p in params.split(";") if p]
        found += [str(c) for c in codes if 30 <= c <= 49 or 90 <= c <= 107]
    return found


@pytest.fixture
def slow_sim(simulator: Any) -> Any:
    # 45 terminable sessions, 2 at a time, 40 ms each: the run lasts about a second.
    return simulator("--sessions", "60", "--seed", "5", "--latency-ms", "40")


_SLOW_RUN = ["--yes", "--rate", "0", "--concurrency", "2"]


@pytest.mark.subprocess
def test_terminal_shows_bar_and_summary_table(slow_sim: Any, tmp_path: Path) -> None:
    code, screen, stdout = run_on_pty(
        ["run", str(slow_sim.ids_path), *_SLOW_RUN], _terminal_env(slow_sim), tmp_path
    )
    assert code == 0, screen[-3000:]
    total = len(slow_sim.ids())
    assert "terminating" in screen and f"/{total}" in screen and "req/s" in screen
    assert f"terminated {total}" in screen  # counts by outcome beside the bar
    assert "devin-terminate summary" in screen and "result log" in screen
    assert "run.started" in screen  # diagnostics went through the console, above the bar
    assert _colours(screen), "a terminal without NO_COLOR gets colours"
    assert stdout == ""


@pytest.mark.subprocess
def test_terminal_respects_no_color(slow_sim: Any, tmp_path: Path) -> None:
    code, screen, _ = run_on_pty(
        ["run", str(slow_sim.ids_path), *_SLOW_RUN], _terminal_env(slow_sim, NO_COLOR="1"), tmp_path
    )
    assert code == 0, screen[-3000:]
    assert "terminating" in screen and "devin-terminate summary" in screen
    assert _colours(screen) == []


def test_json_logs_get_json_progress_lines(slow_sim: Any, tmp_path: Path) -> None:
    proc = run_cli(
        ["run", str(slow_sim.ids_path), *_SLOW_RUN, "--progress-interval", "0.2"],
        cli_env(slow_sim, DEVIN_TERMINATE_LOG_FORMAT="json"),
        cwd=tmp_path,
    )
    text = proc.stderr
    assert proc.returncode == 0, text[-2000:]
    assert proc.stdout == ""
    assert "\x1b[" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    beats = [line for line in lines if line["event"] == "run.progress"]
    assert len(beats) >= 2, text
    total = len(slow_sim.ids())
    # A beat before the input is counted (meanwhile, in a thread) says "expected": null.
    known = [beat["expected"] is not None for beat in beats]
    assert known[-1] and known == sorted(known), beats
    for beat in beats:
        assert beat["expected"] in (None, total) and beat["settled"] == sum(beat["counts"].values())
        assert {"requests", "requests_per_s", "eta_s", "elapsed_s", "rate_limit"} <= beat.keys()
    assert beats[-1]["settled"] > beats[0]["settled"]
    assert any(beat["requests_per_s"] > 0 for beat in beats)
    summary = lines[-1]
    assert summary["event"] == "run.summary" and summary["counts"] == {"terminated": total}


def test_progress_off_leaves_only_the_summary(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "20")
    proc = run_cli(
        [
            "run",
            str(sim.ids_path),
            "--yes",
            "--rate",
            "0",
            "--progress",
            "off",
            "--progress-interval",
            "0.01",
            "--log-level",
            "warning",
        ],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["run.summary"]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_meter_figures() -> None:
    clock = _Clock()
    tally = Tally(counts=Counter(), expected=100, started=clock.now, rate_limit=20.0)
    meter = Meter(tally, ceiling=20.0, clock=clock)
    first = meter.read()
    assert (first.settled, first.requests_per_s, first.eta_s, first.rate_limit) == (
        0,
        0,
        None,
        None,
    )
    clock.now += 2.0
    tally.counts.update({"terminated": 18, "failed": 2, "cancelled": 0})
    tally.requests = 30
    tally.rate_limit = 10.0  # adaptive control lowered it
    figures = meter.read()
    assert figures.counts == {"terminated": 18, "failed": 2}
    assert figures.settled == 20 and figures.requests_per_s == 15.0
    assert figures.eta_s == pytest.approx(8.0)  # 80 left at 10 settled per second
    assert figures.rate_limit == 10.0 and figures.elapsed_s == 2.0
    assert figures.as_event()["rate_limit"] == 10.0
