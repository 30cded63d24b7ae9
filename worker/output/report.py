"""What one or many result logs say, read back: counts, the latest record per session, and
the exports of ``devin-terminate report``.

Two views, both needed. ``counts`` adds up every ``session.result`` record and the ids that
were only counted (``skipped``, ``duplicate``, ``deferred`` of ``run.finished``): over whole
runs it equals the sum of their ``run.finished`` counts. ``latest`` keeps the newest record
per session id across all logs (by time, then by position): it says where each session
stands now, so an id that failed one night and was terminated the next is not retried.
Invalid input lines have no id; the newest one per input location is kept.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import orjson

from worker.input.ids import SESSION_ID_PATTERN
from worker.output.history import snapshot_lines

COUNTED_ONLY = ("skipped", "duplicate", "deferred")  # in run.finished, never one by one
CSV_COLUMNS = ("session_id", "outcome", "time", "run_id", "reason")


@dataclass(frozen=True, slots=True)
class Entry:
    """The newest record of one session (or of one invalid input line)."""

    session_id: str | None
    outcome: str
    time: str
    run_id: str
    reason: str | None
    attempts: int
    source: str | None
    input: str | None = None


@dataclass(slots=True)
class Summary:
    logs: list[str]
    runs: set[str] = field(default_factory=set)
    finished_runs: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    latest: dict[str, Entry] = field(default_factory=dict)
    unreadable_lines: int = 0
    # results by (whole second of their time, outcome), when asked for (``report --html``)
    timeline: Counter[tuple[str, str]] | None = None

    def latest_counts(self) -> Counter[str]:
        return Counter(entry.outcome for entry in self.latest.values())

    def select(self, outcomes: Iterable[str]) -> list[Entry]:
        """The latest entries whose outcome is one of ``outcomes``, oldest first."""
        wanted = frozenset(outcomes)
        return sorted(
            (e for e in self.latest.values() if e.outcome in wanted), key=lambda e: e.time
        )


def summarize(paths: Sequence[str | os.PathLike[str]], *, timeline: bool = False) -> Summary:
    """Read every log in ``paths`` (streamed, line by line) into a `Summary`; with
    ``timeline``, count the results of each second too."""
    summary = Summary(logs=[str(p) for p in paths], timeline=Counter() if timeline else None)
    for path in paths:
        with open(path, "rb") as fh:
            for line in snapshot_lines(fh):  # a live log: one consistent moment of it
                _take(summary, line)
    return summary


def _take(summary: Summary, line: bytes) -> None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        summary.unreadable_lines += bool(line.strip())
        return
    if type(record) is not dict:
        summary.unreadable_lines += 1
        return
    event = record.get("event")
    if event == "run.started":
        summary.runs.add(str(record.get("run_id")))
    elif event == "run.finished":
        summary.finished_runs += 1
        counts = record.get("counts") or {}
        for name in COUNTED_ONLY:
            if isinstance(counts.get(name), int):
                summary.counts[name] += counts[name]
    elif event == "session.result":
        _take_result(summary, record)


def _take_result(summary: Summary, record: dict[str, Any]) -> None:
    attempts = record.get("attempts")
    entry = Entry(
        session_id=_text(record.get("session_id")),
        outcome=str(record.get("outcome")),
        time=str(record.get("ts") or ""),
        run_id=str(record.get("run_id") or ""),
        reason=_text(record.get("error")),
        attempts=attempts if isinstance(attempts, int) else 0,
        source=_text(record.get("source")),
        input=_text(record.get("input")),
    )
    summary.counts[entry.outcome] += 1
    if summary.timeline is not None:
        summary.timeline[entry.time[:19], entry.outcome] += 1
    key = entry.session_id or f"\0{entry.source}\0{entry.input}"
    held = summary.latest.get(key)
    if held is None or entry.time >= held.time:
        summary.latest[key] = entry


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def write_ids(entries: Iterable[Entry], out: TextIO) -> int:
    """Bare session ids, one a line: what ``run -`` reads. Ids that are not valid are left
    out (a log edited by hand must not smuggle anything into a run)."""
    written = 0
    for entry in entries:
        if entry.session_id is not None and SESSION_ID_PATTERN.match(entry.session_id):
            out.write(entry.session_id + "\n")
            written += 1
    return written


def write_csv(entries: Iterable[Entry], out: TextIO) -> None:
    """RFC 4180 CSV (csv module, CRLF): session_id, outcome, time, run_id, reason."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.session_id or "", e.outcome, e.time, e.run_id, e.reason or ""])


def as_json(summary: Summary, entries: Iterable[Entry]) -> dict[str, Any]:
    return {
        "logs": summary.logs,
        "runs": len(summary.runs),
        "finished_runs": summary.finished_runs,
        "counts": dict(sorted(summary.counts.items())),
        "latest": dict(sorted(summary.latest_counts().items())),
        "unreadable_lines": summary.unreadable_lines,
        "sessions": [asdict(e) for e in entries],
    }
