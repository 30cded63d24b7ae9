"""What durable intent and redaction cost: ``python -m bench.intent`` prints figures and
writes ``bench/intent.json``. Not one of ``make bench``'s scenarios (seconds, not minutes).

1. The writer alone: session records per second, as before (orjson + one ``os.write``),
   with redaction of every record, and with the ``session.sending`` intent on top (two
   records per session).
2. A whole run in process against the simulator on loopback (no rate limit, concurrency 16,
   5,000 sessions): sessions per second without and with the intent record.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson

from worker.input.sources import InputItem
from worker.outcomes import SessionResult
from worker.output.logs import configure_logging
from worker.output.results import ResultLog
from worker.run.pipeline import Pipeline
from worker.settings import Settings
from worker.simulator import SimulatorConfig, running_simulator, terminable_ids

TOKEN = "cog_bench_token_0123456789"
ORG = "org-bench"
RECORDS = 200_000
SESSIONS = 5_000
REPEATS = 5


def _result(n: int) -> SessionResult:
    return SessionResult(
        f"devin-{n:08d}", "terminated", False, "exit", 200, 1, 12.5, None, f"ids.csv:{n}"
    )


def _old_write(fd: int, record: dict[str, object]) -> None:
    """The writer as it was: no redaction, no short-write check."""
    os.write(fd, orjson.dumps(record) + b"\n")


def _writer_rates(directory: Path) -> dict[str, float]:
    results = [_result(n) for n in range(RECORDS)]
    rates: dict[str, float] = {}

    log = ResultLog(directory / "plain.jsonl", "bench")
    fd = log._fd
    log.write = lambda record: _old_write(fd, record)  # type: ignore[method-assign]
    started = time.perf_counter()
    for r in results:
        log.result(r)
    rates["before: result only, unredacted"] = RECORDS / (time.perf_counter() - started)
    log.close()

    for name, intent in (("redacted", False), ("redacted + intent", True)):
        log = ResultLog(directory / f"{name}.jsonl", "bench")
        started = time.perf_counter()
        for r in results:
            if intent:
                log.sending(r.session_id or "")
            log.result(r)
        rates[f"after: {name}"] = RECORDS / (time.perf_counter() - started)
        log.close()
    return rates


async def _items(ids: list[str]) -> AsyncIterator[InputItem]:
    for session_id in ids:
        yield InputItem(session_id=session_id, source="bench", raw=session_id)


async def _run_rate(directory: Path, intent: bool, seed: int) -> float:
    config = SimulatorConfig(sessions=SESSIONS, token=TOKEN, org_id=ORG, seed=seed)
    async with running_simulator(config) as sim:
        ids = terminable_ids(sim.sessions)
        log = ResultLog(directory / f"run-{intent}-{seed}.jsonl", "bench")
        settings = Settings(org_id=ORG, token=TOKEN, base_url=sim.base_url, rate=0, concurrency=16)
        pipeline = Pipeline(settings, log.result, before_send=log.sending if intent else None)
        started = time.perf_counter()
        await pipeline.run(_items(ids))
        elapsed = time.perf_counter() - started
        log.close()
    return len(ids) / elapsed


def main() -> int:
    configure_logging(level="warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        writer = _writer_rates(directory)
        samples: dict[str, list[float]] = {"without intent": [], "with intent": []}
        for seed in range(REPEATS):  # interleaved: the machine's load drifts
            for label, intent in (("without intent", False), ("with intent", True)):
                samples[label].append(asyncio.run(_run_rate(directory, intent, seed)))
        runs = {label: statistics.median(values) for label, values in samples.items()}
    figures = {
        "writer_records_per_s": {k: round(v) for k, v in writer.items()},
        "run_sessions_per_s": {k: round(v) for k, v in runs.items()},
        "python": sys.version.split()[0],
    }
    for group, values in figures.items():
        print(group, json.dumps(values, indent=1))
    out = Path(__file__).resolve().parent / "intent.json"
    out.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
