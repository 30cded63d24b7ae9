"""One run at a time per result log: an advisory ``flock`` that the kernel drops when the
process dies, so a lock left by a killed run never blocks the next one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from worker.errors import LockError


class RunLock:
    """``with RunLock(path):`` or raise ``LockError`` at once, touching nothing else."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = -1

    def __enter__(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockError(
                f"another run (pid {holder}) holds the lock {self.path}; it is still working on "
                "this result log. Wait for it to finish, or give this run its own --results file."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
