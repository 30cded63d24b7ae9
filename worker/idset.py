"""A compact set of session ids for runs of millions: 64-bit hashes in one flat array.

A Python ``set`` of strings costs about 150 bytes an id, of ints about 90; this costs 16
(8-byte slots, at most half full), so a 1,000,000-id run keeps its memory flat. Ids are
reduced to Python's own 64-bit string hash (SipHash, computed once and cached on the
string; salted per process, which is fine for a set that lives in memory only). A
collision (about 1 in 10**7 for a million ids) would make the run skip an id as if
already seen, never send one twice.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
_DELETED = (1 << 64) - 1


def id_key(session_id: str) -> int:
    """The 64-bit key of an id; never 0 or all ones (they mark empty and deleted slots)."""
    key = hash(session_id) & _DELETED
    return key if _EMPTY < key < _DELETED else 1


class IdSet:
    """Open addressing with linear probing over an ``array('Q')``; grows at half full.

    Removal leaves a tombstone, so lookups stay correct; tombstones are dropped on growth.
    """

    __slots__ = ("_mask", "_size", "_slots")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(10, (capacity * 2 - 1).bit_length())
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and self.has_key(id_key(session_id))

    def add(self, session_id: str) -> bool:
        """Add an id; True when it was not there yet. (``add_key`` inlined: the resume scan
        calls this for every record of a log that may hold millions.)"""
        key = hash(session_id) & _DELETED
        if not _EMPTY < key < _DELETED:
            key = 1
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != _EMPTY:
            if found == key:
                return False
            index = (index + 1) & mask
        slots[index] = key
        self._size += 1
        if self._size * 2 > len(slots):
            self._grow()
        return True

    def discard(self, session_id: str) -> None:
        """Remove an id (rare: a later record says it is not settled after all)."""
        index = self._find(id_key(session_id))
        if index >= 0:
            self._slots[index] = _DELETED
            self._size -= 1

    def _find(self, key: int) -> int:
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != _EMPTY:
            if found == key:
                return index
            index = (index + 1) & mask
        return -1

    def has_key(self, key: int) -> bool:
        """Whether the set holds ``key`` (an ``id_key``)."""
        return self._find(key) >= 0

    def add_key(self, key: int) -> bool:
        """Add ``key`` (an ``id_key``); True when it was not there yet."""
        slots, mask = self._slots, self._mask
        index = key & mask
        while (found := slots[index]) != _EMPTY:
            if found == key:
                return False
            index = (index + 1) & mask
        slots[index] = key
        self._size += 1
        if self._size * 2 > len(slots):
            self._grow()
        return True

    def _grow(self) -> None:
        self._rebuild(len(self._slots) * 2, [k for k in self._slots if k not in (_EMPTY, _DELETED)])

    def _rebuild(self, size: int, keys: list[int]) -> None:
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._size = 0
        for key in keys:
            self.add_key(key)
