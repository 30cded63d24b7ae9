"""The library entry point: terminate the sessions named by any iterable, async iterable or
``asyncio.Queue`` of ids, and get typed results back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.devin.network import check_network
from worker.errors import ConfigError
from worker.input.intake import from_ids
from worker.outcomes import SessionResult
from worker.output.logpath import check_results_path
from worker.run.preflight import require_credentials
from worker.run.recorded import RecordedRun
from worker.settings import library_settings


@dataclass(slots=True)
class RunSummary:
    """What a library run did: every result in order of settling, counts, the exit code the
    CLI would have returned, and why the run stopped early, if it did."""

    results: list[SessionResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0
    reason: str | None = None
    requests: int = 0

    def by_outcome(self, outcome: str) -> list[SessionResult]:
        return [r for r in self.results if r.outcome == outcome]


async def terminate_sessions(
    ids: Iterable[object] | AsyncIterable[object] | asyncio.Queue[Any],
    *,
    org_id: str,
    token: str,
    base_url: str = "https://api.devin.ai",
    archive: bool = False,
    results_path: str | Path | None = None,
    on_result: Callable[[SessionResult], None] | None = None,
    keep_results: bool = True,
    **options: Any,
) -> RunSummary:
    """Terminate every session id from ``ids`` (a Queue ends with a ``None`` item).

    ``options`` are any other settings by name (``concurrency=16``, ``rate=50``,
    ``dry_run=True``, ``resume=False``, ``lock="x.lock"``, ...). Invalid ids come back as
    ``invalid`` results; duplicates are counted, not sent twice. ``keep_results=False``
    keeps only counts (for very long streams; use ``on_result``).

    The run is the CLI's ``run`` (`worker.run.recorded`): the token's org is checked
    (``GET /v3/self``) before the first DELETE. With ``results_path`` it also takes the
    lock on that result log, skips the ids the log already settled (``resume=False``: moves
    the log aside), and writes ``run.started``, every result and ``run.finished``.

    Errors: a run that cannot start raises the CLI's fatal errors (``worker.errors``, each
    with its ``exit_code``): ``ConfigError`` (a bad setting, a log of another org or base
    URL), ``LockError`` (another run holds the log), ``PreflightError`` (the token belongs
    to another org, the API cannot be reached), ``AuthError`` (the token refused); nothing
    was sent then. A run stopped once sessions were in flight (the token refused, endless
    throttling, the failure breaker, a log that cannot be written) returns its summary with
    the CLI's ``exit_code`` and the ``reason``. ``max_sessions`` is refused (``ConfigError``):
    ids given here cannot be counted ahead; ``limit`` applies.
    """
    settings = library_settings(
        {"org_id": org_id, "token": token, "base_url": base_url, "archive": archive, **options}
        | ({"results": Path(results_path)} if results_path else {})
    )
    if settings.max_sessions is not None:  # silently ignoring a safety limit would be worse
        raise ConfigError(
            "max_sessions counts the ids of input files before a CLI run; ids given to "
            "terminate_sessions cannot be counted ahead. Pass limit=N (at most N new sessions)."
        )
    if settings.metrics_file is not None:
        raise ConfigError(
            "metrics_file is written by the run command at its exit; a library run returns "
            "its figures in the RunSummary (counts, exit_code, requests) instead."
        )
    if results_path:
        check_results_path(settings.results)
    require_credentials(settings)
    check_network(settings.base_url, settings.proxy, str(settings.ca_bundle or "") or None)
    summary = RunSummary()

    def sink(result: SessionResult) -> None:
        if keep_results:
            summary.results.append(result)
        if on_result is not None:
            on_result(result)

    logged = bool(results_path)
    with RecordedRun(settings, inputs=[_kind(ids)], logged=logged, on_result=sink) as run:
        report = await run.run(from_ids(ids))
    summary.counts, summary.exit_code = report.counts, report.exit_code
    summary.reason, summary.requests = report.reason, report.requests
    return summary


def _kind(ids: object) -> str:
    """What ``run.started`` names as the input of a library run."""
    if isinstance(ids, asyncio.Queue):
        return "<library: asyncio.Queue>"
    return f"<library: {'async ' if isinstance(ids, AsyncIterable) else ''}iterable>"
