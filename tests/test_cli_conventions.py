"""CLI conventions: no flag prefixes, errors in the subcommand's words with a suggestion,
short flags, checked list filters, the summary in the chosen log format, the example
configuration reachable from an installed package."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, cli_env, run_cli

from worker import cli
from worker.commands.config import example_toml
from worker.commands.listing import build_query
from worker.commands.options import parse_time
from worker.outcomes import RunReport
from worker.output.summary import print_summary
from worker.settings import Settings


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_no_parser_takes_abbreviations() -> None:
    parsers = _parsers(cli.build_parser())
    assert len(parsers) >= 7 and all(not p.allow_abbrev for p in parsers)


def test_a_typo_gets_the_subcommand_usage_and_a_suggestion(tmp_path: Path) -> None:
    proc = run_cli(["run", "--dry", "ids.csv"], cli_env(), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: devin-terminate run ")
    assert "unrecognized arguments: --dry (did you mean --dry-run?)" in proc.stderr
    proc = run_cli(["rnu"], cli_env(), cwd=tmp_path)
    assert proc.returncode == 2 and "(did you mean run?)" in proc.stderr


def test_short_flags() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["run", "-n", "-y", "-q", "ids.csv"])
    assert (args.dry_run, args.yes, args.quiet, args.verbose) == (True, True, True, False)
    assert parser.parse_args(["list", "-v"]).verbose is True
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "-q", "-v"])


def test_every_command_takes_q() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) >= {"run", "demo", "list", "report", "compact", "config"}
    for name, sub in commands.choices.items():
        assert any("-q" in action.option_strings for action in sub._actions), name


def test_demo_q_prints_the_verdict_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "-q", "--sessions", "20", "--dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == "demo: OK, every id and every malformed line is accounted for\n"
    assert err == ""


def test_list_refuses_an_unknown_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--status", "running,runing"]) == 2
    err = capsys.readouterr().err
    assert "'runing'" in err and "did you mean running" in err and "suspended" in err


def test_relative_times_and_idle_for() -> None:
    now = 2_000_000_000.0
    assert parse_time("7d", now=lambda: now) == int(now - 7 * 86400)
    assert parse_time("30m", now=lambda: now) == int(now - 1800)
    assert parse_time("2024-05-01T00:00:00Z") == 1714521600
    args = cli.build_parser().parse_args(["list", "--idle-for", "12h", "--created-after", "1"])
    query = build_query(args, now)
    assert query["updated_before"] == int(now - 12 * 3600) and query["created_after"] == 1
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["list", "--updated-before", "7 days"])


def _report(code: int) -> RunReport:
    return RunReport({"terminated": 3, "failed": 1}, code, False, None, 1.25, 9)


@pytest.mark.parametrize("fmt", ["console", "auto", "json"])
def test_the_summary_follows_the_log_format(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(_report(1), Settings(log_format=fmt, progress="off"))  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    if fmt == "json":
        assert json.loads(err)["counts"] == {"terminated": 3, "failed": 1}
    else:
        assert err.startswith("done in 1.2 s: 3 terminated, 1 failed; 9 requests; exit 1 ")


def test_a_quiet_clean_run_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(_report(0), Settings(log_level="warning"))
    print_summary(_report(1), Settings(log_level="warning"))
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_the_example_configuration_ships_in_the_package(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert example_toml() == (REPO / "config" / "example.toml").read_text()
    assert cli.main(["config", "--example"]) == 0
    assert capsys.readouterr().out == example_toml()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "data/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["worker"]


def test_plain_lines_cannot_be_forged(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from worker.output.logs import configure_logging

    configure_logging(fmt="console")
    structlog.get_logger("t").warning(
        "session.failed", session_id="devin-a", reason='HTTP 500: x\n00:00:00 info fake "y"'
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert ' session.failed session_id=devin-a reason="HTTP 500: x\\n00:00:00 info fake' in err
