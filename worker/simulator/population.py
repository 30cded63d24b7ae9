"""A seeded population of sessions, each a dict shaped like the spec's SessionResponse.

The same ``(config, now)`` always yields the same sessions, so tests and benchmarks can
name ids and expect states. Sessions are plain dicts because the server serialises them
as they are with orjson on every answer.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import SimulatorConfig

Session = dict[str, Any]

TERMINATED_STATUSES = frozenset({"exit", "error"})
TAGS = ("ci", "nightly", "experiment", "prod")
ORIGINS = ("webapp", "slack", "api", "automation", "cli", "linear", "jira", "desktop")
CATEGORIES = ("bug_fixing", "feature_development", "code_review", "refactoring_and_optimization")
DEVIN_MODES = ("normal", "fast", "lite", "ultra", "fusion", None)
PR_STATES = ("open", "merged", "closed", None)
REPOS = ("acme/api", "acme/web", "acme/infra")
TITLES = ("Fix flaky test in {}", "Upgrade dependencies of {}", "Add metrics to {}", "Review {}")
RUNNING_DETAILS = ("working", "waiting_for_user", "waiting_for_approval", "finished")
SUSPENDED_DETAILS = ("inactivity", "user_request", "usage_limit_exceeded", "out_of_credits")
LIVE_STATUSES = ("running", "suspended", "new", "claimed", "resuming")
LIVE_WEIGHTS = (40, 30, 10, 10, 10)
UNKNOWN_VALUES: Mapping[str, str] = {
    "origin": "zapier",
    "status_detail": "hibernating",
    "category": "vibe_coding",
    "devin_mode": "turbo",
}
_AGE_S = 30 * 24 * 3600
_SUSPENDED_SHARE = 0.3


def make_population(config: SimulatorConfig, now: float) -> dict[str, Session]:
    """Sessions created over the 30 days before ``now`` (unix s): ``config.sessions`` of
    them can be terminated, and already-terminated ones (``exit_ratio``, ``error_ratio``)
    come on top, so ``--sessions 2000 --write-ids`` writes 2000 ids."""
    rng = random.Random(config.seed)
    users = [f"user-{rng.getrandbits(48):012x}" for _ in range(6)]
    bots = [f"service-user-{rng.getrandbits(48):012x}" for _ in range(3)]
    sessions: dict[str, Session] = {}
    recent: list[Session] = []
    live = 0
    while live < config.sessions:
        session = _make_session(rng, config, int(now), users, bots)
        live += session["status"] not in TERMINATED_STATUSES
        _maybe_adopt(rng, session, recent)
        if config.hostile_titles:
            _make_hostile(rng, session, recent)
        recent = [*recent[-19:], session]
        sessions[session["session_id"]] = session
    return sessions


def terminable_ids(population: Mapping[str, Session]) -> list[str]:
    """Ids of the sessions a DELETE would terminate (status neither exit nor error)."""
    return [sid for sid, s in population.items() if s["status"] not in TERMINATED_STATUSES]


def write_ids_csv(path: str | Path, ids: Iterable[str]) -> None:
    """Write ``ids`` as a one-column CSV file with the header ``session_id``."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session_id"])
        writer.writerows([sid] for sid in ids)


def _make_session(
    rng: random.Random, config: SimulatorConfig, now: int, users: list[str], bots: list[str]
) -> Session:
    hex_id = f"{rng.getrandbits(128):032x}"
    created = now - rng.randrange(60, _AGE_S)
    status = _pick_status(rng, config)
    session: Session = {
        "session_id": f"devin-{hex_id}",
        "url": f"https://app.devin.ai/sessions/{hex_id}",
        "status": status,
        "status_detail": _pick_detail(rng, status),
        "tags": sorted(rng.sample(TAGS, rng.randrange(0, 3))),
        "org_id": config.org_id,
        "created_at": created,
        "updated_at": rng.randrange(created, now + 1),
        "acus_consumed": round(rng.uniform(0.0, 40.0), 2),
        "pull_requests": _make_pull_requests(rng, config.unknown_enums),
        "title": rng.choice(TITLES).format(rng.choice(REPOS)),
        "is_archived": _pick_archived(rng, config, status),
        "structured_output": {"summary": "done"} if status == "exit" else None,
        "devin_mode": rng.choice(DEVIN_MODES),
        "parent_session_id": None,
        "child_session_ids": None,
    }
    session.update(_make_provenance(rng, users, bots))
    if config.unknown_enums:
        _add_unknowns(session)
    return session


