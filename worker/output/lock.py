"""One run at a time per result log: advisory ``flock``s that the kernel drops when the
process dies, so a lock left by a killed run never blocks the next one.

Two locks, both taken before anything is read or written:

- the result log's own inode (``flock`` on a descriptor of the log), so that one file is
  locked whatever path, symlink or hard link names it;
- the lock file (``--lock PATH``, default the log's resolved path plus ``.lock``), which
  names the holder's pid and lets several logs share one lock. It is opened without
  following a symlink, must be a regular file other than the result log, and is only
  truncated when it holds a pid or nothing (someone's file is never overwritten).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType

from worker.errors import ConfigError, LockError

_ATTEMPTS = 3  # the log may be replaced (moved aside) between open and flock: look again


def default_lock_path(results: str | os.PathLike[str]) -> Path:
    """``RESULTS.lock`` beside the file the results path resolves to (symlinks followed)."""
    return Path(f"{os.path.realpath(results)}.lock")


class RunLock:
    """``with RunLock(results, lock):`` or raise ``LockError`` (exit 4) at once, or
    ``ConfigError`` (exit 2) for a lock path that must not be used; touches nothing else."""

    def __init__(
        self, results: str | os.PathLike[str], lock: str | os.PathLike[str] | None = None
    ) -> None:
        self.results = Path(results)
        self.path = Path(lock) if lock is not None else default_lock_path(results)
        self._fds: list[int] = []

    def __enter__(self) -> RunLock:
        try:
            log_fd = _open(self.results, os.O_RDONLY | os.O_CREAT, "result log")
            self._fds.append(log_fd)
            lock_fd = _open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, "lock file")
            self._fds.append(lock_fd)
            self._check_lock_file(lock_fd, log_fd)
            if not _take(lock_fd):
                raise self._held_by_other(lock_fd)
            self._lock_log()
            with contextlib.suppress(OSError):  # the pid is a courtesy: a full disk may refuse it
                os.ftruncate(lock_fd, 0)
                os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _check_lock_file(self, lock_fd: int, log_fd: int) -> None:
        mine, log = os.fstat(lock_fd), os.fstat(log_fd)
        if (mine.st_dev, mine.st_ino) == (log.st_dev, log.st_ino):
            raise ConfigError(
                f"--lock {self.path} is the result log {self.results} itself (or a link to "
                "it); the lock must be a file of its own, e.g. the default RESULTS.lock"
            )
        if not stat.S_ISREG(mine.st_mode):
            raise ConfigError(f"the lock file {self.path} is not a regular file; pass --lock PATH")
        content = os.pread(lock_fd, 64, 0).strip()
        if mine.st_size > 32 or (content and not content.isdigit()):
            raise ConfigError(
                f"{self.path} is not a lock file (it holds other data) and will not be "
                "overwritten; pass --lock PATH naming a lock file"
            )

    def _held_by_other(self, lock_fd: int) -> LockError:
        holder = os.pread(lock_fd, 32, 0).decode(errors="replace").strip() or "unknown"
        return LockError(
            f"another run (pid {holder}) holds the lock {self.path}; it is still working on "
            "this result log. Wait for it to finish, or give this run its own --results file."
        )

    def _lock_log(self) -> None:
        """flock the log's inode; reopen when the path was replaced before the lock was got."""
        for _ in range(_ATTEMPTS):
            fd = self._fds[0]
            if not _take(fd):
                break
            try:
                now = os.stat(self.results)
            except FileNotFoundError:
                now = None
            held = os.fstat(fd)
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return
            os.close(fd)
            self._fds[0] = -1
            self._fds[0] = _open(self.results, os.O_RDONLY | os.O_CREAT, "result log")
        raise self._log_held()

    def _log_held(self) -> LockError:
        return LockError(
            f"another run holds the result log {self.results} (perhaps through another name: "
            "a symlink or hard link). Wait for it to finish, or give this run its own --results."
        )

    def _release(self) -> None:
        for fd in self._fds:
            if fd >= 0:
                os.close(fd)  # closing drops the flock
        self._fds.clear()


def _open(path: Path, flags: int, what: str) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if what == "lock file" and os.path.islink(path):
            raise ConfigError(
                f"the lock file {path} is a symbolic link; it is not followed. "
                "Remove it, or pass --lock PATH naming a file of its own."
            ) from None
        raise ConfigError(f"cannot open the {what} {path}: {exc.strerror}") from None


def _take(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
