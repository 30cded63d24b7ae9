"""Confirmation: asked on a terminal (count, org, archive), never without one."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli


def _answer_prompt(
    args: list[str], env: dict[str, str], cwd: Path, answer: bytes
) -> tuple[int, str]:
    """Run the CLI with stdin and stderr on a pseudo-terminal; answer the prompt."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    screen = b""
    answered = False
    while select.select([master], [], [], 30)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        screen += data
        if not answered and b"[y/N]" in screen:
            os.write(master, answer)
            answered = True
    os.close(master)
    return proc.wait(30), screen.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code"), [(b"n\n", 2), (b"y\n", 0)])
def test_terminal_run_asks_first(simulator: Any, tmp_path: Path, answer: bytes, code: int) -> None:
    sim = simulator("--sessions", "30")
    env = cli_env(sim, TERM="dumb", DEVIN_TERMINATE_LOG_FORMAT="console")
    status, screen = _answer_prompt(
        [
            "run",
            str(sim.ids_path),
            "--archive",
            "--results",
            str(tmp_path / "r.jsonl"),
            "--rate",
            "0",
        ],
        env,
        tmp_path,
        answer,
    )
    assert status == code, screen[-2000:]
    assert f"ARCHIVE {len(sim.ids())} sessions of org-test" in screen
    sent = sim.stats()["requests_total"]
    assert sent == (0 if code else len(sim.ids()))


def test_no_terminal_never_prompts(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "10")
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(tmp_path / "r.jsonl")],
        cli_env(sim),
        cwd=tmp_path,
        stdin="",
    )
    assert proc.returncode == 0
    assert "[y/N]" not in proc.stderr
