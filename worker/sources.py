"""Input sources: files and stdin, streamed line by line into `InputItem` values.

Every physical line is accounted for. A blank line or a ``#`` comment yields nothing; a
CSV header row and the result-log records that are not dry-run ``would_terminate``
answers (see `worker._formats.JsonlFormat`) yield nothing; every other line yields one
item, valid or invalid, with its ``file:line``. Lines end in LF, CRLF or a lone CR. A
leading byte-order mark is dropped on any line (files joined with ``cat`` carry one
mid-file). Reading is in bounded blocks, so memory stays flat however long the input
is, and a line longer than `MAX_LINE_BYTES` is reported without being kept.

Duplicates are left to the pipeline, which counts them.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from worker._formats import CsvFormat, LineFormat, SniffFormat, for_path
from worker.errors import InputError
from worker.ids import InvalidId

__all__ = [
    "MAX_LINE_BYTES",
    "InputItem",
    "check_inputs",
    "count_distinct_ids",
    "read_inputs",
]

MAX_LINE_BYTES = 4096
_BLOCK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_RAW_CHARS = 200
# Control characters shown as escapes in `InputItem.raw`, so a log line stays one line.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


@dataclass(frozen=True, slots=True)
class InputItem:
    """One accounted-for input line: a valid id, or the reason it is not one."""

    source: str  # "path:LINE" (1-based physical line; "-:LINE" for stdin)
    session_id: str | None  # the clean id; None when the line is invalid
    error: str | None = None  # the reason when invalid
    raw: str | None = None  # invalid lines: the text, printable, at most 200 characters


def read_inputs(
    inputs: Sequence[str], *, column: str | None = None, stdin: BinaryIO | None = None
) -> Iterator[InputItem]:
    """Yield one `InputItem` per line holding something, file after file, in order.

    No inputs, or ``-``, reads ``stdin`` (binary; default ``sys.stdin.buffer``) and
    sniffs its format from the first line holding something. Files are parsed by
    extension: ``.csv``, ``.jsonl``/``.ndjson``, anything else one id a line. Raises
    `InputError` when a file cannot be read or ``column`` is not in a CSV header.
    """
    for name in inputs or ["-"]:
        if name == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            yield from _read_stream(stream, "-", SniffFormat("-", column))
        else:
            with _open(name) as stream:
                yield from _read_stream(stream, name, for_path(name, column))


def check_inputs(inputs: Sequence[str], *, column: str | None = None) -> None:
    """Raise `InputError` unless every named file (not ``-``) can be opened and read.

    With ``column``, a CSV file's header is read too, so a missing column is reported
    before any request instead of mid-run.
    """
    for name in inputs:
        if name == "-":
            continue
        with _open(name) as stream:
            fmt = for_path(name, column)
            if column is not None and isinstance(fmt, CsvFormat):
                for _ in _read_stream(stream, name, fmt):
                    if fmt.decided:
                        break
            else:
                _read_block(stream, name, 1)


def count_distinct_ids(inputs: Sequence[str], *, column: str | None = None) -> tuple[int, int]:
    """Return (distinct valid ids, invalid lines) over named files, streamed.

    Used by the preflight before a run, so stdin (which can be read only once) is refused
    with `ValueError`. Ids are held as 64-bit hashes in packed arrays, about 8 bytes a
    distinct id instead of a string in a set; the chance of two distinct ids colliding
    among a million is about 3e-8.
    """
    if not inputs or "-" in inputs:
        raise ValueError("count_distinct_ids reads named files only; stdin can be read once")
    buckets = [_HashBucket() for _ in range(256)]
    invalid = 0
    for item in read_inputs(inputs, column=column):
        if item.session_id is None:
            invalid += 1
        else:
            digest = hash(item.session_id)
            buckets[digest & 0xFF].add(digest)
    return sum(bucket.distinct() for bucket in buckets), invalid


class _HashBucket:
    """Hashes appended to a packed array, deduplicated whenever it has doubled."""

    def __init__(self) -> None:
        self._hashes = array("q")
        self._compact_at = 1024

    def add(self, digest: int) -> None:
        self._hashes.append(digest)
        if len(self._hashes) >= self._compact_at:
            self._hashes = array("q", set(self._hashes))
            self._compact_at = max(1024, 2 * len(self._hashes))

    def distinct(self) -> int:
        return len(set(self._hashes))


def _read_stream(stream: BinaryIO, name: str, fmt: LineFormat) -> Iterator[InputItem]:
    for number, line, overlong in _physical_lines(stream, name):
        try:
            session_id = _parse_line(line, fmt, overlong)
        except InvalidId as exc:
            yield InputItem(f"{name}:{number}", None, exc.reason, _printable(line))
        else:
            if session_id is not None:
                yield InputItem(f"{name}:{number}", session_id)


def _parse_line(line: bytes, fmt: LineFormat, overlong: bool) -> str | None:
    """The id on one physical line, None for a line holding nothing, or `InvalidId`."""
    if overlong:
        raise InvalidId(f"line longer than {MAX_LINE_BYTES} bytes")
    data = line.strip()
    if data[:1] == b"\xef" and data.startswith(_BOM):
        data = data[len(_BOM) :].strip()
    if not data or data[0] == 0x23:  # "#": a comment
        return None
    if b"\x00" in data:
        raise InvalidId("contains a NUL byte (binary or UTF-16? save the list as UTF-8 text)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidId(_decode_error(line)) from None
    return fmt.parse(text)


def _decode_error(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = line[exc.start]
        return f"not valid UTF-8 (byte 0x{byte:02X} at column {exc.start + 1})"
    return "not valid UTF-8"  # pragma: no cover - only called after a failed decode


def _printable(line: bytes) -> str:
    text = line[: _RAW_CHARS * 4].decode("utf-8", "backslashreplace")
    text = text.encode("ascii", "backslashreplace").decode("ascii").translate(_ESCAPES)
    return text if len(text) <= _RAW_CHARS else text[: _RAW_CHARS - 3] + "..."


def _physical_lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number, line without its end, overlong) over LF, CRLF and CR ends.

    An overlong line is yielded once, as its first bytes, and the rest of it is skipped
    as it is read: at most one block and one line limit are held at a time.
    """
    number = 0
    carry = b""
    skipping = False
    while block := _read_block(stream, name, _BLOCK):
        lines, carry = _split(carry + block)
        if skipping and lines:
            lines.pop(0)  # the end of the overlong line being skipped
            number += 1
            skipping = False
        for line in lines:
            number += 1
            if len(line) > MAX_LINE_BYTES:
                yield number, line[: _RAW_CHARS + 1], True
            else:
                yield number, line, False
        if not skipping and len(carry.removesuffix(b"\r")) > MAX_LINE_BYTES:
            yield number + 1, carry[: _RAW_CHARS + 1], True
            skipping = True
        if skipping:
            carry = b"\r" if carry.endswith(b"\r") else b""
    if carry and not skipping:
        yield _numbered(number + 1, carry.removesuffix(b"\r"))


