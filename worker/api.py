"""The library entry point: terminate the sessions named by any iterable, async iterable or
``asyncio.Queue`` of ids, and get typed results back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.input.intake import from_ids
from worker.outcomes import SessionResult
from worker.output.results import ResultLog
from worker.run.pipeline import Pipeline
from worker.settings import Settings, check_base_url


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
    ``dry_run=True``, ...). Invalid ids come back as ``invalid`` results; duplicates are
    counted, not sent twice. ``results_path`` also appends every result to a result log.
    ``keep_results=False`` keeps only counts (for very long streams; use ``on_result``).
    """
    settings = Settings.model_validate(
        {"org_id": org_id, "token": token, "base_url": base_url, "archive": archive, **options}
    )
    check_base_url(settings.base_url)
    summary = RunSummary()
    log = ResultLog(results_path, uuid.uuid4().hex[:12]) if results_path else None

    def sink(result: SessionResult) -> None:
        if keep_results:
            summary.results.append(result)
        if log is not None:
            log.result(result)
        if on_result is not None:
            on_result(result)

    try:
        report = await Pipeline(settings, sink).run(from_ids(ids))
    finally:
        if log is not None:
            log.close()
    summary.counts, summary.exit_code = report.counts, report.exit_code
    summary.reason, summary.requests = report.reason, report.requests
    return summary
