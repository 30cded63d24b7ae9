"""Physical lines of a byte stream, read in bounded blocks: LF, CRLF and a lone CR end a line.

A line is yielded as ``(number, data, overlong, quotes)``: its 1-based number, its bytes
without the line end, whether it was longer than the limit, and for an overlong line the
count of ``"`` bytes in the whole of it (CSV needs that to follow its quoting). Of an
overlong line only the first bytes are kept: at most one block and one line limit are
held at a time, so memory stays flat however long the input or the line is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from worker.input.decoding import read_block, text_blocks

__all__ = ["MAX_RECORD_BYTES", "Line", "physical_lines", "read_block"]


# The longest line (and the longest CSV record) kept whole: 64 KiB.
MAX_RECORD_BYTES = 64 * 1024
_BLOCK = 64 * 1024
_HEAD = 201  # bytes kept of an overlong line: enough for the 200 printable characters

Line = tuple[int, bytes, bool, int]


def physical_lines(
    stream: BinaryIO, name: str, limit: int = MAX_RECORD_BYTES, encoding: str | None = None
) -> Iterator[Line]:
    """Yield every physical line of ``stream`` (as UTF-8: `worker.input.decoding`); an
    unfinished last line counts too."""
    number = 0
    carry = b""
    head: bytes | None = None  # the first bytes of the overlong line being skipped
    quotes = 0
    for block in text_blocks(stream, name, _BLOCK, encoding):
        lines, carry = _split(carry + block)
        for line in lines:
            number += 1
            if head is not None:
                yield number, head, True, quotes + line.count(b'"')
                head = None
            elif len(line) > limit:
                yield number, line[:_HEAD], True, line.count(b'"')
            else:
                yield number, line, False, 0
        rest = carry.removesuffix(b"\r")
        if head is None and len(rest) > limit:
            head, quotes = rest[:_HEAD], 0
        if head is not None:
            quotes += rest.count(b'"')
            carry = carry[len(rest) :]  # keep only a trailing CR, which may start a CRLF
    if head is not None:
        yield number + 1, head, True, quotes
    elif carry:
        line = carry.removesuffix(b"\r")
        if len(line) > limit:
            yield number + 1, line[:_HEAD], True, line.count(b'"')
        else:
            yield number + 1, line, False, 0


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Split into complete lines and the unfinished rest (kept, with a trailing CR)."""
    lines = data.splitlines()
    if data.endswith(b"\n"):
        return lines, b""
    rest = lines.pop()
    return lines, rest + b"\r" if data.endswith(b"\r") else rest
