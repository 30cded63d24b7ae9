"""Whether a path can be the result log, said before anything else is done (exit 2 for a
directory, a missing or read-only directory, a file that cannot be appended to), and the
words of a log that cannot be opened: a full or read-only disk stops the run as a write
would, anything else is a configuration error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from worker.errors import ConfigError, ResultLogError

__all__ = ["check_results_path", "open_error"]


def open_error(path: Path, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
        return ResultLogError(f"cannot write the result log {path}: {exc.strerror}")
    return ConfigError(
        f"cannot open the result log {path}: {exc.strerror}; "
        "pass --results PATH naming a writable file"
    )


def check_results_path(path: str | os.PathLike[str]) -> None:
    """Exit 2 before anything else when the result log cannot be a file we append to."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"--results {path} is a directory; pass a file name, e.g. {path}/results.jsonl"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "does not exist" if not parent.exists() else "is not a directory"
        raise ConfigError(f"cannot create the result log {path}: {parent} {what}")
    if not path.exists():  # created later, after the preflight: a refused run leaves no file
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot create the result log {path}: {parent} is not writable")
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise open_error(path, exc) from None
    os.close(fd)
