"""The ``list`` command: page through the organization's sessions, print matches as CSV.

Server-side filters are the query parameters of ``GET /v3/organizations/{org_id}/sessions``;
``--status`` is applied here, since the API has no status filter. The CSV on stdout
(RFC 4180, or ``--format ids``: bare ids) has a ``session_id`` column, so it pipes straight
into ``devin-terminate run -``, which reads every row back whole whatever the titles hold.
Only argparse and the standard library are imported at module level: building the parser
stays fast.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from worker.commands.options import parse_duration, parse_time

if TYPE_CHECKING:
    from worker.devin.network import QueryValue
    from worker.output.rows import RowWriter
    from worker.settings import Settings

COLUMNS = ("session_id", "status", "created_at", "updated_at", "is_archived", "tags", "title")
PAGE_SIZE = 200
# (flag, query key, metavar, help); list keys repeat, WHEN values are times
_FILTERS: list[tuple[str, str, str, str]] = [
    ("--tag", "tags", "TAG", "has this tag (repeatable: any of them)"),
    ("--user-id", "user_ids", "ID", "started by this user (repeatable: any)"),
    ("--service-user-id", "service_user_ids", "ID", "started by this service user (repeatable)"),
    ("--origin", "origins", "ORIGIN", "webapp, slack, api, ... (repeatable: any)"),
    ("--created-after", "created_after", "WHEN", "created at or after WHEN"),
    ("--created-before", "created_before", "WHEN", "created before WHEN"),
    ("--updated-after", "updated_after", "WHEN", "updated at or after WHEN"),
    ("--updated-before", "updated_before", "WHEN", "updated before WHEN"),
    ("--playbook-id", "playbook_id", "ID", "started from this playbook"),
    ("--parent-session-id", "parent_session_id", "ID", "children of this session"),
    ("--category", "category", "NAME", "of this category, e.g. bug_fixing"),
]
_LISTS = frozenset({"tags", "user_ids", "service_user_ids", "origins"})


PARSER = {
    "help": "print matching session ids as CSV (pipe into `run -`)",
    "description": "Print the organization's sessions that match every filter, as CSV on stdout.",
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_list_arguments(parser)


def main(args: argparse.Namespace) -> int:
    return list_command(args)


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """The filters and output options of ``list`` (connection flags are added by cli)."""
    _add_server_filters(parser.add_argument_group("filters (server-side, all must hold)"))
    _add_output_options(parser.add_argument_group("filter and output (client-side)"))
    parser.epilog = (
        "WHEN is unix seconds, an ISO date (UTC unless an offset is given) or a duration back\n"
        "from now (30m, 12h, 7d). Example:\n"
        "  devin-terminate list --status running --idle-for 7d | devin-terminate run - --yes"
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _add_server_filters(group: argparse._ArgumentGroup) -> None:
    for flag, key, metavar, text in _FILTERS:
        options: dict[str, Any] = {"metavar": metavar}
        if key in _LISTS:
            options["action"] = "append"
        if metavar == "WHEN":
            options["type"] = parse_time
        group.add_argument(flag, dest=f"q_{key}", help=text, **options)
    archived = group.add_mutually_exclusive_group()
    archived.add_argument(
        "--archived",
        dest="q_is_archived",
        action="store_true",
        default=None,
        help="archived sessions only",
    )
    archived.add_argument(
        "--not-archived",
        dest="q_is_archived",
        action="store_false",
        default=None,
        help="sessions not archived only",
    )
    group.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="DURATION",
        help="created more than DURATION ago: 90m, 12h, 7d, 2w",
    )
    group.add_argument(
        "--idle-for",
        type=parse_duration,
        metavar="DURATION",
        help="not updated for DURATION (updated_at more than DURATION ago): 30m, 12h, 7d",
    )


def _add_output_options(local: argparse._ArgumentGroup) -> None:
    local.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="status is one of these: new, claimed, running, suspended, "
        "resuming, exit, error (repeatable, or a,b); an unknown name is an error",
    )
    local.add_argument(
        "--columns",
        type=_columns,
        default=COLUMNS,
        metavar="A,B,...",
        help=f"CSV columns, any session field (default {','.join(COLUMNS)})",
    )
    local.add_argument("--limit", type=int, metavar="N", help="print at most N sessions")
    local.add_argument(
        "--format",
        choices=("csv", "ids"),
        default="csv",
        help="csv: RFC 4180 with a header (default); ids: one bare session id a line",
    )


def build_query(args: argparse.Namespace, now: float) -> dict[str, QueryValue]:
    """The server-side query of ``args``; ``--older-than`` counts back from ``now``."""
    query: dict[str, QueryValue] = {"first": PAGE_SIZE}
    for _, dest, _, _ in _FILTERS:
        value = getattr(args, f"q_{dest}", None)
        if value is not None:
            query[dest] = value
    if getattr(args, "q_is_archived", None) is not None:
        query["is_archived"] = bool(args.q_is_archived)
    for flag, key in (("older_than", "created_before"), ("idle_for", "updated_before")):
        if getattr(args, flag, None) is not None:
            cutoff = int(now - getattr(args, flag))
            earlier = query.get(key)
            query[key] = min(cutoff, earlier) if isinstance(earlier, int) else cutoff
    return query


def list_command(args: argparse.Namespace, *, now: Callable[[], float] = time.time) -> int:
    """Run ``list``: 0 when every page was read, 1 when paging stopped early; raises
    ConfigError (exit 2) or AuthError (exit 3) when the API refuses the query or token."""
    import asyncio

    from worker.commands.options import settings_from

    settings = settings_from(args)
    statuses = check_statuses(args.status)
    query = build_query(args, now())
    from worker.output.rows import RowWriter

    writer = RowWriter(args.columns, getattr(args, "format", "csv"))
    # a reader that leaves (``| head``) ends it through ReaderGone (worker.output.standard)
    return asyncio.run(_list(settings, query, statuses, args.limit, writer))


async def _list(
    settings: Settings,
    query: dict[str, QueryValue],
    statuses: frozenset[str],
    limit: int | None,
    out: RowWriter,
) -> int:
    from worker.devin.client import ClientOptions, DevinClient
    from worker.run.identity import check_identity
    from worker.run.pager import Pager
    from worker.run.preflight import require_credentials

    options = ClientOptions.from_settings(settings, require_credentials(settings))
    pager = Pager(settings)
    try:
        async with DevinClient(options) as client:
            # who the token is first: an unreachable API or another org is one line, exit 3
            await check_identity(
                client,
                org_id=settings.org_id or "",
                base_url=settings.base_url,
                token_from=settings.token_origin,
                org_from=settings.origin("org_id"),
            )
            while True:
                page = await pager.fetch(client, query)
                if page is None:
                    return 1
                kept = [s for s in page.items if not statuses or str(s.status) in statuses]
                if out.rows(kept, limit) or not pager.advance(page, query):
                    return 0 if pager.complete else 1
    finally:
        await pager.gate.aclose()


def _columns(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if "session_id" not in names:
        raise argparse.ArgumentTypeError("--columns must include session_id (run - reads it)")
    return names


def check_statuses(given: list[str] | None) -> frozenset[str]:
    """The ``--status`` names (repeated or comma-separated); ConfigError (exit 2) for a name
    the API does not use: a typo must not silently match nothing."""
    from worker.commands.options import did_you_mean
    from worker.devin.models import SessionStatus
    from worker.errors import ConfigError

    known = [s.value for s in SessionStatus]
    names = frozenset(
        n.strip().lower() for text in given or () for n in text.split(",") if n.strip()
    )
    for name in sorted(names):
        if name not in known:
            raise ConfigError(
                f"--status {name!r} is not a session status{did_you_mean(name, known)}; "
                f"known: {', '.join(known)}"
            )
    return names
