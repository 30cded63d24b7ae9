"""Before anything is sent: credentials present, inputs readable, ids counted against
--max-sessions, a person's confirmation on a terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from worker.errors import ConfigError, InputError
from worker.input.opening import Source
from worker.input.sources import check_sources, count_sources
from worker.settings import TOKEN_ENV, Settings

Confirm = Callable[[int | None, Settings], bool]


def require_credentials(settings: Settings) -> str:
    if settings.token is None:
        raise ConfigError(
            f"no API token: set {TOKEN_ENV} (a cog_... service-user key) or pass --token-file PATH"
        )
    if not settings.org_id:
        raise ConfigError("no organization: pass --org-id org-... or set DEVIN_ORG_ID")
    return settings.token.get_secret_value()


def preflight(
    settings: Settings,
    sources: Sequence[Source],
    confirm: Confirm | None,
) -> int | None:
    """Check inputs, count distinct ids (streaming), enforce --max-sessions, confirm.

    ``sources`` are the inputs opened once (`worker.input.opening.open_sources`). The
    count is known when every input can be read twice: regular files, and stdin or pipes
    that ``run_job`` spooled (it does when --max-sessions is set).
    """
    require_credentials(settings)
    check_sources(sources, column=settings.column)
    total = _count(settings, sources)
    if settings.max_sessions is not None and total is not None and total > settings.max_sessions:
        raise InputError(
            f"the input holds {total} distinct session ids, more than --max-sessions "
            f"{settings.max_sessions}; nothing was sent. Raise the limit or split the input."
        )
    if confirm is not None and not confirm(total, settings):
        raise InputError("not confirmed; nothing was sent")
    return total


def _count(settings: Settings, sources: Sequence[Source]) -> int | None:
    """Distinct ids of the inputs, or None when one of them can be read only once."""
    if not all(source.rereadable for source in sources):
        return None
    return count_sources(sources, column=settings.column, outcomes=settings.outcome)[0]


def spool_dir(settings: Settings) -> Path | None:
    """Where inputs that can be read once are copied when their ids must be counted."""
    if settings.max_sessions is None:
        return None
    return settings.results.resolve().parent
