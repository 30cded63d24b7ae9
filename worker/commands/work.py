"""``devin-terminate work --redis URL``: drain the shared queue as one worker of a fleet."""

from __future__ import annotations

import argparse

from worker.commands.options import EXIT_CODES

PARSER = {
    "help": "drain the Redis queue as one worker of a fleet, under one org-wide rate limit",
    "description": "Terminate the sessions queued with `enqueue`, with any number of workers "
    "on any number of machines sharing one queue and one rate limit.",
    "epilog": EXIT_CODES + "\n  3    also: Redis stayed unreachable past --redis-timeout",
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from worker.fleet.options import add_work_arguments

    add_work_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from worker.commands.options import settings_from
    from worker.fleet.options import fleet_options
    from worker.fleet.work import run_worker
    from worker.output.summary import print_summary

    options = fleet_options(args)
    settings = settings_from(args)
    report = run_worker(settings, options)
    print_summary(report, settings)
    return report.exit_code
