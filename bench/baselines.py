"""What a script would do instead of the worker: the same DELETEs, nothing else.

``aiohttp``: a bare asyncio loop (one session, a semaphore, ``gather`` over every id).
``requests``: a ``requests.Session`` per thread in a ``ThreadPoolExecutor``.
Neither retries, logs, records results or limits the rate. Run as
``python -m bench.baselines KIND --base-url URL --org-id ORG --ids FILE --concurrency N``
with the token in ``DEVIN_API_KEY``; prints one JSON line: count, seconds, statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def baseline_argv(kind: str, ids: Path, base_url: str, concurrency: int) -> list[str]:
    """The command line that runs baseline ``kind`` over the ids of ``ids`` (a CSV)."""
    from bench.harness import ORG_ID  # (here: the baseline's own start stays as it was)

    return [
        sys.executable, "-m", "bench.baselines", kind, "--base-url", base_url,
        "--org-id", ORG_ID, "--ids", str(ids), "--concurrency", str(concurrency),
    ]  # fmt: skip


def _urls(base_url: str, org_id: str, ids: Sequence[str]) -> list[str]:
    prefix = f"{base_url.rstrip('/')}/v3/organizations/{org_id}/sessions/"
    return [f"{prefix}{sid}?archive=false" for sid in ids]


async def aiohttp_loop(urls: Sequence[str], token: str, concurrency: int) -> Counter[int]:
    import aiohttp

    statuses: Counter[int] = Counter()
    slots = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(url: str) -> None:
            async with slots, session.delete(url) as resp:
                await resp.read()
                statuses[resp.status] += 1

        await asyncio.gather(*(one(url) for url in urls))
    return statuses


def requests_pool(urls: Sequence[str], token: str, concurrency: int) -> Counter[int]:
    import requests

    local = threading.local()
    headers = {"Authorization": f"Bearer {token}"}

    def one(url: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update(headers)
        return int(session.delete(url, timeout=30).status_code)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return Counter(pool.map(one, urls))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["aiohttp", "requests"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--org-id", required=True)
    parser.add_argument("--ids", required=True, help="CSV with a header row, one id a line")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    with open(args.ids) as fh:
        ids = fh.read().split()[1:]
    urls = _urls(args.base_url, args.org_id, ids)
    token = os.environ["DEVIN_API_KEY"]
    started = time.perf_counter()
    if args.kind == "aiohttp":
        statuses = asyncio.run(aiohttp_loop(urls, token, args.concurrency))
    else:
        statuses = requests_pool(urls, token, args.concurrency)
    elapsed = time.perf_counter() - started
    print(json.dumps({"count": len(urls), "elapsed_s": elapsed, "statuses": dict(statuses)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
