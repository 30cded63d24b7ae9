"""CSV records over physical lines, as RFC 4180 reads them: a quoted field may hold newlines.

A record starts on a line holding something (not blank) and goes on
over the next lines while a quoted field is open, so an id on a line inside another
field (a title holding ``"\\ndevin-x,``) is never read as a row of its own. The quoting
rules are the ``csv`` module's, which then splits the whole record into cells: a quote
opens a field only at its start, ``""`` inside is a quote, text after a closing quote
makes the record invalid.

A record is bounded by `MAX_RECORD_BYTES`: a quoted field still open beyond that is
reported once, invalid, at the line where it began, and its lines are skipped (kept by
no one) until the field closes, so nothing inside it is ever taken for an id.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from worker.input.lines import MAX_RECORD_BYTES, IdRun, Line, LineStream

__all__ = [
    "DELIMITERS",
    "Record",
    "clean_start",
    "is_comment",
    "records",
    "run_records",
    "sniff_delimiter",
    "starts_record",
]

DELIMITERS = (",", "\t", ";", "|")
_BOM = b"\xef\xbb\xbf"
_QUOTED = re.compile(rb'"(?:[^"]|"")*"')

# (first line number, cells or None, the reason when None, the record's first bytes)
Record = tuple[int, list[str] | None, str | None, bytes]


def sniff_delimiter(first_line: bytes) -> str:
    """The delimiter of a CSV file from its first record's line: the candidate seen most
    often outside quotes, ``,`` when none is (one column)."""
    bare = _QUOTED.sub(b"", first_line)
    counts = [bare.count(d.encode()) for d in DELIMITERS]
    best = max(range(len(DELIMITERS)), key=lambda i: (counts[i], -i))
    return DELIMITERS[best] if counts[best] else ","


def clean_start(line: bytes, spaces: bytes = b" \t\x0b\x0c") -> bytes:
    """The text of a line that may start a record: without surrounding spaces and BOM."""
    data = line.strip(spaces)
    if data.startswith(_BOM):
        data = data[len(_BOM) :].strip(spaces)
    return data


def is_comment(record: Record) -> bool:
    """Whether a record starts with ``#``: a comment, unless its id column holds an id."""
    return record[3][:1] == b"#"


def starts_record(line: bytes) -> bool:
    """Whether a line between records holds something: not blank, not a ``#`` comment."""
    data = clean_start(line)
    return bool(data) and data[0] != 0x23


def records(
    lines: Iterator[Line], delimiter: str, runs: LineStream | None = None
) -> Iterator[Record | IdRun]:
    """Group physical lines into records; blank lines between records vanish.

    A ``#`` line is a record too (its quotes are followed like any other's): the reader
    drops it as a comment unless it holds an id (see `is_comment`). With ``runs`` (the
    stream ``lines`` come from), the runs of plain ids it offers between records come as
    they are: each of their lines is a record of one cell, the id (`run_records`).
    """
    delim = delimiter.encode()
    spaces = b" \x0b\x0c" if delimiter == "\t" else b" \t\x0b\x0c"
    for number, data, overlong, quotes in lines:
        if overlong:
            if quotes % 2:
                yield _multiline(number, data, True, lines, delim, delimiter)
            else:
                yield number, None, f"line longer than {MAX_RECORD_BYTES} bytes", data
        else:
            start = data.strip(spaces)  # `clean_start` written out: this runs for every line
            if start.startswith(_BOM):
                start = start[len(_BOM) :].strip(spaces)
            if not start or (delimiter == "\t" and not start.strip(b"\t")):
                pass  # a blank line
            elif b'"' in start and _scan(start, delim, False):
                yield _multiline(number, start, False, lines, delim, delimiter)
            else:
                yield number, *_cells(start, delimiter), start
        if runs is not None and runs.boundary:
            yield from runs.runs()


def run_records(run: IdRun) -> Iterator[Record]:
    """The records `records` would have made of the lines of ``run``."""
    for number, session_id in enumerate(run.ids, start=run.first):
        yield number, [session_id], None, session_id.encode()


def _multiline(
    number: int, start: bytes, overlong: bool, lines: Iterator[Line], delim: bytes, delimiter: str
) -> Record:
    """The rest of a record whose first line left a quoted field open."""
    parts = [start]
    size = len(start) if not overlong else MAX_RECORD_BYTES + 1
    for _, data, line_overlong, quotes in lines:
        still_open = quotes % 2 == 0 if line_overlong else _scan(data, delim, True)
        if size <= MAX_RECORD_BYTES:
            parts.append(data)
            size += len(data) + 1
        if not still_open:
            if size > MAX_RECORD_BYTES or line_overlong:
                return number, None, _too_long(), start
            return number, *_cells(b"\n".join(parts), delimiter), start
    return number, None, 'a quoted field is never closed (a " is missing)', start


def _too_long() -> str:
    return f"record longer than {MAX_RECORD_BYTES} bytes (a quoted field spans too many lines)"


def _scan(line: bytes, delim: bytes, in_quote: bool) -> bool:
    """Whether a quoted field is still open at the end of ``line`` (``csv``'s rules)."""
    if not in_quote and b'"' not in line:
        return False
    pos = 0
    while True:
        if in_quote:
            end = line.find(b'"', pos)
            if end < 0:
                return True
            if line[end + 1 : end + 2] == b'"':
                pos = end + 2
                continue
            in_quote = False
            pos = end + 1
        elif line[pos : pos + 1] == b'"':
            in_quote = True
            pos += 1
            continue
        nxt = line.find(delim, pos)
        if nxt < 0:
            return False
        pos = nxt + 1


def _cells(data: bytes, delimiter: str) -> tuple[list[str] | None, str | None]:
    """The cells of one whole record, or None and the reason it cannot be read."""
    # Bytes that are not UTF-8 (a Windows-1252 export's "Müller") are kept as surrogates:
    # the id column, ASCII, reads whatever the other columns hold; an id cell holding such
    # a byte is invalid (ids are ASCII).
    text = data.decode("utf-8", "surrogateescape")
    if '"' not in text:  # no quoting: the csv module would split the same way
        return text.split(delimiter), None
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True)), None
    except csv.Error as exc:
        return None, f"not a valid CSV row: {exc}"
    except StopIteration:  # pragma: no cover - a record always holds something
        return [], None
