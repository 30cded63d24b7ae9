"""``devin-terminate enqueue INPUT... --redis URL``: validated session ids onto the queue."""

from __future__ import annotations

import argparse
import sys

PARSER = {
    "help": "put validated session ids on a Redis stream for `work` ('-' reads stdin)",
    "description": "Validate the ids of INPUT (.csv, .txt, .jsonl; '-': stdin) and put them "
    "on the queue. Invalid lines are reported with file:line and not enqueued.",
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from worker.fleet.options import add_connection_arguments

    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="files of session ids")
    add_connection_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from worker.commands.options import log_level_of
    from worker.fleet.connect import mask_url
    from worker.fleet.enqueue import enqueue
    from worker.fleet.options import fleet_options
    from worker.output.logs import configure_logging

    level = log_level_of(args) or "info"
    configure_logging(level=level, fmt=args.log_format or "auto")
    options = fleet_options(args)
    report = enqueue(options, args.inputs, column=args.column, encoding=args.encoding)
    if level in ("warning", "error") and not report.exit_code:
        return 0  # -q: a clean enqueue says nothing
    print(
        f"enqueued {report.enqueued} ids on {options.stream} at {mask_url(options.url)}"
        f" ({report.invalid} invalid lines, {report.duplicate} duplicates)",
        file=sys.stderr,
    )
    return report.exit_code
