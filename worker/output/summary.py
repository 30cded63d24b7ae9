"""The final word of a run on stderr, in the run's log format: a table on a terminal, one
JSON ``run.summary`` line with ``--log-format json``, one plain line otherwise. A quiet run
(``-q``: level warning or error) that ended clean says nothing more, so cron mails nothing.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import orjson

from worker.output.logs import is_json, write_line
from worker.output.progress import ORDER, console_for
from worker.settings import Settings

if TYPE_CHECKING:
    from worker.outcomes import RunReport


def print_summary(report: RunReport, settings: Settings) -> None:
    """The final word on stderr, in the run's log format: a table on a terminal, one JSON
    line with ``--log-format json``, one plain line otherwise. Quiet runs (``-q``, level
    warning or error) say nothing more when every id reached a final state."""
    if is_json(settings.log_format):
        write_line(sys.stderr, orjson.dumps(summary_event(report, settings)).decode())
    elif settings.log_level in ("warning", "error") and report.exit_code == 0:
        return
    elif settings.progress == "on" or sys.stderr.isatty():
        console_for(settings).print(_summary_table(report, str(settings.results)))
    else:
        write_line(sys.stderr, summary_text(report, str(settings.results)))


def summary_event(report: RunReport, settings: Settings) -> dict[str, Any]:
    return {
        "event": "run.summary",
        "exit_code": report.exit_code,
        "counts": report.counts,
        "requests": report.requests,
        "elapsed_s": round(report.elapsed_s, 3),
        "interrupted": report.interrupted,
        "reason": report.reason,
        "results": str(settings.results),
    }


def summary_text(report: RunReport, results: str) -> str:
    """``done in 12.3 s: 4900 terminated, 2 failed; 5120 requests; exit 1 (...); log r.jsonl``"""
    counts = ", ".join(f"{report.counts[n]} {n}" for n in ORDER if report.counts.get(n))
    meaning = _EXIT_MEANING.get(report.exit_code, "")
    stopped = f"; stopped: {report.reason}" if report.reason else ""
    return (
        f"done in {report.elapsed_s:.1f} s: {counts or 'no sessions'}; "
        f"{report.requests} requests; exit {report.exit_code}"
        f"{f' ({meaning})' if meaning else ''}{stopped}; result log {results}"
    )


_EXIT_MEANING = {
    0: "every id reached a final state",
    1: "some sessions failed or input lines were invalid",
    3: "aborted",
    129: "interrupted",
    130: "interrupted",
    143: "interrupted",
}


def _summary_table(report: RunReport, results: str) -> Any:
    from rich.table import Table

    table = Table(title="devin-terminate summary", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for name in ORDER:
        if report.counts.get(name):
            table.add_row(name, str(report.counts[name]))
    table.add_section()
    elapsed = max(report.elapsed_s, 1e-9)
    table.add_row("requests", f"{report.requests} ({report.requests / elapsed:.1f}/s)")
    table.add_row("elapsed", f"{report.elapsed_s:.1f} s")
    table.add_row("exit code", str(report.exit_code))
    if report.interrupted or report.reason:
        table.add_row("stopped", report.reason or "interrupted")
    table.add_row("result log", results)
    return table
