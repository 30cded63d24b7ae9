"""``devin-terminate report RESULTS...``: what result logs say, and exports of it.

    report results.jsonl                          counts, then the failed and invalid entries
    report a.jsonl b.jsonl --format json          the same as one JSON document
    report r.jsonl --outcome archived --format csv > archived.csv
    report r.jsonl --outcome failed --format ids | devin-terminate run -

The entries are the latest record of each session across every log given, so an id that
failed once and was terminated later is not listed as failed. The counts add up every
record of every run (and the ids only counted: skipped, duplicate, deferred), so they equal
the sum of the runs' ``run.finished`` counts.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from worker.output.report import Entry, Summary

HELP = "counts by outcome of result logs; list or export sessions by outcome"
_FORMATS = ("table", "json", "csv", "ids")
_SHOWN = ("failed", "invalid")  # what table and json list when no --outcome is given


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from worker.fleet.options import add_connection_arguments

    parser.add_argument("results", nargs="*", metavar="RESULTS", help="result logs (JSONL)")
    add_connection_arguments(parser, required=False)
    parser.add_argument(
        "--outcome",
        action="append",
        metavar="NAME",
        help="only sessions whose latest outcome is NAME (repeatable, or a,b): "
        "terminated, archived, already_terminated, not_found, failed, cancelled, invalid, "
        "would_terminate. Default: failed and invalid for table/json, all for csv/ids",
    )
    parser.add_argument(
        "--format",
        choices=_FORMATS,
        default="table",
        help="table (default), json, csv (session_id,outcome,time,run_id,reason) or ids",
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="write one self-contained page instead: counts, the listed sessions with their "
        "reasons, a timeline of results per second",
    )
    from worker.commands.options import add_verbosity

    add_verbosity(parser)
    parser.epilog = "Retry what failed: report r.jsonl --outcome failed --format ids | run -"


def main(args: argparse.Namespace) -> int:
    """0 when the report was written; 2 when a log cannot be read or an outcome is unknown."""
    import orjson

    from worker.commands.options import log_level_of
    from worker.errors import InputError
    from worker.output.logs import configure_logging
    from worker.output.report import as_json, summarize, write_csv, write_ids

    configure_logging(level=log_level_of(args) or "info")
    outcomes = _outcomes(args.outcome, args.format)
    if args.redis and args.html:
        raise InputError("--html reads result logs, not --redis")
    if args.redis:
        from worker.fleet.report import report_command

        return report_command(args, outcomes)
    if not args.results:
        raise InputError("report needs RESULTS (result logs) or --redis URL")
    try:
        summary = summarize(args.results, timeline=bool(args.html))
    except OSError as exc:
        raise InputError(f"cannot read the result log {exc.filename}: {exc.strerror}") from None
    entries = summary.select(outcomes)
    if args.html:
        return _html(args.html, summary, entries)
    out = sys.stdout
    if args.format == "ids":
        write_ids(entries, out)
    elif args.format == "csv":
        write_csv(entries, out)
    elif args.format == "json":
        out.write(orjson.dumps(as_json(summary, entries)).decode() + "\n")
    else:
        _table(summary, entries, out)
    out.flush()
    return 0


def _html(path: str, summary: Summary, entries: list[Entry]) -> int:
    from pathlib import Path

    from worker.errors import InputError
    from worker.output.html import render_page

    page = render_page(summary, entries, "devin-terminate report")
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the page {path}: {exc.strerror}") from None
    return 0


def _outcomes(given: list[str] | None, fmt: str) -> tuple[str, ...]:
    from worker.commands.options import did_you_mean
    from worker.errors import ConfigError
    from worker.outcomes import OUTCOMES

    if not given:
        return _SHOWN if fmt in ("table", "json") else OUTCOMES
    names = tuple(name.strip() for text in given for name in text.split(",") if name.strip())
    for name in names:
        if name not in OUTCOMES:
            raise ConfigError(
                f"--outcome {name!r} is not an outcome{did_you_mean(name, OUTCOMES)}; "
                f"known: {', '.join(OUTCOMES)}"
            )
    return names


def _table(summary: Summary, entries: list[Entry], out: TextIO) -> None:
    from worker.outcomes import OUTCOMES
    from worker.output.report import COUNTED_ONLY

    latest = summary.latest_counts()
    out.write(
        f"{len(summary.logs)} result log(s), {len(summary.runs)} run(s), "
        f"{len(summary.latest)} distinct session(s)\n"
    )
    out.write(f"{'outcome':<20}{'records':>10}{'latest':>10}\n")
    for name in (*OUTCOMES, *COUNTED_ONLY):
        if summary.counts.get(name) or latest.get(name):
            shown = str(latest[name]) if name in OUTCOMES else "-"
            out.write(f"{name:<20}{summary.counts[name]:>10}{shown:>10}\n")
    if summary.unreadable_lines:
        out.write(f"unreadable lines: {summary.unreadable_lines}\n")
    for entry in entries:
        out.write(_entry_line(entry) + "\n")


def _entry_line(entry: Entry) -> str:
    """One line whatever the log holds: control characters and newlines become spaces."""
    who = entry.session_id or f"{entry.source or '?'} {entry.input or ''}".strip()
    reason = f": {entry.reason}" if entry.reason else ""
    tries = f" ({entry.attempts} attempts)" if entry.attempts > 1 else ""
    text = f"{entry.outcome} {who}{reason}{tries} [run {entry.run_id}, {entry.time}]"
    return "".join(c if c.isprintable() else " " for c in text)[:500]
