"""``devin-terminate enqueue INPUT... --redis URL``: validated session ids onto the queue."""

from __future__ import annotations

import argparse
import sys


def main(args: argparse.Namespace) -> int:
    from worker.fleet.connect import mask_url
    from worker.fleet.enqueue import enqueue
    from worker.fleet.options import fleet_options
    from worker.output.logs import configure_logging

    configure_logging(fmt=args.log_format or "auto")
    options = fleet_options(args)
    report = enqueue(options, args.inputs, column=args.column)
    print(
        f"enqueued {report.enqueued} ids on {options.stream} at {mask_url(options.url)}"
        f" ({report.invalid} invalid lines, {report.duplicate} duplicates)",
        file=sys.stderr,
    )
    return report.exit_code
