"""Scenario 6, start-up: wall time of ``devin-terminate --help``, beside a bare interpreter.

The issue sets no goal for this figure; it is reported so that a regression (a heavy
import moved to the top of ``cli.py``) shows. Median of several runs after one warm-up.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.harness import Figure, Scenario, median, run_measured, worker_env


def run(sc: Scenario) -> None:
    reps = 3 if sc.quick else 7
    script = Path(sys.executable).with_name("devin-terminate")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "worker"]
    if not script.exists() and shutil.which("devin-terminate") is None:
        sc.note("the devin-terminate script is not installed; timed python -m worker instead")
    help_s = _timed([*command, "--help"], reps)
    bare_s = _timed([sys.executable, "-c", "pass"], reps)
    sc.add("help_wall_s", Figure(round(help_s, 3), "s"))
    sc.add("bare_python_wall_s", Figure(round(bare_s, 3), "s"))
    sc.add("help_minus_bare_python_s", Figure(round(help_s - bare_s, 3), "s"))
    sc.note(f"median of {reps} runs after a warm-up; the issue sets no goal for start-up")


def _timed(argv: list[str], reps: int) -> float:
    run_measured(argv, env=worker_env())  # warm the page cache
    return median([run_measured(argv, env=worker_env()).wall_s for _ in range(reps)])
