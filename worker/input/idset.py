"""A compact set of session ids for runs of millions: 63-bit hashes in one flat array.

A Python ``set`` of strings costs about 150 bytes an id, of ints about 90; this costs 16
(8-byte slots, at most half full). One table serves a whole run: the resume scan fills it
with the ids earlier runs settled, and intake marks each id it meets (the 64th bit), so it
tells a new id from a settled one and from a duplicate in one probe. Ids are reduced to
Python's own string hash (SipHash, computed once and cached on the string; salted per
process, fine for a table that lives in memory only). A collision (about 1 in 10**7 for a
million ids) would make the run skip an id as if already seen, never send one twice.
"""

from __future__ import annotations

from array import array
from enum import IntEnum

_EMPTY = 0
_DELETED = (1 << 64) - 1
_MARK = 1 << 63
_KEY = _MARK - 1


class Visit(IntEnum):
    NEW = 0  # first time this run; not settled before
    SETTLED = 1  # first time this run; an earlier run settled it
    DUPLICATE = 2  # met before in this run


def id_key(session_id: str) -> int:
    """The 63-bit key of an id; never 0 or all ones (they mark empty slots and the mark)."""
    key = hash(session_id) & _KEY
    return key if _EMPTY < key < _KEY else 1


class IdSet:
    """Open addressing with linear probing over an ``array('Q')``; grows at half full.

    Removal leaves a tombstone, so lookups stay correct; an insert reuses the first tombstone
    on its way, and tombstones count towards the fill that triggers a rebuild, which drops
    them (so churn through `discard` cannot fill the table with tombstones).
    """

    __slots__ = ("_mask", "_size", "_slots", "_used")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(10, (capacity * 2 - 1).bit_length())
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0  # ids held
        self._used = 0  # slots not empty: ids and tombstones

    def __len__(self) -> int:
        return self._size

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and self._probe(id_key(session_id)) >= 0

    def add(self, session_id: str) -> bool:
        """Add an id, unmarked; True when it was not there yet."""
        key = id_key(session_id)
        index = self._probe(key)
        if index >= 0:
            return False
        self._put(~index, key)
        return True

    def discard(self, session_id: str) -> None:
        """Remove an id (rare: a later record says it is not settled after all)."""
        index = self._probe(id_key(session_id))
        if index >= 0:
            self._slots[index] = _DELETED
            self._size -= 1

    def visit(self, session_id: str) -> Visit:
        """Meet an id in this run's input: mark it, and say whether it is new."""
        key = id_key(session_id)
        index = self._probe(key)
        if index < 0:
            self._put(~index, key | _MARK)
            return Visit.NEW
        if self._slots[index] & _MARK:
            return Visit.DUPLICATE
        self._slots[index] |= _MARK
        return Visit.SETTLED

    def _probe(self, key: int) -> int:
        """The slot holding ``key`` (marked or not); else ``~slot`` for where it would go:
        the first tombstone met on the way, or the empty slot that ended the search."""
        slots, mask = self._slots, self._mask
        index = key & mask
        free = -1
        while (found := slots[index]) != _EMPTY:
            if found == _DELETED:
                if free < 0:
                    free = index
            elif found & _KEY == key:
                return index
            index = (index + 1) & mask
        return ~(index if free < 0 else free)

    def _put(self, index: int, entry: int) -> None:
        """Store ``entry`` in the free slot ``index`` (from `_probe`)."""
        slots = self._slots
        if slots[index] == _EMPTY:
            self._used += 1
        slots[index] = entry
        self._size += 1
        if self._used * 2 > len(slots):
            self._rebuild()

    def _rebuild(self) -> None:
        """Re-insert the ids straight from the old table (no list in between), dropping the
        tombstones; the table doubles unless tombstones were most of the fill."""
        old = self._slots
        size = len(old) * 2 if self._size * 4 > len(old) else len(old)
        slots = self._slots = array("Q", bytes(8 * size))
        mask = self._mask = size - 1
        for entry in old:
            if entry != _EMPTY and entry != _DELETED:
                index = entry & mask
                while slots[index] != _EMPTY:
                    index = (index + 1) & mask
                slots[index] = entry
        self._used = self._size
