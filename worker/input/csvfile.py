"""CSV input: the delimiter, the header and the column of ids, then one id per record.

The delimiter (``,``, tab, ``;`` or ``|``) is sniffed from the first record's line, or
given by an Excel ``sep=;`` first line. The
first record is a header when none of its cells is (or tries to be) an id. The column of
ids is, in order: the one named by ``--column``; a header name known to hold ids
(``session_id``, ``Session ID``, ``sessionId``, ``devin_id``, ``session``, ``id``:
compared without case, spaces, ``_``, ``-`` or ``.``); else the only column holding ids
in the first rows. No such column, or several, is an `InputError` (exit 2) that lists
the header, instead of one invalid row per line. Without a header, the column is the
first cell of the first row that looks like an id.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from worker.errors import InputError
from worker.input.csvrecords import (
    DELIMITERS,
    Record,
    clean_start,
    is_comment,
    records,
    run_records,
    sniff_delimiter,
    starts_record,
)
from worker.input.ids import TRIMMED_FIRST, InvalidId, is_session_id, parse_session_id, trim
from worker.input.lines import IdRun, Line, LineStream

__all__ = ["ID_HEADERS", "CsvReader", "Parsed", "header_key"]

# Header names of an id column, as compared by `header_key`, best first.
ID_HEADERS = ("sessionid", "devinsessionid", "devinid", "session", "id")
_PROBE_ROWS = 20  # readable rows looked at under an unknown header
_PROBE_RECORDS = 200  # records held at most meanwhile, unreadable ones included
_KEY_NOISE = re.compile(r"[\s_.\-]+")
_SEP = re.compile(rb"\Asep=([" + re.escape("".join(DELIMITERS).encode()) + rb"])\Z", re.IGNORECASE)

# (line number, the id or None, the reason when invalid, the record's first bytes)
Parsed = tuple[int, str | None, str | None, bytes]


def header_key(cell: str) -> str:
    """A header cell as compared: ``Session ID``, ``session_id``, ``sessionId`` agree."""
    return _KEY_NOISE.sub("", trim(cell)).lower()


def _looks_like_id(cell: str) -> bool:
    return is_session_id(cell) or trim(cell).lower().startswith("devin-")


class CsvReader:
    """One CSV input, read record by record into ids (see the module docstring)."""

    def __init__(self, name: str, column: str | None) -> None:
        self._name = name
        self._column = column
        self._index: int | None = None
        self._label = "column 1"
        self._header: list[str] | None = None  # the header's cells as plain text
        self._keys: list[str] | None = None  # the same, as `header_key` compares them
        self._pending: list[Record] = []

    def rows(
        self, lines: Iterator[Line], runs: LineStream | None = None
    ) -> Iterator[Parsed | IdRun]:
        """One `Parsed` per record but the header (and the header repeated by ``cat``);
        with ``runs`` (the stream of ``lines``), its runs of plain ids as they are when
        the ids are in the first column (each of their lines a valid id)."""
        delimiter = None
        for line in lines:
            if not (line[2] or starts_record(line[1])):
                continue
            directive = _SEP.match(clean_start(line[1]))
            if directive is not None and delimiter is None:  # Excel's "sep=;" first line
                delimiter = directive.group(1).decode()
                continue
            delimiter = delimiter or sniff_delimiter(line[1])
            yield from self._parse(records(itertools.chain([line], lines), delimiter, runs))
            if self._index is None and self._pending:
                yield from self._decide()
            return

    def _parse(self, recs: Iterator[Record | IdRun]) -> Iterator[Parsed | IdRun]:
        for rec in recs:
            if isinstance(rec, IdRun):
                yield from self._run(rec)
                continue
            if _empty_cells(rec[1]):
                continue  # a row of empty cells (``;;``, a spreadsheet's trailing rows)
            if self._index is not None:
                if (parsed := self._row(rec)) is not None:
                    yield parsed
            elif self._header is None and is_comment(rec):
                continue  # a comment before the header
            elif self._header is None and rec[1] is not None:
                if not self._read_header(rec[1]) and (parsed := self._row(rec)) is not None:
                    yield parsed
            elif self._header is None:
                yield rec[0], None, rec[2], rec[3]  # unreadable before anything is known
            else:
                yield from self._probe(rec)

    def _run(self, run: IdRun) -> Iterator[Parsed | IdRun]:
        """A run of plain ids: whole when ids are in the first column (each line gives its
        id), else its lines one by one, as records."""
        if self._index == 0:
            yield run
        else:
            yield from self._parse(run_records(run))

    def _read_header(self, cells: list[str]) -> bool:
        """Take the first record: True when it is a header, else pick the column of ids."""
        if any(_looks_like_id(cell) for cell in cells):
            if self._column is not None:
                raise InputError(
                    f"{self._name}: --column {self._column!r} needs a header row, but the "
                    "first row holds ids; add a header line or drop --column"
                )
            self._index = next(i for i, cell in enumerate(cells) if _looks_like_id(cell))
            self._label = f"column {self._index + 1}"
            return False
        self._header = [trim(cell) for cell in cells]
        self._keys = [header_key(cell) for cell in cells]
        wanted = [header_key(self._column)] if self._column is not None else list(ID_HEADERS)
        for key in wanted:
            if key and key in self._keys:
                self._choose(self._keys.index(key))
                return True
        if self._column is not None:
            raise InputError(
                f"{self._name}: no column named {self._column!r}; the header has "
                f"{self._names()}; pass --column with one of these"
            )
        return True

    def _choose(self, index: int) -> None:
        assert self._header is not None
        self._index = index
        self._label = f"column {self._header[index]!r}"

    def _probe(self, rec: Record) -> Iterator[Parsed]:
        """Hold the first rows under an unknown header until they show the column of ids."""
        self._pending.append(rec)
        rows = sum(1 for held in self._pending if held[1] is not None)
        if rows >= _PROBE_ROWS or len(self._pending) >= _PROBE_RECORDS:
            yield from self._decide()

    def _decide(self) -> Iterator[Parsed]:
        holders = sorted(
            {
                i
                for _, cells, _, _ in self._pending
                for i, cell in enumerate(cells or ())
                if is_session_id(cell)
            }
        )
        if len(holders) != 1:
            found = "no column holds" if not holders else "several columns hold"
            raise InputError(
                f"{self._name}: {found} session ids under the header {self._names()}; "
                "pass --column NAME with the header of the column of devin-... ids"
            )
        self._choose(holders[0])
        pending, self._pending = self._pending, []
        for rec in pending:
            if (parsed := self._row(rec)) is not None:
                yield parsed

    def _names(self) -> str:
        return ", ".join(map(repr, self._header or []))

    def _row(self, rec: Record) -> Parsed | None:
        """The id of one record, its reason when invalid, or None for nothing to do."""
        number, cells, error, raw = rec
        if cells is None:
            return None if is_comment(rec) else (number, None, error, raw)
        index = self._index or 0
        if raw[:1] == b"#" and (index >= len(cells) or not is_session_id(cells[index])):
            return None  # a comment: a "#" record that holds no id
        if index >= len(cells):
            return number, None, f"missing {self._label} (the row has {len(cells)} cells)", raw
        try:
            return number, parse_session_id(cells[index]), None, raw
        except InvalidId as exc:
            if self._keys is not None and [header_key(cell) for cell in cells] == self._keys:
                return None  # the header again: files joined with cat
            return number, None, _reason(cells[index], exc), raw


def _empty_cells(cells: list[str] | None) -> bool:
    """Whether a record's cells are all empty; the first cell says at once that most
    rows are not."""
    first = cells[0][:1] if cells else ""
    return cells is not None and first in TRIMMED_FIRST and not any(map(trim, cells))


def _reason(cell: str, exc: InvalidId) -> str:
    if "\x00" in cell:
        return "contains a NUL byte (binary or UTF-16? save the list as UTF-8 text)"
    return exc.reason
