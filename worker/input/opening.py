"""Open every input once: files, stdin, pipes, process substitution, FIFOs, devices.

A regular file (or stdin redirected from one) can be read twice: counted before the run,
then read again from where it started. Anything else (a pipe, ``<(cmd)`` as
``/dev/fd/N``, a named FIFO, a character device) can be read only once, so it is opened
once and either read by the run alone or, when the ids must be counted first, copied to
an unlinked ``0600`` temporary file (a spool) and read from there, twice. The copy is
counted as it is made and is bounded (`Spooling`): an endless stream stops at the first id
over the limit, or at the byte bound, whichever comes first.

Streams are unbuffered (``FileIO``) and stdin is a duplicate of its descriptor: the
reading thread never holds the lock of a buffered object, so the interpreter can always
shut down, whatever that thread is waiting for, and ``sys.stdin`` is never touched.
"""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from worker.errors import InputError
from worker.input.lines import read_block

__all__ = ["Source", "Spooling", "open_sources", "reread", "rewind"]

_SPOOL_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Source:
    """One opened input: its name as given ("-" for stdin), its stream, and whether it
    can be read again from ``start`` (a regular file or a spool)."""

    name: str
    stream: BinaryIO
    rereadable: bool
    start: int = 0
    encoding: str | None = None  # --encoding: what the bytes are when no BOM says


@dataclass(frozen=True, slots=True)
class Spooling:
    """Where inputs that can be read once are copied to be counted, and the bounds of the
    copy: ``read`` reads a source being copied (it counts the ids, and raises `InputError`
    at the first over the limit); more than ``max_bytes`` copied is an `InputError` too."""

    directory: Path
    max_bytes: int
    read: Callable[[Source], None]


def rewind(source: Source) -> None:
    """Put a rereadable source back where it started, after counting."""
    source.stream.seek(source.start)


@contextmanager
def reread(sources: Sequence[Source]) -> Iterator[list[Source] | None]:
    """Second readers of rereadable sources, for reading them again at the same time as
    the first (the count of a run's ids, while the run reads them): each on a descriptor
    of its own, read with ``pread`` from ``start``, so the first reader's place never
    moves. None when one of the sources cannot be read twice or has no descriptor."""
    with ExitStack() as stack:
        yield _second_readers(sources, stack)


def _second_readers(sources: Sequence[Source], stack: ExitStack) -> list[Source] | None:
    readers = []
    for source in sources:
        if not source.rereadable:
            return None
        try:
            fd = os.dup(source.stream.fileno())
        except (OSError, ValueError):  # no descriptor: an in-memory stream
            return None
        stack.callback(os.close, fd)
        stream = cast(BinaryIO, _Pread(fd, source.start))  # read, seek and tell: all a Source needs
        readers.append(Source(source.name, stream, True, source.start, source.encoding))
    return readers


class _Pread(io.RawIOBase):
    """Reads a descriptor with ``pread`` at a place of its own; the descriptor is not
    closed here (`reread` closes it)."""

    def __init__(self, fd: int, start: int) -> None:
        self._fd, self._place = fd, start

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, len(buffer), self._place)
        buffer[: len(data)] = data
        self._place += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise io.UnsupportedOperation("only an absolute place")
        self._place = offset
        return offset

    def tell(self) -> int:
        return self._place


@contextmanager
def open_sources(
    inputs: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    spool: Spooling | None = None,
    encoding: str | None = None,
) -> Iterator[list[Source]]:
    """Open each input once (none, or ``-``: stdin); with ``spool``, every input that
    cannot be read twice is copied (`Spooling`), so that all of them can be counted first.
    ``encoding``: what the inputs are written in when no BOM says (default UTF-8)."""
    with ExitStack() as stack:
        sources = []
        for name in inputs or ["-"]:
            source = dataclasses.replace(_open_one(name, stdin, stack), encoding=encoding)
            if spool is not None and not source.rereadable:
                source = _spool(source, spool, stack)
            sources.append(source)
        yield sources


def _open_one(name: str, stdin: BinaryIO | None, stack: ExitStack) -> Source:
    if name != "-":
        return _open_file(name, stack)
    if stdin is not None:
        seekable = stdin.seekable()
        return Source("-", stdin, seekable, stdin.tell() if seekable else 0)
    return _open_stdin(stack)


def _open_stdin(stack: ExitStack) -> Source:
    try:
        if sys.stdin is None:
            raise OSError("closed")
        fd = os.dup(sys.stdin.fileno())
    except (OSError, ValueError):
        raise InputError(
            "cannot read stdin: it is closed; pipe the ids in (list | run -) or name a file"
        ) from None
    stream = stack.enter_context(os.fdopen(fd, "rb", buffering=0))
    return _described("-", stream)


def _open_file(name: str, stack: ExitStack) -> Source:
    try:
        stream = stack.enter_context(open(name, "rb", buffering=0))  # noqa: SIM115
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
    return _described(name, stream)


def _described(name: str, stream: BinaryIO) -> Source:
    mode = os.fstat(stream.fileno()).st_mode
    if stat.S_ISDIR(mode):
        raise InputError(f"cannot read input {name!r}: it is a directory; name a file")
    if stat.S_ISREG(mode):
        return Source(name, stream, True, stream.tell())
    return Source(name, stream, False)


def _spool(source: Source, spool: Spooling, stack: ExitStack) -> Source:
    """Copy a read-once input to an unlinked 0600 file in the spool's directory, counted
    (``spool.read``) and bounded as it is copied."""
    try:
        copy = stack.enter_context(tempfile.TemporaryFile(dir=spool.directory, buffering=0))  # noqa: SIM115
    except OSError as exc:
        raise _spool_error(source.name, exc, spool.directory) from None
    tee = _Tee(source, copy, spool)
    spool.read(dataclasses.replace(source, stream=cast(BinaryIO, tee)))
    while tee.read1(_SPOOL_BLOCK):  # what the count left unread (a result log's last lines)
        pass
    copy.seek(0)
    return Source(source.name, copy, True, encoding=source.encoding)


class _Tee(io.RawIOBase):
    """Reads a source and writes each block read to the spool, up to ``max_bytes``."""

    def __init__(self, source: Source, copy: BinaryIO, spool: Spooling) -> None:
        self._source, self._copy, self._spool = source, copy, spool
        self._size = 0

    def read1(self, size: int = -1) -> bytes:
        block = read_block(self._source.stream, self._source.name, size)
        self._size += len(block)
        if self._size > self._spool.max_bytes:
            raise InputError(
                f"input {self._source.name!r} goes on past {self._spool.max_bytes >> 20} MiB "
                "while it is counted for --max-sessions; nothing was sent. Give a file, or "
                "cut the stream first (head -n)"
            )
        view = memoryview(block)
        try:
            while view:  # an unbuffered write may take part of the block
                view = view[self._copy.write(view) or 0 :]
        except OSError as exc:
            raise _spool_error(self._source.name, exc, self._spool.directory) from None
        return block

    read = read1


def _spool_error(name: str, exc: OSError, directory: Path) -> InputError:
    return InputError(
        f"cannot spool input {name!r} to count it: {exc.strerror or exc} in {directory}"
    )
