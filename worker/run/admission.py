"""Which ids of the input are sent: each id once per run (duplicates counted), none that an
earlier run settled (resume: counted ``skipped``), at most ``--limit`` new ones (the rest
counted ``deferred``, left unsent for a later run)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from worker.input.idset import IdSet, Visit
from worker.input.items import InputItem
from worker.input.lines import IdRun
from worker.outcomes import Tally

_NEW, _DUPLICATE = Visit.NEW, Visit.DUPLICATE  # module globals: read a million times
Entry = InputItem | IdRun  # what the pipeline reads: an input record, or a run of plain ids


class Admission:
    """``to_send(entry)``: what of an input entry must be sent; the rest is counted in
    ``tally`` (``admit`` for one id), or recorded by ``invalid`` (an invalid record)."""

    def __init__(
        self,
        tally: Tally,
        *,
        settled: IdSet | None,
        limit: int | None,
        invalid: Callable[[InputItem], None],
    ) -> None:
        self._tally = tally
        self._invalid = invalid  # records an invalid input record
        # ids settled by earlier runs; intake marks each id it meets in the same table
        self._ids = settled if settled is not None else IdSet()
        self._limit = limit
        self._admitted = 0  # new sessions taken this run, against --limit

    def admit(self, session_id: str) -> bool:
        visit = self._ids.visit(session_id)
        if visit is _NEW:
            return self._take_new()
        self._tally.counts["duplicate" if visit is _DUPLICATE else "skipped"] += 1
        return False

    def to_send(self, entry: Entry) -> Iterable[InputItem]:
        """The items of an input entry that must be sent; the others are recorded (an
        invalid record) or counted."""
        if isinstance(entry, IdRun):
            return self._from_run(entry)
        if entry.session_id is None:
            self._invalid(entry)
            return ()
        return (entry,) if self.admit(entry.session_id) else ()

    def _from_run(self, run: IdRun) -> Iterator[InputItem]:
        """The items of a run of plain ids that must be sent, one at a time; the ids met
        before each are counted as `admit` counts them (in bulk: a rerun skips millions)."""
        ids, start, counts = run.ids, 0, self._tally.counts
        while start < len(ids):
            index, settled, duplicates = self._ids.visit_run(ids, start)
            if settled:
                counts["skipped"] += settled
            if duplicates:
                counts["duplicate"] += duplicates
            if index < len(ids) and self._take_new():
                yield InputItem(f"{run.source}:{run.first + index}", ids[index])
            start = index + 1

    def _take_new(self) -> bool:
        """A new id: sent, unless --limit new ones were taken already (then ``deferred``)."""
        if self._limit is not None and self._admitted >= self._limit:
            self._tally.counts["deferred"] += 1
            return False
        self._admitted += 1
        return True
