"""The rows ``list`` prints: RFC 4180 CSV with a header, or bare ids, one session a row.

Written so that ``run`` reads every row back whole whatever the API put in a field: a
field holding the delimiter, a quote, CR or LF is quoted (quotes doubled), rows end in
CRLF, and each cell is cut to fit a row well under the reader's record bound
(`worker.input.lines.MAX_RECORD_BYTES`).
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from worker.input.ids import SESSION_ID_PATTERN

if TYPE_CHECKING:
    from worker.devin.models import SessionResponse

__all__ = ["FORMATS", "RowWriter"]

FORMATS = ("csv", "ids")
# The bytes a CSV row may take, shared by its cells: well under the 64 KiB record bound
# of the reader (worker.input.lines), so no row written here is ever cut when read back.
_ROW_BUDGET = 48 * 1024


class RowWriter:
    """Rows on stdout, flushed after every page so a pipe's reader starts at once.

    ``csv``: see the module docstring; a title holding a line feed or a carriage return
    stays inside its field when ``run`` reads it back. ``ids``: one session id a line,
    only ids that ``run`` accepts (a hostile one from the API is skipped with a warning).
    """

    def __init__(
        self, columns: tuple[str, ...], fmt: str = "csv", out: TextIO | None = None
    ) -> None:
        self._out = out if out is not None else sys.stdout
        self._columns = columns if fmt == "csv" else ("session_id",)
        self._ids = fmt == "ids"
        self._writer = csv.writer(self._out, lineterminator="\r\n")
        self._budget = _ROW_BUDGET // max(1, len(self._columns))
        self.printed = -1  # the header is printed with the first page

    def rows(self, sessions: list[SessionResponse], limit: int | None) -> bool:
        """Print ``sessions`` (up to ``limit`` in all); True when the limit is reached."""
        if self.printed < 0:
            if not self._ids:
                self._writer.writerow(self._columns)
            self.printed = 0
        for session in sessions:
            if limit is not None and self.printed >= limit:
                break
            if self._ids:
                self._id_line(session.session_id)
            else:
                self._writer.writerow(
                    [_fit(_cell(c, getattr(session, c, None)), self._budget) for c in self._columns]
                )
            self.printed += 1
        self._out.flush()
        return limit is not None and self.printed >= limit

    def _id_line(self, session_id: str) -> None:
        if SESSION_ID_PATTERN.match(session_id):
            self._out.write(session_id + "\n")
        else:
            log = structlog.get_logger("worker.commands.listing")
            log.warning("list.bad_session_id", session_id=session_id[:200])


def _fit(text: str, budget: int) -> str:
    """``text``, cut so that written as a CSV field (quotes doubled) it fits ``budget``."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) + text.count('"') + 2 <= budget:
        return text
    return data[: budget // 2 - 4].decode("utf-8", "ignore") + "\u2026"


def _cell(column: str, value: Any) -> str:
    """One CSV cell: times as ISO 8601 UTC, booleans lower case, lists joined with ``;``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and column.endswith("_at"):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return ";".join(_cell(column, item) for item in value)
    return str(value)
