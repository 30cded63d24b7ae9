"""Physical lines of a byte stream, read in bounded blocks: LF, CRLF and a lone CR end a line.

A line is yielded as ``(number, data, overlong, quotes)``: its 1-based number, its bytes
without the line end, whether it was longer than the limit, and for an overlong line the
count of ``"`` bytes in the whole of it (CSV needs that to follow its quoting). Of an
overlong line only the first bytes are kept: at most one block and one line limit are
held at a time, so memory stays flat however long the input or the line is.

The fast path (`LineStream.take_run`): a reader that knows every line holding exactly a
valid id reads as that id (text, or CSV whose ids are in the first column) may take, at a
block boundary, the next block whole as an `IdRun` when each of its lines is exactly
``devin-`` and the allowed characters, ended by LF: checked by one regular expression,
decoded and split by ``str.split``, in C. Anything else in the block (a space, a quote, a CR,
a BOM, a blank line, a comment) leaves the whole block to the line reader, which reads it as it
always did; so a run holds the same ids, at the same line numbers, as the lines would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from worker.input.decoding import read_block, text_blocks
from worker.input.ids import SESSION_ID_BODY

__all__ = ["MAX_RECORD_BYTES", "IdRun", "Line", "LineStream", "physical_lines", "read_block"]


# The longest line (and the longest CSV record) kept whole: 64 KiB.
MAX_RECORD_BYTES = 64 * 1024
_BLOCK = 64 * 1024
_HEAD = 201  # bytes kept of an overlong line: enough for the 200 printable characters
# lines each exactly a valid id, each ended by LF
_PLAIN = re.compile(b"(?:%s\n)+" % SESSION_ID_BODY.encode())

Line = tuple[int, bytes, bool, int]


class IdRun(NamedTuple):
    """Lines ``first`` to ``first + len(ids) - 1`` of the input ``source``, each holding
    exactly the valid id at its place in ``ids``."""

    source: str
    first: int
    ids: list[str]


def physical_lines(
    stream: BinaryIO, name: str, limit: int = MAX_RECORD_BYTES, encoding: str | None = None
) -> Iterator[Line]:
    """Every physical line of ``stream`` (as UTF-8: `worker.input.decoding`); an
    unfinished last line counts too."""
    return LineStream(stream, name, limit, encoding, runs=False).lines


class LineStream:
    """The physical lines of one input (``lines``) and, between two blocks, the next block
    at once when it is a run of plain ids (`take_run`; never with ``runs=False``)."""

    def __init__(
        self,
        stream: BinaryIO,
        name: str,
        limit: int = MAX_RECORD_BYTES,
        encoding: str | None = None,
        *,
        runs: bool = True,
    ) -> None:
        self.name = name
        self._blocks = text_blocks(stream, name, _BLOCK, encoding)
        self._held = b""  # bytes read by `take_run` and not taken: the line reader's next
        self._refused = False  # `take_run` left ``_held`` to the line reader
        self._number = 0  # lines read, by either way, at a boundary
        # the last line yielded ended its block and every line before it was yielded
        self.boundary = False
        self.lines = self._read(limit, runs)

    def take_run(self) -> IdRun | None:
        """At a boundary, the next lines up to the last line end of the next block, when
        each is exactly a valid id; else None (they are left to ``lines``)."""
        if not self.boundary or self._refused:
            return None
        data = self._held + next(self._blocks, b"")
        end = data.rfind(b"\n") + 1
        if not end or _PLAIN.fullmatch(data, 0, end) is None:
            self._held, self._refused = data, True
            return None
        ids = data[:end].decode("ascii").split("\n")
        ids.pop()  # after the last LF
        self._held = data[end:]
        run = IdRun(self.name, self._number + 1, ids)
        self._number += len(ids)
        return run

    def runs(self) -> Iterator[IdRun]:
        """The runs that follow one another from here (`take_run`): none off a boundary."""
        while (run := self.take_run()) is not None:
            yield run

    def _next_block(self) -> bytes | None:
        if self._held:
            block, self._held, self._refused = self._held, b"", False
            return block
        return next(self._blocks, None)

    def _read(self, limit: int, runs: bool) -> Iterator[Line]:
        number = 0
        carry = b""
        head: bytes | None = None  # the first bytes of the overlong line being skipped
        quotes = 0
        while (block := self._next_block()) is not None:
            lines, carry = _split(carry + block)
            last = -1  # the line after which the stream is at a boundary, if any
            if runs and lines:  # the unfinished rest is read again, with the next block
                last, self._held, carry = number + len(lines), carry, b""
            for line in lines:
                number += 1
                if head is not None:
                    found: Line = number, head, True, quotes + line.count(b'"')
                    head = None
                elif len(line) > limit:
                    found = number, line[:_HEAD], True, line.count(b'"')
                else:
                    found = number, line, False, 0
                if number != last:
                    yield found
                    continue
                self._number, self.boundary = number, True
                yield found
                self.boundary = False
                number = self._number  # moved on by the runs taken meanwhile
            carry, head, quotes = _rest(carry, head, quotes, limit)
        if head is not None:
            yield number + 1, head, True, quotes
        elif carry:
            yield _unfinished(number + 1, carry.removesuffix(b"\r"), limit)


def _rest(
    carry: bytes, head: bytes | None, quotes: int, limit: int
) -> tuple[bytes, bytes | None, int]:
    """What is kept of a block's unfinished rest: all of it; or, when it makes (or goes
    on) an overlong line, that line's head and its count of quotes so far, and of the rest
    only a trailing CR, which may start a CRLF."""
    rest = carry.removesuffix(b"\r")
    if head is None and len(rest) > limit:
        head, quotes = rest[:_HEAD], 0
    if head is not None:
        quotes += rest.count(b'"')
        carry = carry[len(rest) :]
    return carry, head, quotes


def _unfinished(number: int, line: bytes, limit: int) -> Line:
    """The last line of a stream that does not end with a line end."""
    if len(line) > limit:
        return number, line[:_HEAD], True, line.count(b'"')
    return number, line, False, 0


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Split into complete lines and the unfinished rest (kept, with a trailing CR)."""
    lines = data.splitlines()
    if data.endswith(b"\n"):
        return lines, b""
    rest = lines.pop()
    return lines, rest + b"\r" if data.endswith(b"\r") else rest
