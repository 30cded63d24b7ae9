"""stdout and stderr as operators' machines hand them over: closed (``>&-``), full
(``> /dev/full``), or a pipe whose reader went away (``| head -1``, a dead logger).

stdout is data (``list``, ``report``, ``config``): the first write it refuses stops the
command, quietly when its reader left (`ReaderGone`, exit 0), in one line otherwise
(`OutputError`, exit 1). stderr is diagnostics: a run must keep terminating and recording
when nobody reads them any more, so a write it refuses drops that line and every later
one; the result log and the exit code still tell the truth. A standard descriptor closed
at start is opened on ``/dev/null`` before anything else is opened, so that no file the
tool opens (the result log, the lock) can take its number.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import Any, TextIO

from worker.errors import OutputError, ReaderGone

__all__ = ["Stderr", "Stdout", "reopen_closed"]


def reopen_closed() -> None:
    """Put ``/dev/null`` on every standard descriptor that is closed; a closed stdout
    then refuses writes (`OutputError`), a closed stderr swallows them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _devnull_on(fd)
            if fd == 1:
                sys.stdout = _Closed()
            elif fd == 2:
                sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


def _devnull_on(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


class _Closed(io.TextIOBase):
    """sys.stdout when descriptor 1 was closed at start."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")


class Stderr:
    """A wrapper of stderr: once a write or flush fails, every later line is dropped."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                self.inner.write(text)
            except (OSError, ValueError) as exc:
                self._fail(exc)
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self.inner.flush()
            except (OSError, ValueError) as exc:
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Stdout(Stderr):
    """A wrapper of stdout: the first failed write or flush raises `ReaderGone` (a pipe
    without reader) or `OutputError`; stdout is then ``/dev/null`` and later writes vanish."""

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        with contextlib.suppress(OSError, ValueError):
            if self.inner.fileno() == 1:
                _devnull_on(1)  # so that the interpreter's own last flush cannot fail either
        if isinstance(exc, BrokenPipeError):
            raise ReaderGone("stdout's reader went away") from None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write to stdout: {reason}") from None
