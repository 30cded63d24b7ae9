"""``devin-terminate work --redis URL``: drain the shared queue as one worker of a fleet."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    from worker.cli import settings_from
    from worker.fleet.options import fleet_options
    from worker.fleet.work import run_worker
    from worker.output.summary import print_summary

    options = fleet_options(args)
    settings = settings_from(args)
    report = run_worker(settings, options)
    print_summary(report, settings)
    return report.exit_code
