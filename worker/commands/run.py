"""``devin-terminate run INPUT...``: terminate the sessions listed in the inputs (its
settings flags are added by cli from the table)."""

from __future__ import annotations

import argparse

from worker.commands.options import EXIT_CODES

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
    from worker.output.summary import print_summary
    from worker.run.job import run_job

    settings = settings_from(args)
    with progress_for(settings) as tally:
        report = run_job(settings, args.inputs, confirm=confirm_on_terminal, tally=tally)
    print_summary(report, settings)
    return report.exit_code
