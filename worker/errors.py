"""The few fatal errors of a run; a failure for one session is a result, never one of these.

WorkerError              base: the run cannot start or must stop (cli maps each to an exit code)
├── ConfigError          bad flag, setting, TOML file or missing token        -> exit 2
├── InputError           unreadable input, unknown CSV column, over --max-sessions -> exit 2
├── AuthError            401, or 403 for a token lacking a permission        -> exit 3
├── PreflightError       GET /v3/self: unreachable API, wrong base URL, other org -> exit 3
├── ResultLogError       the result log cannot be written (disk full, I/O error) -> exit 3
├── BreakerTripped       too many recent sessions failed                     -> exit 3
└── LockError            another run holds the lock                          -> exit 4
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base of the fatal errors."""

    exit_code = 1


class ConfigError(WorkerError):
    """A setting is missing or wrong; nothing was sent."""

    exit_code = 2


class InputError(WorkerError):
    """An input cannot be read, or the run is refused before any request."""

    exit_code = 2


class AuthError(WorkerError):
    """The API refused the token itself (401) or a permission it needs (403)."""

    exit_code = 3


class PreflightError(WorkerError):
    """The identity check before the first DELETE failed; nothing was sent."""

    exit_code = 3


class ResultLogError(WorkerError):
    """A record could not be written: the run stops sending at once."""

    exit_code = 3


class BreakerTripped(WorkerError):
    """Too many recent sessions failed; no new ones were started."""

    exit_code = 3


class LockError(WorkerError):
    """Another run holds the lock on this result log."""

    exit_code = 4
