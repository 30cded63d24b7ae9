"""The input formats: text and JSONL line by line, CSV record by record, and the sniffer.

`worker.input.sources` reads the physical lines, drops blank lines and comments and decodes
UTF-8; a line parser here turns one decoded, stripped line into a session id, returns
``None`` for a line that holds no id to process (a result-log record of an outcome not
selected), or raises `InvalidId` with the reason. CSV, whose records may span lines, is
read by `worker.input.csvfile.CsvReader`.

The format of a file follows its extension (``.csv``/``.tsv``, ``.jsonl``/``.ndjson``,
``.txt``); stdin, pipes and files of any other name are sniffed from their first line
holding something: ``{`` is JSONL; a ``,`` or a tab, or a known id header, is CSV; else
text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol

import orjson

from worker.input.csvfile import ID_HEADERS, CsvReader, header_key
from worker.input.csvrecords import DELIMITERS
from worker.input.ids import InvalidId, is_session_id, parse_session_id
from worker.outcomes import FINAL_OUTCOMES, refused_unsent

__all__ = [
    "DEFAULT_LOG_OUTCOMES",
    "Format",
    "JsonlFormat",
    "LineFormat",
    "TextFormat",
    "for_path",
    "sniff",
]

_ID_COLUMNS = ("session_id", "devin_id", "id")
# Records of our own result log: fed back as input, they name the sessions to do again.
_LOG_EVENTS = frozenset({"run.started", "session.sending", "session.result", "run.finished"})
# The outcomes of a result log taken as input when ``--outcome`` is not given: those that
# want another run (failed, cancelled) and the dry run's would_terminate.
DEFAULT_LOG_OUTCOMES = frozenset({"failed", "cancelled", "would_terminate"})


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
    return len(values) > 1 and any(is_session_id(value) for value in values)


class JsonlFormat:
    """One JSON object a line, the id under ``session_id``, ``devin_id`` or ``id``.

    Records of this tool's own result log are recognised by their ``event`` and read as a
    history, not line by line: each id's latest ``session.result`` decides, and the ids
    whose latest outcome is one of ``outcomes`` (default `DEFAULT_LOG_OUTCOMES`) come out
    once the stream ends (`log_items`), each from the line of that result. An intent
    (``session.sending``) selects nothing; it marks its id uncertain until a result that
    settles it follows (a DELETE may have gone out unanswered). Every other record of the
    log is skipped silently.
    """

    def __init__(self, column: str | None, outcomes: Iterable[str] | None = None) -> None:
        self._keys = (column,) if column is not None else _ID_COLUMNS
        self._outcomes = DEFAULT_LOG_OUTCOMES if outcomes is None else frozenset(outcomes)
        self.line = 0  # the physical line being parsed: set by the reader
        self._latest: dict[str, tuple[int, bool]] = {}  # id: (line of its result, selected)
        self._uncertain: set[str] = set()

    def parse(self, text: str) -> str | None:
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidId(f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise InvalidId(f"not a JSON object (got {type(record).__name__})")
        if record.get("event") in _LOG_EVENTS:
            self._from_log_record(record)
            return None
        for key in self._keys:
            if key in record:
                return _id_value(key, record[key])
        raise InvalidId(f"no {' or '.join(map(repr, self._keys))} key in the object")

    def _from_log_record(self, record: dict[str, object]) -> None:
        event, raw = record.get("event"), record.get("session_id")
        if raw is None or event not in ("session.sending", "session.result"):
            return  # a run record, or the result of an invalid line of an earlier run
        session_id = _id_value("session_id", raw)
        if event == "session.sending":
            self._uncertain.add(session_id)
            return
        outcome = record.get("outcome")
        self._latest[session_id] = (self.line, outcome in self._outcomes)
        if outcome in FINAL_OUTCOMES or refused_unsent(record.get("http_status")):
            self._uncertain.discard(session_id)

    def log_items(self, name: str) -> Iterator[tuple[str, str, bool]]:
        """(source, id, uncertain) of each selected id of the result log read, in order of
        its latest result; the history is then forgotten."""
        chosen = sorted((line, sid) for sid, (line, take) in self._latest.items() if take)
        uncertain = self._uncertain
        self._latest, self._uncertain = {}, set()
        for line, session_id in chosen:
            yield f"{name}:{line}", session_id, session_id in uncertain


def _id_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidId(f"{key!r} is not a string (got {type(value).__name__})")
    return parse_session_id(value)


Format = LineFormat | CsvReader


def sniff(
    text: str,
    name: str,
    column: str | None,
    outcomes: Iterable[str] | None = None,
    *,
    text_only: bool = False,
) -> Format:
    """The format of an input whose first line holding something is ``text``.

    ``text_only`` (a ``.txt`` file): text, unless that line is a CSV header naming a
    column of ids (``list > ids.txt``), whose rows must be read as CSV records so that a
    line inside a quoted title is never taken for an id.
    """
    known = {*ID_HEADERS, *([header_key(column)] if column else [])}
    delimited = any(delim in text for delim in DELIMITERS)
    cells = {header_key(cell) for delim in DELIMITERS for cell in text.split(delim)}
    if text_only:
        return CsvReader(name, column) if delimited and cells & known else TextFormat()
    if text.startswith("{"):
        return JsonlFormat(column, outcomes)
    excel = len(text) == 5 and text.lower().startswith("sep=")  # Excel's "sep=;" line
    if "," in text or "\t" in text or cells & known or excel:
        return CsvReader(name, column)
    return TextFormat()


def for_path(path: str, column: str | None, outcomes: Iterable[str] | None = None) -> Format | None:
    """The format of a named input by its extension; None when it must be sniffed."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix in ("csv", "tsv"):
        return CsvReader(path, column)
    if suffix in ("jsonl", "ndjson"):
        return JsonlFormat(column, outcomes)
    if suffix == "txt":
        return TextFormat()
    return None