def _numbered(number: int, line: bytes) -> tuple[int, bytes, bool]:
    if len(line) > MAX_LINE_BYTES:
        return number, line[: _RAW_CHARS + 1], True
    return number, line, False


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Split into complete lines and the unfinished rest (kept, with a trailing CR)."""
    lines = data.splitlines()
    if data.endswith(b"\n"):
        return lines, b""
    rest = lines.pop()
    return lines, rest + b"\r" if data.endswith(b"\r") else rest


def _read_block(stream: BinaryIO, name: str, size: int) -> bytes:
    read = getattr(stream, "read1", stream.read)  # stdin: hand over what has arrived
    try:
        block: bytes = read(size)
    except OSError as exc:
        raise InputError(f"cannot read input {name!r}: {exc.strerror or exc}") from exc
    return block


@contextmanager
def _open(name: str) -> Iterator[BinaryIO]:
    try:
        stream = open(name, "rb")  # noqa: SIM115 - closed by this context manager
    except IsADirectoryError:
        raise InputError(f"cannot read input {name!r}: it is a directory; name a file") from None
    except FileNotFoundError:
        raise InputError(f"cannot read input {name!r}: no such file; check the path") from None
    except PermissionError:
        raise InputError(
            f"cannot read input {name!r}: permission denied; check its owner and mode"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read input {name!r}: {exc.strerror or exc}") from None
    with stream:
        yield stream
