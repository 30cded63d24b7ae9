"""A bare aiohttp script: the DELETEs a terminate run sends, one JSON line per answer.

What someone would write in place of the worker, and no more: one ``ClientSession``, a
semaphore of N in flight, ``gather`` over every id, and for each answer one JSON line on
stdout (the id, the HTTP status and the session's status from the body). No identity
check, retries, rate limit, resume or logs. Run as
``python -m bench.bare_delete --base-url URL --org-id ORG --ids FILE [--concurrency N]``
with the token in ``DEVIN_API_KEY``; the ids file is a CSV with a header row.
"""

import argparse
import asyncio
import json
import os
import sys

import aiohttp


async def main(base_url: str, org_id: str, ids: list[str], concurrency: int) -> None:
    prefix = f"{base_url.rstrip('/')}/v3/organizations/{org_id}/sessions/"
    headers = {"Authorization": f"Bearer {os.environ['DEVIN_API_KEY']}"}
    slots = asyncio.Semaphore(concurrency)
    out = sys.stdout
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(sid: str) -> None:
            async with slots, session.delete(f"{prefix}{sid}?archive=false") as resp:
                body = await resp.read()
            status = json.loads(body).get("status") if resp.status == 200 else None
            line = {"session_id": sid, "http_status": resp.status, "status": status}
            out.write(json.dumps(line) + "\n")

        await asyncio.gather(*(one(sid) for sid in ids))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bare_delete")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--org-id", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with open(args.ids) as fh:
        session_ids = fh.read().split()[1:]
    asyncio.run(main(args.base_url, args.org_id, session_ids, args.concurrency))
