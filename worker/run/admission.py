"""Which ids of the input are sent: each id once per run (duplicates counted), none that an
earlier run settled (resume: counted ``skipped``), at most ``--limit`` new ones (the rest
counted ``deferred``, left unsent for a later run)."""

from __future__ import annotations

from worker.input.idset import IdSet, Visit
from worker.outcomes import Tally

_NEW, _DUPLICATE = Visit.NEW, Visit.DUPLICATE  # module globals: read a million times


class Admission:
    """``admit(session_id)``: True when the session must be sent; else counted in ``tally``."""

    def __init__(self, tally: Tally, *, settled: IdSet | None, limit: int | None) -> None:
        self._tally = tally
        # ids settled by earlier runs; intake marks each id it meets in the same table
        self._ids = settled if settled is not None else IdSet()
        self._limit = limit
        self._admitted = 0  # new sessions taken this run, against --limit

    def admit(self, session_id: str) -> bool:
        visit = self._ids.visit(session_id)
        if visit is _NEW:
            if self._limit is not None and self._admitted >= self._limit:
                self._tally.counts["deferred"] += 1
                return False
            self._admitted += 1
            return True
        self._tally.counts["duplicate" if visit is _DUPLICATE else "skipped"] += 1
        return False
