"""``devin-terminate run INPUT...``: terminate the sessions listed in the inputs (its
settings flags are added by cli from the table)."""

from __future__ import annotations

import argparse
import contextlib
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from worker.commands.options import EXIT_CODES

if TYPE_CHECKING:
    from worker.output.textfile import RunMetricsFile
    from worker.settings import Settings

HELP = "terminate the sessions listed in INPUT files ('-' or none: stdin)"


PARSER = {
    "help": HELP,
    "description": "Terminate the sessions listed in INPUT (.csv, .txt, .jsonl; '-'/none: stdin).",
    "epilog": EXIT_CODES,
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="files of session ids; '-' for stdin"
    )


def main(args: argparse.Namespace) -> int:
    from worker.commands.options import settings_from
    from worker.output.confirm import confirm_on_terminal
    from worker.output.progress import progress_for
    from worker.run.job import run_job

    settings = settings_from(args)
    _input_given(args.inputs)
    with _metrics_file(settings) as night, progress_for(settings) as tally:
        exit_hook = None
        if night is not None:
            night.tally, exit_hook = tally, night.exit
        report = run_job(
            settings, args.inputs, confirm=confirm_on_terminal, tally=tally, on_exit=exit_hook
        )
        if night is not None:
            night.report = report
    from worker.output.summary import print_summary  # after the run: not at start-up

    print_summary(report, settings)
    return report.exit_code


def _metrics_file(settings: Settings) -> AbstractContextManager[RunMetricsFile | None]:
    """The ``--metrics-file`` writer (written on every way out), or nothing."""
    if settings.metrics_file is None:
        return contextlib.nullcontext()
    from worker.output.textfile import RunMetricsFile, check_metrics_path

    check_metrics_path(settings.metrics_file)
    return RunMetricsFile(settings.metrics_file)


def _input_given(inputs: list[str]) -> None:
    """No INPUT with stdin a terminal: a person forgot the file; waiting for typed ids
    would look like a hang. ``-`` still reads what is typed."""
    import sys

    from worker.errors import ConfigError

    if not inputs and sys.stdin is not None and sys.stdin.isatty():
        raise ConfigError(
            "usage: devin-terminate run INPUT... (a file of session ids), or pipe them in: "
            "devin-terminate list ... | devin-terminate run -; '-' reads ids typed here"
        )
