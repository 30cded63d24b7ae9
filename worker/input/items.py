"""One record read from an input, as an `InputItem`: a valid id, or why it is not one.

A text or JSONL record is one physical line (`line_item`); a CSV record comes parsed from
`worker.input.csvfile` (`csv_items`). An invalid record keeps its text, made printable and
cut to 200 characters, so a report of it stays one line however hostile the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from worker.input.csvfile import Parsed
from worker.input.csvrecords import clean_start
from worker.input.formats import LineFormat
from worker.input.ids import InvalidId
from worker.input.lines import IdRun, Line

MAX_LINE_BYTES = 4096
_RAW_CHARS = 200
# Control characters shown as escapes in `InputItem.raw`, so a log line stays one line.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


class InputItem(NamedTuple):
    """One accounted-for input line: a valid id, or the reason it is not one.

    A named tuple, not a frozen dataclass: one is made for every line of every input (a
    rerun of a million ids makes a million), and a tuple is made in a third of the time."""

    source: str  # "path:LINE" (1-based physical line; "-:LINE" for stdin)
    session_id: str | None  # the clean id; None when the line is invalid
    error: str | None = None  # the reason when invalid
    raw: str | None = None  # invalid lines: the text, printable, at most 200 characters
    # a result log given as input holds an intent no result settled: a DELETE may have gone
    uncertain: bool = False


def csv_items(name: str, rows: Iterator[Parsed | IdRun]) -> Iterator[InputItem | IdRun]:
    """An item per parsed CSV record of the input ``name``; runs of plain ids as they are."""
    for row in rows:
        if isinstance(row, IdRun):
            yield row
            continue
        number, session_id, error, raw = row
        if session_id is None:
            yield InputItem(f"{name}:{number}", None, error, _printable(raw))
        else:
            yield InputItem(f"{name}:{number}", session_id)


def run_items(run: IdRun) -> Iterator[InputItem]:
    """The item of each line of a run of plain ids."""
    for number, session_id in enumerate(run.ids, start=run.first):
        yield InputItem(f"{run.source}:{number}", session_id)


class _Unreadable:
    """The format of lines read before any line could be sniffed: they are all invalid."""

    def parse(self, text: str) -> str | None:  # pragma: no cover - undecodable lines only
        raise InvalidId("not a session id")


UNREADABLE: LineFormat = _Unreadable()


def line_item(name: str, line: Line, fmt: LineFormat) -> InputItem | None:
    """The item of one physical line read as ``fmt``; None for a line holding nothing."""
    number, data, overlong, _ = line
    try:
        session_id = _parse_line(data, fmt, overlong)
    except InvalidId as exc:
        return InputItem(f"{name}:{number}", None, exc.reason, _printable(data))
    if session_id is None:
        return None
    return InputItem(f"{name}:{number}", session_id)


def _parse_line(line: bytes, fmt: LineFormat, overlong: bool) -> str | None:
    """The id on one physical line, None for a line holding nothing, or `InvalidId`."""
    if overlong or len(line) > MAX_LINE_BYTES:
        raise InvalidId(f"line longer than {MAX_LINE_BYTES} bytes")
    data = clean_start(line.strip())
    if not data or data[0] == 0x23:  # "#": a comment
        return None
    if b"\x00" in data:
        raise InvalidId("contains a NUL byte (binary or UTF-16? save the list as UTF-8 text)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidId(_decode_error(line)) from None
    return fmt.parse(text)


def _decode_error(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = line[exc.start]
        return f"not valid UTF-8 (byte 0x{byte:02X} at column {exc.start + 1})"
    return "not valid UTF-8"  # pragma: no cover - only called after a failed decode


def _printable(line: bytes) -> str:
    text = line[: _RAW_CHARS * 4].decode("utf-8", "backslashreplace")
    text = text.encode("ascii", "backslashreplace").decode("ascii").translate(_ESCAPES)
    return text if len(text) <= _RAW_CHARS else text[: _RAW_CHARS - 3] + "..."
