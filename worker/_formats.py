"""Per-line parsers for the input formats: text, CSV, JSONL, and the stdin sniffer.

`worker.sources` reads the physical lines, drops blank lines and comments and decodes
UTF-8; a parser here turns one decoded, stripped line into a session id, returns
``None`` for a line that holds no id to process (a CSV header, a result-log record that
is not a dry-run ``would_terminate``), or raises `InvalidId` with the reason.
"""

from __future__ import annotations

import csv
import os
from typing import Protocol

import orjson

from worker.errors import InputError
from worker.ids import InvalidId, parse_session_id, trim

__all__ = ["CsvFormat", "JsonlFormat", "LineFormat", "SniffFormat", "TextFormat", "for_path"]

_ID_COLUMNS = ("session_id", "devin_id", "id")
# Records of our own result log: fed back as input, only dry-run answers name ids to do.
_LOG_EVENTS = frozenset({"run.started", "session.result", "run.finished"})


class LineFormat(Protocol):
    def parse(self, text: str) -> str | None: ...


class TextFormat:
    """One id a line; anything else on the line makes it invalid."""

    def parse(self, text: str) -> str | None:
        try:
            return parse_session_id(text)
        except InvalidId as exc:
            hint = _text_hint(text)
            if hint is None:
                raise
            raise InvalidId(hint) from exc


def _text_hint(text: str) -> str | None:
    if text.startswith("{"):
        return "looks like JSON; give JSON lines a .jsonl name"
    if _any_valid(text.split()):
        return "several values on one line (put one id per line)"
    if "," in text and _any_valid(text.split(",")):
        return "looks like a CSV row; give CSV files a .csv name"
    return None


def _any_valid(values: list[str]) -> bool:
    return len(values) > 1 and any(_is_id(value) for value in values)


def _is_id(value: str) -> bool:
    try:
        parse_session_id(value)
    except InvalidId:
        return False
    return True


class CsvFormat:
    """CSV, one row a line: a header row picks the column, else the first column is used.

    The first row is a header when none of its cells is (or tries to be) an id. A quoted
    field cannot span lines: each physical line is one row.
    """

    def __init__(self, name: str, column: str | None) -> None:
        self._name = name
        self._column = column
        self._index: int | None = None
        self._label = "column 1"
        self._header: list[str] | None = None

    @property
    def decided(self) -> bool:
        return self._index is not None

    def parse(self, text: str) -> str | None:
        cells = _cells(text)
        if self._index is None and self._is_header(cells):
            return None
        index = self._index or 0
        if index >= len(cells):
            raise InvalidId(f"missing {self._label} (the row has {len(cells)} cells)")
        try:
            return parse_session_id(cells[index])
        except InvalidId:
            if self._header is not None and _normalised(cells) == self._header:
                return None  # the header again: files joined with cat
            raise

    def _is_header(self, cells: list[str]) -> bool:
        if any(_looks_like_id(cell) for cell in cells):
            if self._column is not None:
                raise InputError(
                    f"{self._name}: --column {self._column!r} needs a header row, but the "
                    "first row holds ids; add a header line or drop --column"
                )
            self._index = 0
            return False
        self._header = _normalised(cells)
        self._index, self._label = self._pick(self._header)
        return True

    def _pick(self, header: list[str]) -> tuple[int, str]:
        wanted = [self._column.lower()] if self._column is not None else list(_ID_COLUMNS)
        for name in wanted:
            if name in header:
                return header.index(name), f"column {name!r}"
        if self._column is not None:
            raise InputError(
                f"{self._name}: no column named {self._column!r}; the header has "
                f"{', '.join(map(repr, header))}; pass --column with one of these"
            )
        return 0, f"column {header[0]!r}"


def _cells(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise InvalidId(f"not a valid CSV row: {exc}") from None


def _normalised(cells: list[str]) -> list[str]:
    return [trim(cell).lower() for cell in cells]


def _looks_like_id(cell: str) -> bool:
    return _is_id(cell) or trim(cell).lower().startswith("devin-")


class JsonlFormat:
    """One JSON object a line, the id under ``session_id``, ``devin_id`` or ``id``.

    Records of this tool's own result log are recognised by their ``event``: a
    ``session.result`` with outcome ``would_terminate`` (a dry run) yields its id so the
    log can be fed back as input; every other record of the log is skipped silently.
    """

    def __init__(self, column: str | None) -> None:
        self._keys = (column,) if column is not None else _ID_COLUMNS

    def parse(self, text: str) -> str | None:
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidId(f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise InvalidId(f"not a JSON object (got {type(record).__name__})")
        if record.get("event") in _LOG_EVENTS:
            return _from_log_record(record)
        for key in self._keys:
            if key in record:
                return _id_value(key, record[key])
        raise InvalidId(f"no {' or '.join(map(repr, self._keys))} key in the object")


def _from_log_record(record: dict[str, object]) -> str | None:
    if record.get("event") != "session.result" or record.get("outcome") != "would_terminate":
        return None
    return _id_value("session_id", record.get("session_id"))


def _id_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidId(f"{key!r} is not a string (got {type(value).__name__})")
    return parse_session_id(value)


class SniffFormat:
    """Stdin: the first line that holds something decides the format for the rest."""

    def __init__(self, name: str, column: str | None) -> None:
        self._name = name
        self._column = column
        self._format: LineFormat | None = None

    def parse(self, text: str) -> str | None:
        if self._format is None:
            self._format = self._sniff(text)
        return self._format.parse(text)

    def _sniff(self, text: str) -> LineFormat:
        if text.startswith("{"):
            return JsonlFormat(self._column)
        names = {*_ID_COLUMNS, *([self._column.lower()] if self._column else [])}
        if "," in text or trim(text).lower() in names:
            return CsvFormat(self._name, self._column)
        return TextFormat()


def for_path(path: str, column: str | None) -> LineFormat:
    """The parser for a named file, chosen by its extension (unknown ones are text)."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix == "csv":
        return CsvFormat(path, column)
    if suffix in ("jsonl", "ndjson"):
        return JsonlFormat(column)
    return TextFormat()
