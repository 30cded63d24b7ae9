"""``report --redis URL``: what the whole fleet did, from the results stream.

Every worker appends its settled results to ``STREAM:results`` (a final outcome only by the
first worker to record it), one entry per settle call whose ``records`` field holds one JSON
record a line (entries of earlier versions hold one, in ``id`` and ``record``), so the stream
holds one final record per id plus the failures.
The summary takes the latest record of each id: counts by outcome, and the failed ids with
their reasons. ``--format ids --outcome failed`` prints the ids alone, one a line, ready for
``| devin-terminate enqueue -``.

The counts are what Redis holds, never more: a Redis that lost its data (restarted without
persistence) has lost the results stream with the queue. The queue's marker (``STREAM:meta``,
written by ``enqueue``) tells: when it is missing, or fewer ids are settled and queued than
were enqueued, a warning says so; with the workers' result logs given too (``report --redis
URL W*.jsonl``), a warning names how many ids the logs settle that Redis does not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from worker.fleet.connect import Keys, mask_url
from worker.fleet.lifeline import connect
from worker.fleet.options import FleetOptions, fleet_options
from worker.outcomes import FINAL_OUTCOMES

_PAGE = 1000


@dataclass(slots=True)
class FleetSummary:
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # session id -> record
    records: int = 0
    finals: Counter[str] = field(default_factory=Counter)  # final records per session id
    pending: int = 0  # entries delivered and not yet acknowledged
    queued: int = 0  # entries in the stream (not yet settled)
    enqueued: int | None = None  # entries the queue's marker counts; None: no marker
    done: int = 0  # entries settled or dropped (acknowledged and deleted), by the marker

    @property
    def counts(self) -> Counter[str]:
        return Counter(str(r.get("outcome")) for r in self.latest.values())

    def matching(self, *outcomes: str) -> list[dict[str, Any]]:
        """The latest record of each session whose outcome is one of ``outcomes`` (all: none)."""
        return [r for r in self.latest.values() if not outcomes or r.get("outcome") in outcomes]


def summarise(options: FleetOptions) -> FleetSummary:
    """Read the fleet's results stream (and the queue's depth) into a summary."""
    return asyncio.run(_summarise(options))


async def _summarise(options: FleetOptions) -> FleetSummary:
    redis, lifeline = connect(options.url, options.password_file, options.redis_timeout)
    keys = Keys(options.stream)
    summary = FleetSummary()
    try:
        start = "-"
        while True:
            page = await lifeline.call(
                "report",
                lambda s=start: redis.xrange(keys.results, min=s, count=_PAGE),  # type: ignore[misc]
            )
            entries: list[Any] = page or []
            for entry_id, fields in entries:
                _add(summary, fields)
                start = f"({entry_id!s}"
            if len(entries) < _PAGE:
                break
        summary.queued = int(await lifeline.call("report", lambda: redis.xlen(keys.stream)))
        meta = await lifeline.call("report", lambda: redis.hgetall(keys.meta))
        summary.enqueued = int(meta.get("enqueued", 0)) if meta else None
        summary.done = int(meta.get("done", 0)) if meta else 0
        summary.pending = await lifeline.call("report", lambda: _pending(redis, options))
    finally:
        await redis.aclose()
    return summary


async def _pending(redis: Any, options: FleetOptions) -> int:
    from redis.exceptions import ResponseError

    try:
        reply = await redis.xpending(options.stream, options.group)
    except ResponseError:  # no such stream or group yet
        return 0
    return int(reply["pending"])


def _add(summary: FleetSummary, fields: dict[str, str]) -> None:
    lines = fields["records"].splitlines() if "records" in fields else [fields.get("record", "")]
    for line in lines:
        summary.records += 1
        try:
            record = orjson.loads(line or "{}")
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        session_id = record.get("session_id") or fields.get("id")
        if isinstance(session_id, str) and session_id:
            summary.latest[session_id] = record
            if record.get("outcome") in FINAL_OUTCOMES:
                summary.finals[session_id] += 1


def print_summary(summary: FleetSummary, fmt: str, outcomes: tuple[str, ...], out: TextIO) -> None:
    rows = summary.matching(*outcomes)
    if fmt == "ids":
        out.writelines(f"{r['session_id']}\n" for r in rows if r.get("session_id"))
        return
    if fmt == "json":
        data = {
            "counts": dict(summary.counts),
            "sessions": len(summary.latest),
            "queued": summary.queued,
            "pending": summary.pending,
            "failed": [_failure(r) for r in summary.matching("failed")],
        }
        out.write(orjson.dumps(data).decode() + "\n")
        return
    out.write(f"{len(summary.latest)} sessions settled by the fleet\n")
    for name, count in sorted(summary.counts.items()):
        out.write(f"  {name:<20} {count}\n")
    out.write(f"  {'still queued':<20} {summary.queued} ({summary.pending} in flight)\n")
    for r in summary.matching("failed"):
        out.write(f"failed {r.get('session_id')}: {_oneline(r.get('error'))}\n")


def _failure(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in ("session_id", "error", "http_status", "worker")}


def _oneline(text: object) -> str:
    return " ".join(str(text).split())[:300]


def report_command(args: argparse.Namespace, outcomes: tuple[str, ...]) -> int:
    """``report --redis``: the fleet's results stream instead of result-log files."""
    options = fleet_options(args)
    summary = summarise(options)
    print_summary(summary, args.format, outcomes, sys.stdout)
    sys.stderr.write(f"read {summary.records} records from {mask_url(options.url)}\n")
    for warning in disagreements(summary, args.results):
        sys.stderr.write(f"warning: {warning}\n")
    return 0


def disagreements(summary: FleetSummary, logs: list[str]) -> list[str]:
    """What says the fleet's Redis lost part of its record: no marker, fewer ids settled
    and queued than enqueued, or worker logs settling ids that Redis does not."""
    said: list[str] = []
    settled = sum(1 for r in summary.latest.values() if r.get("outcome") in FINAL_OUTCOMES)
    if summary.enqueued is None:
        said.append(
            "the queue's marker is missing: nothing was enqueued on this stream, or this "
            "Redis lost its data (restarted without persistence?); the counts are what it holds"
        )
    elif summary.enqueued is not None and summary.done + summary.queued < summary.enqueued:
        said.append(
            f"{summary.enqueued} entries were enqueued, {summary.done} done and "
            f"{summary.queued} queued: Redis lost part of the queue; the workers' result "
            "logs are the record (report W*.jsonl)"
        )
    if logs:
        from worker.output.report import summarize

        finals = {sid for sid, e in summarize(logs).latest.items() if e.outcome in FINAL_OUTCOMES}
        missing = finals - set(summary.finals)
        if missing:
            said.append(
                f"the result logs settle {len(finals)} ids, Redis {settled}: {len(missing)} "
                "settled ids are not in Redis (it lost data); trust the logs"
            )
    return said