def _make_provenance(rng: random.Random, users: list[str], bots: list[str]) -> Session:
    """Who started the session, from where, and how it was classified."""
    origin = rng.choice(ORIGINS)
    by_bot = origin in ("api", "automation")
    category = rng.choice((*CATEGORIES, None))
    automation = f"automation-{rng.getrandbits(32):08x}" if origin == "automation" else None
    return {
        "origin": origin,
        "user_id": None if by_bot else rng.choice(users),
        "service_user_id": rng.choice(bots) if by_bot else None,
        "automation_id": automation,
        "playbook_id": rng.choice(("playbook-triage", "playbook-upgrade", None, None)),
        "category": category,
        "subcategory": None if category is None else "Other",
    }


def _pick_status(rng: random.Random, config: SimulatorConfig) -> str:
    roll = rng.random()
    if roll < config.exit_ratio:
        return "exit"
    if roll < config.exit_ratio + config.error_ratio:
        return "error"
    return rng.choices(LIVE_STATUSES, LIVE_WEIGHTS)[0]


def _pick_detail(rng: random.Random, status: str) -> str | None:
    if status == "running":
        return rng.choice(RUNNING_DETAILS)
    if status == "suspended":
        return rng.choice(SUSPENDED_DETAILS)
    return "error" if status == "error" else None


def _pick_archived(rng: random.Random, config: SimulatorConfig, status: str) -> bool:
    # Archived sessions are asleep or finished: archiving puts a running session to sleep.
    if status not in ("exit", "error", "suspended"):
        return False
    ended = config.exit_ratio + config.error_ratio
    eligible = ended + (1.0 - ended) * _SUSPENDED_SHARE
    return rng.random() < config.archived_ratio / max(eligible, 1e-9)


def _make_pull_requests(rng: random.Random, unknown: bool) -> list[dict[str, Any]]:
    prs: list[dict[str, Any]] = []
    for _ in range(rng.choice((0, 0, 1, 2))):
        pr: dict[str, Any] = {
            "pr_url": f"https://github.com/{rng.choice(REPOS)}/pull/{rng.randrange(1, 5000)}",
            "pr_state": rng.choice(PR_STATES),
        }
        if unknown:
            pr["pr_number"] = int(pr["pr_url"].rsplit("/", 1)[1])
            pr["is_draft"] = False
        prs.append(pr)
    return prs


def _maybe_adopt(rng: random.Random, child: Session, recent: list[Session]) -> None:
    """Make about one session in ten the child of a recent earlier one."""
    if not recent or rng.random() >= 0.1:
        return
    parent = rng.choice(recent)
    child["parent_session_id"] = parent["session_id"]
    parent["child_session_ids"] = [*(parent["child_session_ids"] or []), child["session_id"]]


def _add_unknowns(session: Session) -> None:
    """Values and fields newer than the spec: clients must read past them."""
    session.update(UNKNOWN_VALUES)
    session["subcategory"] = "Vibes"
    session["hibernation"] = {"policy": "auto", "after_s": 900}
    session["knowledge_ids"] = ["note-1"]


def _make_hostile(rng: random.Random, session: Session, recent: list[Session]) -> None:
    """A title (and sometimes tags) built to break a reader: an earlier session's id on a
    line of its own, separators of every kind, quotes, and a token-shaped string."""
    victim = rng.choice(recent)["session_id"] if recent else "devin-victim0000"
    token = f"cog_{rng.getrandbits(160):040x}"
    session["title"] = rng.choice(HOSTILE_TITLES).format(victim=victim, token=token)
    if rng.random() < 0.3:
        session["tags"] = [f"ci\n{victim}", 'a,b;c|d\t"e"', f"x\r{victim}"]


# Each {victim} is another session's id, {token} a random ``cog_`` string.
HOSTILE_TITLES = (
    "fix build\n{victim},x",
    "fix build\r\n{victim},running,,,false,,x",
    "lone CR\r{victim}",
    'quote " then\n"{victim}",',
    '"\n{victim}\n"',
    'unclosed "quote\n{victim}',
    "semi;colon|pipe\ttab,comma\n{victim};{victim}|{victim}\t{victim}",
    "{victim}",
    " {victim} ",
    "# comment\n{victim}",
    "token {token} leaked",
    "Authorization: Bearer {token}",
    '{{"session_id": "{victim}"}}\n{{"id": "{victim}"}}',
    "\ufeff{victim}\u2028{victim}\x85{victim}\x1e{victim}\x0b{victim}\x0c{victim}",
    '=HYPERLINK("http://example.invalid","{victim}")',
    "",
    "\x00nul\x00",
    'tail quote"',
)
