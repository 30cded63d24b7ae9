"""Open every input once: files, stdin, pipes, process substitution, FIFOs, devices.

A regular file (or stdin redirected from one) can be read twice: counted before the run,
then read again from where it started. Anything else (a pipe, ``<(cmd)`` as
``/dev/fd/N``, a named FIFO, a character device) can be read only once, so it is opened
once and either read by the run alone or, when the ids must be counted first, copied to
an unlinked ``0600`` temporary file (a spool) and read from there, twice.

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
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from worker.errors import InputError
from worker.input.lines import read_block

__all__ = ["Source", "open_sources", "reread", "rewind"]

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
    spool_dir: Path | None = None,
    encoding: str | None = None,
) -> Iterator[list[Source]]:
    """Open each input once (none, or ``-``: stdin); with ``spool_dir``, every input that
    cannot be read twice is spooled there, so that all of them can be counted first.
    ``encoding``: what the inputs are written in when no BOM says (default UTF-8)."""
    with ExitStack() as stack:
        sources = []
        for name in inputs or ["-"]:
            source = _open_one(name, stdin, stack)
            if spool_dir is not None and not source.rereadable:
                source = _spool(source, spool_dir, stack)
            sources.append(dataclasses.replace(source, encoding=encoding))
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


def _spool(source: Source, directory: Path, stack: ExitStack) -> Source:
    """Copy a read-once input to an unlinked 0600 file in ``directory``."""
    try:
        spool = stack.enter_context(tempfile.TemporaryFile(dir=directory, buffering=0))  # noqa: SIM115
    except OSError as exc:
        raise InputError(
            f"cannot spool input {source.name!r} to count it: {exc.strerror or exc} in {directory}"
        ) from None
    try:
        while block := read_block(source.stream, source.name, _SPOOL_BLOCK):
            view = memoryview(block)
            while view:  # an unbuffered write may take part of the block
                view = view[spool.write(view) or 0 :]
    except OSError as exc:
        raise InputError(
            f"cannot spool input {source.name!r} to count it: {exc.strerror or exc} in {directory}"
        ) from None
    spool.seek(0)
    return Source(source.name, spool, True)
