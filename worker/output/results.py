"""The result log: one JSON record per line, appended and flushed per record, opened 0600.

Records are written with one ``os.write`` each on an ``O_APPEND`` descriptor (short writes
are completed), so a crash leaves at most one torn last line, which the next run reports
and ignores. Every record passes ``worker.output.redact`` on its way out. A write that fails
(disk full, I/O error) raises ``ResultLogError``: the run stops sending. The pydantic models
of ``worker.output.records`` are the published schema of the four kinds of record; the writer
emits the same fields straight from the in-memory ``SessionResult`` (orjson, about a
microsecond).

Before each record the log is checked (`ResultLog.check`): still the file opened (same
device and inode at its path), at least as long as what was written. A log deleted,
renamed, replaced or truncated under the run raises ``ResultLogError`` there, so the run
stops, and no DELETE goes out without a log to record it. In an event loop the path is
looked at once per turn of the loop: the records of one turn (the answers read together,
the intents of the sessions they let go: about seven at 16 in flight) are written without
a wait between them, so one ``stat`` speaks for all of them.

``session.sending`` is the durable intent: written just before the first DELETE of a session
is sent, so that a run killed before the answer came leaves a trace, and the next run
reports a 409 for that session as terminated by this tool, not ``already_terminated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from worker.errors import ResultLogError
from worker.outcomes import SessionResult
from worker.output.history import PriorRuns, read_records, scan_results
from worker.output.logpath import open_error
from worker.output.redact import scrub, scrub_bytes

__all__ = [
    "PriorRuns",
    "ResultLog",
    "read_records",
    "scan_results",
]

Writer = Callable[[int, bytes], int]  # os.write's shape: the tests inject a failing one


_second: list[Any] = [-1, ""]  # the last whole second formatted: most records share it
# the fraction's text, made once (a fraction below 1, times 1000, stays below 1000)
_MILLIS = [f".{ms:03d}Z" for ms in range(1000)]


def _now() -> str:
    """UTC time to the millisecond, ISO 8601 (``2026-11-28T10:10:44.701Z``)."""
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
    stamp: str = _second[1]
    return stamp + _MILLIS[int((now - whole) * 1000)]


class ResultLog:
    """Appends records to ``path``; ``fresh=True`` moves an existing file aside first."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        run_id: str,
        *,
        fresh: bool = False,
        writer: Writer = os.write,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._writer = writer
        self._torn = False  # a failed write left part of a line: start the next on a fresh one
        self.broken = False  # a write has failed: the run was told and stopped
        try:
            self.moved_to: Path | None = _move_aside(self.path) if fresh else None
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise open_error(self.path, exc) from None
        with contextlib.suppress(OSError):  # a log made looser by hand: tighten it
            os.fchmod(self._fd, 0o600)  # (only its owner may; anyone else leaves it be)
        self._torn = _ends_without_newline(self.path, self._fd)  # never glue onto a torn line
        opened = os.fstat(self._fd)
        # a regular file is watched (`check`); a device or a pipe is not a file that can go
        self._identity = (opened.st_dev, opened.st_ino) if stat.S_ISREG(opened.st_mode) else None
        self._size = opened.st_size  # the file holds at least this much: all we wrote
        self._gone: str | None = None  # what happened to the file, once it is not ours
        self._seen = False  # the path was found ours in this turn of the event loop

    def check(self) -> None:
        """Raise ``ResultLogError`` unless ``path`` is still the file opened, holding at least
        what was written to it: deleted, renamed, replaced or truncated by someone else, it
        would record nothing that a rerun can find (and the rerun would send it all again)."""
        if self._identity is None or self._seen:
            return
        if self._gone is None:
            try:
                now = os.stat(self.path)
            except FileNotFoundError:
                now = None
            self._gone = _changed(self._identity, self._size, now, self._fd)
            if self._gone is None:
                self._seen_this_turn()
        if self._gone is not None:
            self.broken = True
            raise ResultLogError(
                f"the result log {self.path} was {self._gone} during the run; stopped sending "
                "(nothing more can be recorded where a rerun would find it)"
            )

    def _seen_this_turn(self) -> None:
        """Outside an event loop (a thread, the tests) every record looks again."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._seen = True
        loop.call_soon(setattr, self, "_seen", False)  # the next turn looks again

    def write(self, record: dict[str, Any]) -> None:
        """One record, redacted, whole or not at all as far as the reader can tell; raises
        ``ResultLogError`` when the file cannot take it."""
        self._append(scrub_bytes(orjson.dumps(record) + b"\n"))

    def _append(self, data: bytes) -> None:
        self.check()
        if self._torn:
            data = b"\n" + data
        try:
            written = self._writer(self._fd, data)
            while written < len(data):  # a short write: the disk is filling up
                self._torn = True
                if written <= 0:
                    raise OSError(errno.EIO, "the write made no progress")
                self._size += written
                data = data[written:]
                written = self._writer(self._fd, data)
            self._size += written
        except OSError as exc:
            self.broken = True
            raise ResultLogError(
                f"cannot write the result log {self.path}: {exc.strerror or exc}; "
                "stopped sending (free space or fix the file, then rerun to resume)"
            ) from None
        self._torn = False

    def sending(self, session_id: str) -> None:
        """The durable intent: a DELETE for ``session_id`` is about to be sent. Nothing in it
        needs redaction: our run id, the clock, and an id that passed validation."""
        record = {
            "event": "session.sending",
            "run_id": self.run_id,
            "ts": _now(),
            "session_id": session_id,
        }
        self._append(orjson.dumps(record) + b"\n")

    def started(self, **fields: Any) -> None:
        self.write({"event": "run.started", "run_id": self.run_id, "ts": _now(), **fields})

    def result(self, result: SessionResult) -> None:
        """A session's result. Its text fields pass the redaction one by one (cheaper than
        scanning the whole line); the rest are numbers, outcomes and validated ids."""
        record = {
            "event": "session.result",
            "run_id": self.run_id,
            "ts": _now(),
            "session_id": result.session_id,
            "outcome": result.outcome,
            "archived": result.archived,
            "status": _clean(result.status),
            "http_status": result.http_status,
            "attempts": result.attempts,
            "elapsed_ms": result.elapsed_ms,
            "error": _clean(result.error),
            "source": _clean(result.source),
        }
        if result.input is not None:
            record["input"] = scrub(result.input)
        self._append(orjson.dumps(record) + b"\n")

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
            with contextlib.suppress(OSError):  # a full disk or a device: nothing more to do
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def _changed(
    identity: tuple[int, int], size: int, now: os.stat_result | None, fd: int
) -> str | None:
    """What happened to the log opened as ``identity`` that ``now`` (its path) shows; None:
    nothing."""
    if now is not None and (now.st_dev, now.st_ino) == identity:
        return "truncated" if now.st_size < size else None
    if now is not None:
        return "replaced by another file"
    return "deleted" if os.fstat(fd).st_nlink == 0 else "renamed or moved"


def _clean(text: str | None) -> str | None:
    return text if text is None else scrub(text)


def _move_aside(path: Path) -> Path | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    target = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
    path.rename(target)
    return target


def _ends_without_newline(path: Path, fd: int) -> bool:
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # /dev/null, a device: nothing to read back
        return False
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"
