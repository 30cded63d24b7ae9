"""Peak RSS of the client while 16 answers of 200 MB are in flight (issue 10, §6).

    python -m bench.huge_answers     prints the figures, writes bench/huge_answers.json

A server in a child process streams a 200 MB body (no Content-Length, so the client
cannot refuse it up front) to each of 16 concurrent DELETEs; the client reads each answer
up to its 4 MiB cap and drops the connection. Measured: the client's peak RSS (its own
process only), the bytes the server managed to write, and that every answer failed with
"answer too large".
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from worker.devin.client import ClientOptions, DevinClient

HERE = Path(__file__).resolve().parent
CONCURRENT = 16
BODY = 200 * 1024 * 1024

_SERVER = """
import asyncio, sys
from aiohttp import web
CHUNK = b"x" * 65536
BODY = int(sys.argv[1])
async def huge(request):
    resp = web.StreamResponse(status=200)
    await resp.prepare(request)
    sent = 0
    try:
        while sent < BODY:
            await resp.write(CHUNK)
            sent += len(CHUNK)
    except ConnectionError:
        pass
    return resp
async def main():
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", huge)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def _measure(base_url: str) -> dict[str, object]:
    options = ClientOptions(base_url, "org-bench", "cog_bench", timeout=60, concurrency=CONCURRENT)
    started = time.perf_counter()
    async with DevinClient(options) as client:
        answers = await asyncio.gather(
            *(client.terminate(f"devin-huge{i}", archive=False) for i in range(CONCURRENT))
        )
    return {
        "answers": CONCURRENT,
        "body_mb": BODY // (1 << 20),
        "too_large": sum("answer too large" in a.error for a in answers),
        "wall_s": round(time.perf_counter() - started, 3),
    }


def main() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(BODY)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        figures = asyncio.run(_measure(f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(10)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    figures["rss_before_mb"] = round(before, 1)
    figures["goal"] = "peak_rss_mb < 300"
    print(json.dumps(figures, indent=2))
    (HERE / "huge_answers.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
