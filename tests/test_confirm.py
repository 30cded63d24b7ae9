"""Confirmation: asked on a terminal (count, org, archive), never without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli, run_on_pty


@pytest.mark.subprocess
@pytest.mark.parametrize(("answer", "code"), [(b"n\n", 2), (b"y\n", 0)])
def test_terminal_run_asks_first(simulator: Any, tmp_path: Path, answer: bytes, code: int) -> None:
    sim = simulator("--sessions", "30")
    env = cli_env(sim, TERM="dumb", DEVIN_TERMINATE_LOG_FORMAT="console")
    status, screen, _ = run_on_pty(
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
        answer=answer,
    )
    assert status == code, screen[-2000:]
    assert f"ARCHIVE {len(sim.ids())} sessions of org-test" in screen
    sent = sim.stats()["requests_total"]
    assert sent == (0 if code else len(sim.ids()) + 1)  # + the identity check


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


@pytest.mark.subprocess
@pytest.mark.parametrize(("answer", "code"), [(b"n\n", 2), (b"y\n", 0)])
def test_ids_piped_in_at_a_terminal_are_confirmed_on_dev_tty(
    simulator: Any, tmp_path: Path, answer: bytes, code: int
) -> None:
    """``cat ids | devin-terminate run -`` typed at a terminal: asked on /dev/tty; "n"
    sends nothing (not even the identity check)."""
    sim = simulator("--sessions", "6")
    env = cli_env(sim, TERM="dumb", DEVIN_TERMINATE_LOG_FORMAT="console")
    ids = "".join(f"{sid}\n" for sid in sim.ids()).encode()
    status, screen, _ = run_on_pty(
        ["run", "-", "--results", str(tmp_path / "r.jsonl")], env, tmp_path, answer=answer,
        piped=ids,
    )  # fmt: skip
    assert status == code, screen[-2000:]
    assert "About to terminate an unknown number of sessions of org-test" in screen
    assert "/100" not in screen  # no made-up total on the bar
    sent = sim.stats()["requests_total"]
    assert sent == (0 if code else len(sim.ids()) + 1)


@pytest.mark.subprocess
def test_run_without_input_at_a_terminal_is_usage(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "3")
    status, screen, _ = run_on_pty(["run"], cli_env(sim), tmp_path, answer=b"")
    assert status == 2 and "usage: devin-terminate run INPUT" in screen
    assert sim.stats()["requests_total"] == 0
