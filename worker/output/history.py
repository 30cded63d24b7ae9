"""Reading a result log back: what earlier runs settled, sent, and for which org and API.

The resume scan streams the file (a log may hold millions of records); unreadable lines
are counted and ignored. The kinds of record are described in ``worker.output.results``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from worker.input.idset import IdSet
from worker.outcomes import FINAL_OUTCOMES, TERMINAL_STATUSES, refused_unsent

_BLOCK = 1 << 20  # bytes read at once, to count the lines and to scan them


@dataclass(slots=True)
class PriorRuns:
    """What earlier runs in a result log left: ids settled (latest outcome final), ids whose
    DELETE was sent without a recorded answer, and the (org id, base URL) of each run."""

    settled: IdSet = field(default_factory=IdSet)
    # a DELETE went out, no answer was recorded: few (an intent is answered within seconds),
    # so a plain set, whose add/discard cost next to nothing in the scan's hot loop
    sent: set[str] = field(default_factory=set)
    owners: set[tuple[str | None, str | None]] = field(default_factory=set)
    # service users (``GET /v3/self``) whose runs terminated or archived sessions: a token of
    # one of them can terminate, so a 403 it meets is about its session
    terminators: set[str] = field(default_factory=set)
    # with --archive: sessions terminated but not archived (id: status), for the archive
    # call alone; a few (an archive that failed, a session found terminated)
    unarchived: dict[str, str] = field(default_factory=dict)
    principals: dict[str, str] = field(default_factory=dict)  # run id: its service user
    records: int = 0
    bad_lines: list[int] = field(default_factory=list)  # unreadable lines (1-based), torn ones too
    torn_tail: bool = False  # the last line was cut short (a crash mid-write)


def scan_results(path: str | os.PathLike[str], *, archive: bool = False) -> PriorRuns:
    """Read a result log for resume. A missing file (or a device) is an empty history.

    The file is read twice: once to count its lines (at C speed, in blocks), so that the
    table of settled ids is made at its final size and never copied while it fills; then
    a block of lines at a time (`_scan`). ``archive``: the run archives, so a session is
    settled only once archived (or gone); one the log says is terminated but not archived
    is in ``unarchived``, for the archive call alone."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, read in blocks
    except FileNotFoundError:
        return PriorRuns()
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return PriorRuns()
        prior = PriorRuns(settled=IdSet.for_lines(_count_lines(fh)))
        fh.seek(0)
        _scan(prior, fh, archive)
    return prior


def _count_lines(fh: io.BufferedReader) -> int:
    """Lines in the rest of ``fh`` (a last one without its newline counted too)."""
    block = bytearray(_BLOCK)
    lines = 0
    while read := fh.readinto(block):
        lines += block.count(b"\n", 0, read)
    return lines + 1


def _scan(prior: PriorRuns, fh: BinaryIO, archive: bool) -> None:
    """Read every record, a block of lines at a time; the ids found settled wait in a list
    and go into the table together (`IdSet.add_all`), before any is taken out again."""
    pending: list[str] = []
    number = 0
    for lines, ended in _line_blocks(fh):
        prior.records += _scan_lines(prior, lines, number, pending, archive, torn=not ended)
        number += len(lines)
        prior.settled.add_all(pending)
        pending.clear()


def _line_blocks(fh: BinaryIO) -> Iterator[tuple[list[bytes], bool]]:
    """The lines of ``fh`` without their LF, a block's worth at a time, and whether they
    ended with one (only a last line may not: it comes alone)."""
    parts: list[bytes] = []  # the line that goes on past the blocks read so far
    while block := fh.read(_BLOCK):
        lines = block.split(b"\n")
        if len(lines) == 1:  # no line ends in this block
            parts.append(block)
            continue
        if parts:
            lines[0] = b"".join([*parts, lines[0]])
        parts = [lines.pop()]
        yield lines, True
    if last := b"".join(parts):
        yield [last], False


