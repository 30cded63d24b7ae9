"""``devin-terminate work --redis URL``: drain the shared queue as one worker of a fleet."""

from __future__ import annotations

import argparse

from worker.commands.options import EXIT_CODES

PARSER = {
    "help": "drain the Redis queue as one worker of a fleet, under one org-wide rate limit",
    "description": "Terminate the sessions queued with `enqueue`, with any number of workers "
    "on any number of machines sharing one queue and one rate limit.",
    "epilog": EXIT_CODES
    + "\n  2    also: Redis refused the password or ACL, Redis older than 6.2, or another"
    "\n       live worker has this --consumer (do not restart: fix the configuration)"
    "\n  3    also: Redis stayed unreachable past --redis-timeout, or the queue was lost"
    "\n       (restart later; a lost queue needs the ids enqueued again)"
    "\n  4    also: another worker writes this --results: give each worker its own",
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from worker.fleet.options import add_work_arguments

    add_work_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from worker.commands.options import settings_from
    from worker.errors import LockError
    from worker.fleet.options import fleet_options
    from worker.fleet.work import run_worker
    from worker.output.summary import print_summary

    options = fleet_options(args)
    settings = settings_from(args)
    try:
        report = run_worker(settings, options)
    except LockError as exc:  # most often a second worker started in the same directory
        raise LockError(
            f"{exc} Each worker of a fleet writes its own result log (e.g. --results "
            "worker-2.jsonl, or worker-%i.jsonl in a systemd template)."
        ) from None
    print_summary(report, settings)
    return report.exit_code
