"""A compact set of session ids for runs of millions: 63-bit hashes in one flat array.

A Python ``set`` of strings costs about 150 bytes an id, of ints about 90; this costs at
most 8 / 0.7 = 11.4 bytes (8-byte slots, at most 70% full before it grows) when it is made
at the right size: the resume scan sizes it from the result log's line count
(`IdSet.for_lines`), so a rerun of a million settled ids fills it without once growing
(no second copy of the table). One table serves a whole run: the resume scan fills it
with the ids earlier runs settled, and intake marks each id it meets (the 64th bit), so it
tells a new id from a settled one and from a duplicate in one probe. Ids are reduced to
Python's own string hash (SipHash, computed once and cached on the string; salted per
process, fine for a table that lives in memory only). A collision (about 1 in 10**7 for a
million ids) would make the run skip an id as if already seen, never send one twice.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from enum import IntEnum

_EMPTY = 0
_DELETED = (1 << 64) - 1
_MARK = 1 << 63
_KEY = _MARK - 1
_FILL = 0.7  # the share of slots in use (ids and tombstones) past which the table grows
_MIN_SLOTS = 1024


class Visit(IntEnum):
    NEW = 0  # first time this run; not settled before
    SETTLED = 1  # first time this run; an earlier run settled it
    DUPLICATE = 2  # met before in this run


_NEW, _SETTLED, _DUPLICATE = Visit.NEW, Visit.SETTLED, Visit.DUPLICATE  # plain globals: faster


def id_key(session_id: str) -> int:
    """The 63-bit key of an id; never 0 nor all ones (they mark empty slots and, with the
    mark bit, tombstones)."""
    key = hash(session_id) & _KEY
    return key if _EMPTY < key < _KEY else 1


class IdSet:
    """Open addressing with linear probing over an ``array('Q')`` of any size (the slot is
    the key modulo the size); grows, to twice the size, past 70% full.

    Removal leaves a tombstone, so lookups stay correct; inserts go to the first empty slot
    (removals are rare: a later record that unsettles an id), and tombstones count towards
    the fill that triggers a rebuild, which drops them (so churn through `discard` cannot
    fill the table with tombstones). The probes are written out in each method: they are
    the resume scan's and the intake's inner loops, a million times each in a big rerun.
    """

    __slots__ = ("_limit", "_n", "_size", "_slots", "_used")

    def __init__(self, capacity: int = 716) -> None:
        self._slots = _table(max(_MIN_SLOTS, int(capacity / _FILL) + 1))
        self._n = len(self._slots)  # slots, kept: read on every probe
        self._limit = int(self._n * _FILL)  # slots in use past which it grows
        self._size = 0  # ids held
        self._used = 0  # slots not empty: ids and tombstones

    @classmethod
    def for_lines(cls, lines: int) -> IdSet:
        """A set that holds an id for each of ``lines`` lines without growing."""
        return cls(capacity=lines)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, session_id: object) -> bool:
        if not isinstance(session_id, str):
            return False
        key = id_key(session_id)
        slots, size = self._slots, self._n
        index = key % size
        while found := slots[index]:
            if found & _KEY == key and found != _DELETED:
                return True
            index = index + 1 if index + 1 < size else 0
        return False

    def add(self, session_id: str) -> bool:
        """Add an id, unmarked; True when it was not there yet."""
        key = hash(session_id) & _KEY
        if not _EMPTY < key < _KEY:
            key = 1
        slots, size = self._slots, self._n
        index = key % size
        while found := slots[index]:
            if found & _KEY == key and found != _DELETED:
                return False
            index = index + 1 if index + 1 < size else 0
        slots[index] = key
        self._size += 1
        self._used += 1
        if self._used > self._limit:
            self._rebuild()
        return True

    def add_all(self, ids: Iterable[str]) -> None:
        """`add` each of ``ids``, in one loop: the resume scan inserts millions."""
        slots, size, limit, used = self._slots, self._n, self._limit, self._used
        for session_id in ids:
            key = hash(session_id) & _KEY
            if not _EMPTY < key < _KEY:
                key = 1
            index = key % size
            while found := slots[index]:
                if found & _KEY == key and found != _DELETED:
                    break
                index = index + 1 if index + 1 < size else 0
            else:
                slots[index] = key
                self._size += 1
                used += 1
                if used > limit:
                    self._used = used
                    self._rebuild()
                    slots, size, limit, used = self._slots, self._n, self._limit, self._used
        self._used = used

    def discard(self, session_id: str) -> None:
        """Remove an id (rare: a later record says it is not settled after all)."""
        key = id_key(session_id)
        slots, size = self._slots, self._n
        index = key % size
        while found := slots[index]:
            if found & _KEY == key and found != _DELETED:
                slots[index] = _DELETED
                self._size -= 1
                return
            index = index + 1 if index + 1 < size else 0

    def visit(self, session_id: str) -> Visit:
        """Meet an id in this run's input: mark it, and say whether it is new."""
        key = hash(session_id) & _KEY
        if not _EMPTY < key < _KEY:
            key = 1
        slots, size = self._slots, self._n
        index = key % size
        while found := slots[index]:
            if found & _KEY == key and found != _DELETED:
                if found & _MARK:
                    return _DUPLICATE
                slots[index] = found | _MARK
                return _SETTLED
            index = index + 1 if index + 1 < size else 0
        slots[index] = key | _MARK
        self._size += 1
        self._used += 1
        if self._used > self._limit:
            self._rebuild()
        return _NEW

    def visit_run(self, ids: list[str], start: int = 0) -> tuple[int, int, int]:
        """`visit` the ids of ``ids`` from ``start`` up to the first new one: (its index, or
        ``len(ids)`` when none is new; how many were settled before; how many duplicates).
        The probe is `visit`'s, in one loop: a rerun of settled ids spends its time here."""
        slots, size = self._slots, self._n
        settled = duplicates = 0
        for at in range(start, len(ids)):
            key = hash(ids[at]) & _KEY
            if not _EMPTY < key < _KEY:
                key = 1
            index = key % size
            while found := slots[index]:
                if found & _KEY == key and found != _DELETED:
                    if found & _MARK:
                        duplicates += 1
                    else:
                        slots[index] = found | _MARK
                        settled += 1
                    break
                index = index + 1 if index + 1 < size else 0
            else:
                slots[index] = key | _MARK
                self._size += 1
                self._used += 1
                if self._used > self._limit:
                    self._rebuild()
                return at, settled, duplicates
        return len(ids), settled, duplicates

    def _rebuild(self) -> None:
        """Re-insert the ids straight from the old table (no list in between), dropping the
        tombstones; the table doubles unless tombstones were most of the fill."""
        old = self._slots
        grow = self._size * 2 > self._limit
        slots = self._slots = _table(len(old) * 2 if grow else len(old))
        size = self._n = len(slots)
        self._limit = int(size * _FILL)
        for entry in old:
            if entry != _EMPTY and entry != _DELETED:
                index = (entry & _KEY) % size
                while slots[index]:
                    index = index + 1 if index + 1 < size else 0
                slots[index] = entry
        self._used = self._size


def _table(size: int) -> array[int]:
    return array("Q", [0]) * size