def _scan_lines(
    prior: PriorRuns,
    lines: list[bytes],
    first: int,
    pending: list[str],
    archive: bool,
    *,
    torn: bool,
) -> int:
    """Read the records of ``lines`` (the first is line ``first + 1``) into ``prior``;
    the ids settled go to ``pending``. Returns the count of results read."""
    loads, settle, sent = orjson.loads, pending.append, prior.sent
    records = 0
    for number, line in enumerate(lines, start=first + 1):
        try:
            record = loads(line)
        except orjson.JSONDecodeError:
            _bad_line(prior, number, line, torn=torn)
            continue
        if type(record) is not dict:
            continue
        if record.get("event") != "session.result":
            _scan_other(prior, record)
            continue
        records += 1  # the hot path, inline: a log may hold millions of these
        session_id = record.get("session_id")
        if type(session_id) is not str:
            continue
        final = record.get("outcome") in FINAL_OUTCOMES
        if final and (not archive or _archive_kept(record)):
            settle(session_id)
            if sent:
                sent.discard(session_id)
            if archive:
                prior.unarchived.pop(session_id, None)
        else:
            prior.settled.add_all(pending)  # in the order of the log: added, then taken out
            pending.clear()
            _unsettled(prior, record, session_id, final=final, archive=archive)
    return records


def _unsettled(
    prior: PriorRuns, record: dict[str, Any], session_id: str, *, final: bool, archive: bool
) -> None:
    prior.settled.discard(session_id)
    if final or refused_unsent(record.get("http_status")):
        prior.sent.discard(session_id)
    status = record.get("status")
    if archive and status in TERMINAL_STATUSES and record.get("archived") is False:
        prior.unarchived[session_id] = status  # terminated, the archive still owed
    elif archive:
        prior.unarchived.pop(session_id, None)


def _archive_kept(record: dict[str, Any]) -> bool:
    """A final result that keeps the archive promise: archived, or a session that is gone."""
    return record.get("archived") is True or record.get("outcome") == "not_found"


def _scan_other(prior: PriorRuns, record: dict[str, Any]) -> None:
    event = record.get("event")
    if event == "session.sending":
        session_id = record.get("session_id")
        if type(session_id) is str:
            prior.sent.add(session_id)
    elif event == "run.started":
        org, url = record.get("org_id"), record.get("base_url")
        prior.owners.add((org if type(org) is str else None, url if type(url) is str else None))
        run_id, principal = record.get("run_id"), record.get("principal")
        if type(run_id) is str and type(principal) is str:
            prior.principals[run_id] = principal
    elif event == "run.finished":
        principal = prior.principals.get(str(record.get("run_id")))
        counts = record.get("counts")
        if principal is not None and type(counts) is dict and _terminated_some(counts):
            prior.terminators.add(principal)


def _terminated_some(counts: dict[str, Any]) -> bool:
    return any(type(counts.get(k)) is int and counts[k] > 0 for k in ("terminated", "archived"))


def _bad_line(prior: PriorRuns, number: int, line: bytes, *, torn: bool) -> None:
    """An unreadable line: a blank one is nothing, a torn or garbled one is reported
    (``torn``: it has no line end, only a last line can be so)."""
    if not line.strip():
        return
    prior.bad_lines.append(number)
    prior.torn_tail = torn


def snapshot_lines(fh: BinaryIO) -> Iterator[bytes]:
    """The lines of ``fh`` as it was when this began (its size then): what a run appends
    meanwhile is not read, so a reader sees one consistent moment of a live log."""
    try:
        left = os.fstat(fh.fileno()).st_size
    except (OSError, ValueError):  # not a file with a descriptor: read it as it comes
        yield from fh
        return
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        yield from fh
        return
    for line in fh:
        if len(line) > left:
            return  # written after the snapshot (or being written): not part of it
        left -= len(line)
        yield line


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every readable record of a result log, in order (for tests, demo and tools)."""
    with open(path, "rb") as fh:
        yield from json_objects(fh)


def json_objects(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """The lines that hold a JSON object, parsed, in order; any other line is passed over."""
    for line in lines:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record
