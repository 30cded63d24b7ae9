"""A reference server that is not ours: the few routes a terminate run asks, nothing else.

Written apart from ``worker.simulator`` (none of its code, models or knobs), so that the
floor scenarios measure the worker and its bare baselines against the same plain server:
``GET /v3/self`` names the org, every ``DELETE .../sessions/{id}`` answers 200 with a
session body (status ``exit``), and the server notes the wall time of the first DELETE it
receives. No rate limit, no latency, no faults. Run as
``python -m bench.reference --port 0 --token T --org-id ORG``; the first line on stderr
says where it listens. ``GET /_reference/stats`` gives ``{"deletes", "first_delete_at"}``;
``POST /_reference/reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence

from aiohttp import web

_BODY = (
    '{{"session_id":"{sid}","org_id":"{org}","status":"exit","status_detail":null,'
    '"is_archived":false,"title":"reference","created_at":1764000000,'
    '"updated_at":1764000000,"acus_consumed":1.5,"tags":[],"pull_requests":[],'
    '"url":"https://app.devin.ai/sessions/{sid}","user_id":null,"origin":"api",'
    '"category":null,"subcategory":null,"structured_output":null,"parent_session_id":null,'
    '"child_session_ids":null,"playbook_id":null,"service_user_id":null}}'
)


class Reference:
    def __init__(self, token: str, org_id: str) -> None:
        self.auth = f"Bearer {token}"
        self.org_id = org_id
        self.deletes = 0
        self.first_delete_at: float | None = None

    async def me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"detail": "bad token"}, status=401)
        return web.json_response(
            {
                "principal_type": "service_user",
                "service_user_id": "su-reference",
                "service_user_name": "reference",
                "org_id": self.org_id,
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        if self.first_delete_at is None:
            self.first_delete_at = time.time()
        self.deletes += 1
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"detail": "bad token"}, status=401)
        sid = request.match_info["sid"]
        body = _BODY.format(sid=sid, org=self.org_id)
        return web.Response(text=body, content_type="application/json")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"deletes": self.deletes, "first_delete_at": self.first_delete_at})

    async def reset(self, request: web.Request) -> web.Response:
        self.deletes, self.first_delete_at = 0, None
        return web.json_response({})


def app(token: str, org_id: str) -> web.Application:
    ref = Reference(token, org_id)
    application = web.Application()
    application.router.add_get("/v3/self", ref.me)
    application.router.add_delete("/v3/organizations/{org}/sessions/{sid}", ref.delete)
    application.router.add_get("/_reference/stats", ref.stats)
    application.router.add_post("/_reference/reset", ref.reset)
    return application


async def _serve(port: int, token: str, org_id: str) -> None:
    runner = web.AppRunner(app(token, org_id), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"reference server at http://127.0.0.1:{bound}", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--org-id", required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token, args.org_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
