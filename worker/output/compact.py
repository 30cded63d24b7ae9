"""Bounded result logs: ``compact`` rewrites a log keeping, for the last ``keep`` seconds,
the run records, the latest result of each session and every intent (``session.sending``)
that no final result followed, and nothing older.

A nightly job appends a few thousand records a night; without this the log, and the
resume scan that reads it whole before every run, grow by that much every night. Compacted
every night, both stay the size of the retention window. What resume needs survives: a
session's latest result decides whether it is skipped, an intent without a final answer
makes a 409 on the rerun this tool's termination, and anything older than the window
is either settled long ago (the API no longer lists it as running) or is tried again,
which is safe. The rewrite goes to a temporary file beside the log (mode 0600, fsynced)
that replaces it atomically, so a crash leaves the old log or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from worker.outcomes import FINAL_OUTCOMES

_RUN_EVENTS = frozenset({"run.started", "run.finished"})


@dataclass(frozen=True, slots=True)
class Compacted:
    records_before: int
    records_after: int
    bytes_before: int
    bytes_after: int


def iso_cutoff(keep_s: float, now: float | None = None) -> str:
    """The ISO 8601 time ``keep_s`` before ``now``, comparable as text with record ``ts``."""
    when = (time.time() if now is None else now) - keep_s
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when))


def compact(path: str | os.PathLike[str], keep_s: float, *, now: float | None = None) -> Compacted:
    """Rewrite ``path`` in place; the caller holds the result log's lock. A symlink is
    followed: the file it names is rewritten, and the link stays a link."""
    path = Path(os.path.realpath(path))
    cutoff = iso_cutoff(keep_s, now)
    keep, records = _lines_to_keep(path, cutoff)
    before = path.stat().st_size
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
            for number, line in enumerate(src):
                if number in keep:
                    out.write(line if line.endswith(b"\n") else line + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Compacted(records, len(keep), before, path.stat().st_size)


def _lines_to_keep(path: Path, cutoff: str) -> tuple[set[int], int]:
    """Line numbers (0-based) to keep, and how many records the log held."""
    runs: set[int] = set()
    latest: dict[str, int] = {}  # the line of each session's latest result
    pending: dict[str, list[int]] = {}  # intents that no final result followed yet
    records = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # torn or garbled: resume ignores it, so does the compacted log
            if type(record) is not dict:
                continue
            records += 1
            ts = record.get("ts")
            if not isinstance(ts, str) or ts < cutoff:
                continue
            event = record.get("event")
            if event in _RUN_EVENTS:
                runs.add(number)
            elif event == "session.result":
                key = _key(record)
                latest[key] = number
                if record.get("outcome") in FINAL_OUTCOMES:
                    pending.pop(key, None)
            elif event == "session.sending" and isinstance(record.get("session_id"), str):
                pending.setdefault(_key(record), []).append(number)
    intents = {number for numbers in pending.values() for number in numbers}
    return runs | intents | set(latest.values()), records


def _key(record: dict[str, object]) -> str:
    session_id = record.get("session_id")
    if isinstance(session_id, str):
        return session_id
    return f"\0{record.get('source')}\0{record.get('input')}"
