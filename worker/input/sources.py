"""Input sources: files, stdin and pipes, streamed into `InputItem` values.

Every record is accounted for. A blank line, a ``#`` comment or a CSV header row yields
nothing; the records of a result log yield, once the log has been read to its end, the
ids whose latest result has an outcome selected (see `worker.input.formats.JsonlFormat`);
every other record yields one item, valid or invalid, with its ``file:line`` (the
physical line where the record starts). A text
or JSONL record is one physical line; a CSV record goes on over the lines of a quoted
field (`worker.input.csvrecords`). Lines end in LF, CRLF or a lone CR. A leading
byte-order mark is dropped on any line (files joined with ``cat`` carry one mid-file).
Reading is in bounded blocks, so memory stays flat however long the input is (a result
log holds an entry per session id while it is read); a line
longer than `MAX_LINE_BYTES` (text, JSONL) or a record longer than `MAX_RECORD_BYTES`
(CSV) is reported without being kept.

Inputs are opened once (`worker.input.opening`), so a pipe or a FIFO is never read twice.
Duplicates are left to the pipeline, which counts them.
"""

from __future__ import annotations

import itertools
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

from worker.input.csvfile import CsvReader
from worker.input.csvrecords import clean_start
from worker.input.formats import Format, JsonlFormat, TextFormat, for_path, sniff
from worker.input.items import (
    MAX_LINE_BYTES,
    UNREADABLE,
    InputItem,
    csv_items,
    line_item,
    run_items,
)
from worker.input.lines import MAX_RECORD_BYTES, IdRun, Line, LineStream
from worker.input.opening import Source, open_sources, rewind

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_RECORD_BYTES",
    "InputItem",
    "check_inputs",
    "count_distinct_ids",
    "count_sources",
    "count_up_to",
    "read_entries",
    "read_inputs",
    "read_sources",
]


def read_inputs(
    inputs: Sequence[str],
    *,
    column: str | None = None,
    stdin: BinaryIO | None = None,
    outcomes: Iterable[str] | None = None,
    encoding: str | None = None,
) -> Iterator[InputItem]:
    """Yield one `InputItem` per record holding something, input after input, in order.

    No inputs, or ``-``, reads ``stdin`` (binary; default: the process's stdin, read
    unbuffered through a duplicate of its descriptor). Named files are parsed by
    extension (``.csv``/``.tsv``, ``.jsonl``/``.ndjson``, ``.txt``); stdin, pipes and
    other names are sniffed. Raises `InputError` when an input cannot be read, ``column``
    is not in a CSV header, or no CSV column holds ids. ``outcomes`` selects the records
    of a result log given as input; ``encoding`` what the inputs are written in.
    """
    with open_sources(inputs, stdin=stdin, encoding=encoding) as sources:
        yield from read_sources(sources, column=column, outcomes=outcomes)


def read_sources(
    sources: Sequence[Source], *, column: str | None = None, outcomes: Iterable[str] | None = None
) -> Iterator[InputItem]:
    """`read_inputs` over inputs already opened by `worker.input.opening.open_sources`."""
    for entry in read_entries(sources, column=column, outcomes=outcomes):
        if isinstance(entry, IdRun):
            yield from run_items(entry)
        else:
            yield entry


def read_entries(
    sources: Sequence[Source],
    *,
    column: str | None = None,
    outcomes: Iterable[str] | None = None,
    runs: bool = True,
) -> Iterator[InputItem | IdRun]:
    """`read_sources`, with the runs of plain ids it meets as they are (`IdRun`: each of
    its lines holds exactly a valid id), for a reader that takes ids by the thousand.
    ``runs=False``: none, every record read line by line (what the runs must agree with)."""
    for source in sources:
        fmt = None if source.name == "-" else for_path(source.name, column, outcomes)
        lines = LineStream(source.stream, source.name, encoding=source.encoding, runs=runs)
        yield from _read_stream(lines, source.name, fmt, column, outcomes)


def check_inputs(
    inputs: Sequence[str], *, column: str | None = None, encoding: str | None = None
) -> None:
    """Raise `InputError` unless every named input can be opened (and a CSV's column
    found); stdin is left alone."""
    names = [name for name in inputs if name != "-"]
    if not names:
        return
    with open_sources(names, encoding=encoding) as sources:
        check_sources([s for s in sources if s.rereadable], column=column)


def check_sources(sources: Sequence[Source], *, column: str | None = None) -> None:
    """Read each rereadable source up to its first record, then rewind: a CSV's column of
    ids is chosen there, so a missing or unknown column is reported before any request
    instead of mid-run."""
    for source in sources:
        if source.rereadable:
            next(read_sources([source], column=column), None)
            rewind(source)


