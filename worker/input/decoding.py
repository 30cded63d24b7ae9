"""The bytes of an input as the readers take them: UTF-8, whatever the file was saved as.

A UTF-16 byte-order mark at the start (Excel's "Unicode text", PowerShell's ``>``) is
seen first and the input is transcoded to UTF-8; so is an input whose encoding is given
(``--encoding cp1252``). A UTF-8 BOM is left to the readers, which drop it. Without
either, bytes pass as they are: a CSV row holding bytes that are not UTF-8 (Windows-1252's
``Müller``) still gives its id, which is ASCII (`worker.input.csvrecords`).

An input that is not text at all is refused before anything is read from it: its first
block (up to `SAMPLE` bytes) is mostly NUL bytes, other control characters or bytes
that are not UTF-8 (`binary_reason`). So a random file or ``/dev/zero`` is one line,
exit 2, not millions of invalid records or a read that never ends.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from worker.errors import InputError

__all__ = ["SAMPLE", "binary_reason", "check_encoding", "read_block", "text_blocks"]

SAMPLE = 1024  # bytes of the first block judged
_BINARY_SHARE = 0.3  # more than this share of the sample not text: binary
_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
_TEXT_CONTROLS = frozenset("\t\n\r\x0b\x0c\x1b")
_UTF8 = frozenset({"utf-8", "utf_8", "utf8", "u8"})


def check_encoding(name: str) -> str:
    """The codec's canonical name; ValueError for a name Python does not know."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}; e.g. utf-8, cp1252, utf-16") from None


def binary_reason(sample: bytes) -> str | None:
    """Why ``sample`` (the start of an input) is not text, or None when it is."""
    if not sample:
        return None
    text = sample[:SAMPLE].decode("utf-8", "replace")
    nul = text.count("\x00")
    bad = text.count("\ufffd") + sum(
        1 for char in text if (char < " " and char not in _TEXT_CONTROLS) or char == "\x7f"
    )
    if bad <= _BINARY_SHARE * len(text):
        return None
    if nul * 3 >= len(text):
        return "it is mostly NUL bytes (binary, or UTF-16 without a BOM: --encoding utf-16-le)"
    return "it is mostly bytes that are not text (binary, or another encoding: --encoding)"


def text_blocks(
    stream: BinaryIO, name: str, size: int, encoding: str | None = None
) -> Iterator[bytes]:
    """The blocks of ``stream`` as UTF-8; `InputError` when its start is not text."""
    first = read_block(stream, name, size)
    while first and len(first) < 4 and (more := read_block(stream, name, size)):
        first += more  # a trickling pipe: enough bytes to see a BOM
    codec = _BOMS.get(first[:2]) if first[:4] != b"\xff\xfe\x00\x00" else None
    if codec is not None:
        first = first[2:]
    elif encoding is not None and check_encoding(encoding) not in _UTF8:
        codec = encoding
    decoder = codecs.getincrementaldecoder(codec)("replace") if codec else None
    block = decoder.decode(first).encode("utf-8") if decoder else first
    reason = binary_reason(block)
    if reason is not None:
        raise InputError(f"input {name!r} is not text: {reason}; nothing was sent from it")
    if block:
        yield block
    while raw := read_block(stream, name, size):
        if out := decoder.decode(raw).encode("utf-8") if decoder else raw:
            yield out
    if decoder is not None and (tail := decoder.decode(b"", final=True).encode("utf-8")):
        yield tail


def read_block(stream: BinaryIO, name: str, size: int) -> bytes:
    """Up to ``size`` bytes, as soon as some have arrived (a pipe is not waited on to fill)."""
    read = getattr(stream, "read1", stream.read)
    try:
        block: bytes = read(size)
    except OSError as exc:
        raise InputError(f"cannot read input {name!r}: {exc.strerror or exc}") from exc
    return block or b""
