"""The fatal errors: the run cannot start or must stop. A failure for one session is a result
(``SessionResult``), never one of these. ``cli`` maps each to its exit code
(``WorkerError.exit_code``), which is all that distinguishes one class from another; the
library (``terminate_sessions``) raises them as they are.

WorkerError          base                                                          exit 1
├── ConfigError      bad flag, setting, TOML file, missing token, refused list query exit 2
│   └── ConsumerClash (worker/fleet/lease.py) another live worker has this --consumer
├── InputError       unreadable input, unknown CSV column, over --max-sessions     exit 2
├── AuthError        401, or 403 for a token lacking a permission (list, preflight) exit 3
├── PreflightError   GET /v3/self: unreachable API, wrong base URL, other org      exit 3
├── ResultLogError   the result log cannot be written (disk full, I/O error)        exit 3
├── PagingError      ``list``: the API's pages never end (a cursor repeats, ...)    exit 3
├── LockError        another run holds the lock                                     exit 4
├── OutputError      stdout cannot be written (closed, full): list, report, config  exit 1
│   └── ReaderGone   stdout's reader went away (``| head``): a quiet stop            exit 0
├── RedisUnavailable (worker/fleet/lifeline.py) Redis away past --redis-timeout     exit 3
├── QueueLost        (worker/fleet/lifeline.py) the queue's stream/group/marker gone exit 3
└── RedisRefused     (worker/fleet/lifeline.py) password, ACL, Redis version        exit 2

Once sessions are in flight, nothing is raised: a refused token (401/403), endless throttling,
the failure breaker, a failed result log write and a signal each halt the run through its
``Halt`` (worker/run/halt.py); the run's report then carries exit 3 (or 130/143).
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base of the fatal errors."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class ConfigError(WorkerError, exit_code=2):
    """A setting is missing or wrong; nothing was sent."""


class InputError(WorkerError, exit_code=2):
    """An input cannot be read, or the run is refused before any request."""


class AuthError(WorkerError, exit_code=3):
    """The API refused the token itself (401) or a permission it needs (403)."""


class PreflightError(WorkerError, exit_code=3):
    """The identity check before the first DELETE failed; nothing was sent."""


class ResultLogError(WorkerError, exit_code=3):
    """A record could not be written: the run stops sending at once."""


class PagingError(WorkerError, exit_code=3):
    """``list`` stopped paging: a cursor came back, pages stayed empty, or too many pages."""


class LockError(WorkerError, exit_code=4):
    """Another run holds the lock on this result log."""


class OutputError(WorkerError, exit_code=1):
    """stdout cannot be written (closed, disk full): a command whose output is data stops."""


class ReaderGone(OutputError, exit_code=0):
    """stdout's reader went away (``| head -1``): the command stops quietly, as asked."""