def count_distinct_ids(inputs: Sequence[str], *, column: str | None = None) -> tuple[int, int]:
    """Return (distinct valid ids, invalid records) over named files, streamed.

    Stdin, which may be readable only once, is refused with `ValueError`.
    """
    if not inputs or "-" in inputs:
        raise ValueError("count_distinct_ids reads named files only; stdin can be read once")
    with open_sources(inputs) as sources:
        return count_sources(sources, column=column)


def count_up_to(
    source: Source,
    limit: int,
    *,
    column: str | None = None,
    outcomes: Iterable[str] | None = None,
) -> int:
    """Distinct valid ids of ``source``, read only until more than ``limit`` are seen
    (``limit + 1`` is returned then): an endless stream is refused at once. Holds the ids
    seen, so memory grows with ``limit``, not with the stream."""
    seen: set[str] = set()
    for item in read_sources([source], column=column, outcomes=outcomes):
        if item.session_id is not None:
            seen.add(item.session_id)
            if len(seen) > limit:
                break
    return len(seen)


def count_sources(
    sources: Sequence[Source],
    *,
    column: str | None = None,
    outcomes: Iterable[str] | None = None,
    pause: tuple[int, float] | None = None,
) -> tuple[int, int]:
    """Return (distinct valid ids, invalid records) of rereadable sources, and rewind them.

    Ids are held as 64-bit hashes in packed arrays, about 8 bytes a distinct id instead
    of a string in a set; the chance of two distinct ids colliding among a million is
    about 3e-8. A source that cannot be read twice raises `ValueError`. ``pause`` = (n, s):
    sleep ``s`` seconds for every ``n`` records read (after each entry: a run of plain ids
    counts its ids), to leave the GIL to other threads.
    """
    if not all(source.rereadable for source in sources):
        raise ValueError("count_sources needs inputs that can be read twice (spool them)")
    hashes = _Hashes()
    invalid = seen = 0
    for entry in read_entries(sources, column=column, outcomes=outcomes):
        if isinstance(entry, IdRun):  # plain ids, a block at a time: no item made for each
            hashes.add_all(map(hash, entry.ids))
            read = len(entry.ids)
        else:
            if entry.session_id is None:
                invalid += 1
            else:
                hashes.add_all((hash(entry.session_id),))
            read = 1
        if pause is not None:
            every, seconds = pause
            for _ in range((seen + read) // every - seen // every):
                time.sleep(seconds)
        seen += read
    for source in sources:
        rewind(source)
    return hashes.distinct(), invalid


class _Hashes:
    """Distinct 64-bit hashes in 256 packed arrays (by the low byte), each deduplicated
    whenever it has doubled: a set is only ever made of one array's share."""

    def __init__(self) -> None:
        self._arrays = [array("q") for _ in range(256)]
        self._compact_at = [1024] * 256

    def add_all(self, digests: Iterable[int]) -> None:
        arrays, compact_at = self._arrays, self._compact_at
        for digest in digests:
            low = digest & 0xFF
            hashes = arrays[low]
            hashes.append(digest)
            if len(hashes) >= compact_at[low]:
                arrays[low] = hashes = array("q", set(hashes))
                compact_at[low] = max(1024, 2 * len(hashes))

    def distinct(self) -> int:
        return sum(len(set(hashes)) for hashes in self._arrays)


def _read_stream(
    stream: LineStream,
    name: str,
    fmt: Format | None,
    column: str | None,
    outcomes: Iterable[str] | None,
) -> Iterator[InputItem | IdRun]:
    sniffing = fmt is None or isinstance(fmt, TextFormat)
    lines = stream.lines
    for line in lines:
        if sniffing:  # decide on the first line holding something readable
            text = _sniffable(line)
            if text is not None:
                sniffing = False
                fmt = sniff(text, name, column, outcomes, text_only=fmt is not None)
        if isinstance(fmt, CsvReader):
            yield from csv_items(name, fmt.rows(itertools.chain([line], lines), stream))
            return
        if isinstance(fmt, JsonlFormat):
            fmt.line = line[0]
        item = line_item(name, line, fmt or UNREADABLE)
        if item is not None:
            yield item
        if stream.boundary and type(fmt) is TextFormat and not sniffing:
            yield from stream.runs()  # each of their lines would give its id
    if isinstance(fmt, JsonlFormat):  # a result log's ids, once its history is known
        for source, session_id, uncertain in fmt.log_items(name):
            yield InputItem(source, session_id, uncertain=uncertain)


def _sniffable(line: Line) -> str | None:
    """The text of a line that can decide the format, or None."""
    _, data, overlong, _ = line
    text = clean_start(data)
    if overlong or not text or text[0] == 0x23 or b"\x00" in text:
        return None
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return None
