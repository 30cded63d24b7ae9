"""The result log: one JSON record per line, appended and flushed per record, opened 0600.

Records are written with one ``os.write`` each on an ``O_APPEND`` descriptor, so a crash
leaves at most one torn last line, which the next run reports and ignores. The pydantic
models below are the published schema of the three kinds of record; the writer emits the
same fields straight from the in-memory ``SessionResult`` (orjson, about a microsecond).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from worker.idset import IdSet
from worker.outcomes import FINAL_OUTCOMES, Outcome, SessionResult


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")
    run_id: str
    ts: str


class RunStarted(_Record):
    event: Literal["run.started"]
    version: str
    org_id: str | None
    archive: bool
    dry_run: bool
    settings: dict[str, Any]
    inputs: list[str]


class SessionRecord(_Record):
    event: Literal["session.result"]
    session_id: str | None
    outcome: Outcome
    archived: bool | None
    status: str | None
    http_status: int | None
    attempts: int
    elapsed_ms: float
    error: str | None
    source: str | None


class RunFinished(_Record):
    event: Literal["run.finished"]
    counts: dict[str, int]
    elapsed_s: float
    exit_code: int
    interrupted: bool


_second: list[Any] = [-1, ""]  # the last whole second formatted: most records share it


def _now() -> str:
    """UTC time to the millisecond, ISO 8601 (``2026-11-28T10:10:44.701Z``)."""
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


class ResultLog:
    """Appends records to ``path``; ``fresh=True`` moves an existing file aside first."""

    def __init__(self, path: str | os.PathLike[str], run_id: str, *, fresh: bool = False) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.moved_to: Path | None = _move_aside(self.path) if fresh else None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(PermissionError):  # a log made looser by hand: tighten it
            os.fchmod(self._fd, 0o600)  # (only its owner may; anyone else leaves it be)
        if _ends_without_newline(self.path):
            os.write(self._fd, b"\n")  # never glue a record onto a torn last line

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, orjson.dumps(record) + b"\n")

    def started(self, **fields: Any) -> None:
        self.write({"event": "run.started", "run_id": self.run_id, "ts": _now(), **fields})

    def result(self, result: SessionResult) -> None:
        record = {
            "event": "session.result",
            "run_id": self.run_id,
            "ts": _now(),
            "session_id": result.session_id,
            "outcome": result.outcome,
            "archived": result.archived,
            "status": result.status,
            "http_status": result.http_status,
            "attempts": result.attempts,
            "elapsed_ms": result.elapsed_ms,
            "error": result.error,
            "source": result.source,
        }
        if result.input is not None:
            record["input"] = result.input
        self.write(record)

    def finished(
        self, *, counts: dict[str, int], elapsed_s: float, exit_code: int, interrupted: bool
    ) -> None:
        self.write(
            {
                "event": "run.finished",
                "run_id": self.run_id,
                "ts": _now(),
                "counts": counts,
                "elapsed_s": round(elapsed_s, 3),
                "exit_code": exit_code,
                "interrupted": interrupted,
            }
        )

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def _move_aside(path: Path) -> Path | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    target = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
    path.rename(target)
    return target


def _ends_without_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


@dataclass(slots=True)
class PriorRuns:
    """What earlier runs in a result log settled: ids whose latest outcome is final."""

    settled: IdSet = field(default_factory=IdSet)
    records: int = 0
    bad_lines: list[int] = field(default_factory=list)  # unreadable lines (1-based), torn ones too
    torn_tail: bool = False  # the last line was cut short (a crash mid-write)


def scan_results(path: str | os.PathLike[str]) -> PriorRuns:
    """Read a result log for resume. A missing file is an empty history."""
    prior = PriorRuns()
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, iterated line by line
    except FileNotFoundError:
        return prior
    loads, settle = orjson.loads, prior.settled.add
    with fh:
        for number, line in enumerate(fh, start=1):
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                _bad_line(prior, number, line)
                continue
            prior.torn_tail = False
            if type(record) is dict and record.get("event") == "session.result":
                prior.records += 1
                session_id = record.get("session_id")
                if type(session_id) is not str:
                    continue
                if record.get("outcome") in FINAL_OUTCOMES:
                    settle(session_id)
                else:
                    prior.settled.discard(session_id)
    return prior


def _bad_line(prior: PriorRuns, number: int, line: bytes) -> None:
    """An unreadable line: a blank one is nothing, a torn or garbled one is reported."""
    if not line.strip():
        return
    prior.bad_lines.append(number)
    prior.torn_tail = not line.endswith(b"\n")


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every readable record of a result log, in order (for tests, demo and tools)."""
    with open(path, "rb") as fh:
        for line in fh:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record
