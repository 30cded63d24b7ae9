"""What the simulator should do: population, auth, rate limit, latency and faults.

One frozen value, checked once on construction, so a typo in a fault kind or a
`Retry-After` mode fails at start-up with a message rather than mid-run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Faults that may be injected at random (``fault_rate``) or scripted per id.
RANDOM_FAULT_KINDS: tuple[str, ...] = ("500", "502", "503", "504", "reset", "timeout", "malformed")
#: Throttling and overload answers: each may be given its own probability (``fault_mix``).
SIGNAL_FAULT_KINDS: tuple[str, ...] = (
    "503-retry-after",  # Retry-After: fault_retry_after, in seconds
    "503-retry-date",  # the same as an HTTP-date
    "429",  # Retry-After as the ``retry_after`` mode says
    "429-no-retry-after",
    "429-retry-date",
    "garbage",  # the request is carried out; the 200's body is not JSON at all
)
#: Every kind a probability may be given to, one by one (``fault_mix``).
MIX_FAULT_KINDS: tuple[str, ...] = (*RANDOM_FAULT_KINDS, *SIGNAL_FAULT_KINDS)
#: Faults that may be scripted for one id (``faults_by_id``).
SCRIPTED_FAULT_KINDS: tuple[str, ...] = (*MIX_FAULT_KINDS, "409", "404")
RETRY_AFTER_MODES: tuple[str, ...] = ("seconds", "http-date", "absent", "mixed")
LIMIT_KINDS: tuple[str, ...] = ("bucket", "window", "sliding")  # worker.simulator.ratelimit
ALREADY_TERMINATED_MODES: tuple[str, ...] = ("409", "200")
PROBLEM_CONTENT_TYPES: tuple[str, ...] = ("application/problem+json", "application/json", "mixed")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Settings of one simulated Devin organisation.

    ``rate_limit`` is requests per second for the one valid token (a token bucket of
    ``rate_burst`` tokens, by default a tenth of a second's worth; or, by ``limit_kind``,
    a fixed one-second window or a sliding one-second log); ``None`` is unlimited.
    ``faults_by_id`` maps a session id to a script of fault kinds consumed in order by
    successive requests that name that id; random faults (``fault_rate``) draw from
    ``fault_kinds``; ``fault_mix`` gives kinds a probability each (drawn before
    ``fault_rate``). ``limit_schedule`` ((seconds since the first API request, limit), ...)
    changes the rate limit during a run; its first entry replaces ``rate_limit``. The
    ratios shape the seeded population: a share terminated (``exit_ratio``), failed
    (``error_ratio``) and archived (``archived_ratio``).
    ``hostile_titles`` gives sessions titles and tags holding newlines, separators,
    quotes, other sessions' ids and token-shaped strings. ``forbidden_share`` and
    ``archive_fail_share`` pick sessions by a hash of the seed and the id (`picked`).
    """

    sessions: int = 200
    seed: int = 0
    token: str = "cog_simulator_token"
    org_id: str = "org-simulator"
    rate_limit: float | None = None
    rate_burst: int | None = None
    limit_kind: str = "bucket"
    retry_after: str = "seconds"
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    slow_429s: bool = False  # 429s take the latency too (else they are answered at once)
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = RANDOM_FAULT_KINDS
    faults_by_id: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fault_mix: Mapping[str, float] = field(default_factory=dict)
    fault_retry_after: float = 1.0
    limit_schedule: tuple[tuple[float, float], ...] = ()
    timeout_hang_s: float = 30.0
    ghost_success_rate: float = 0.5
    unknown_enums: bool = False
    hostile_titles: bool = False
    already_terminated: str = "409"
    lacks_manage_permission: bool = False
    # a share of sessions (chosen by id and seed) the token may not act on: their DELETE and
    # archive answer 403 naming a permission; reads work, and so does every other session
    forbidden_share: float = 0.0
    # a share of sessions (chosen by id and seed, apart from the above) that cannot be
    # archived: POST archive answers 500 (its first ``archive_fail_times`` times; None:
    # every time), and a DELETE with archive=true terminates only
    archive_fail_share: float = 0.0
    archive_fail_times: int | None = None
    problem_content_type: str = "application/problem+json"
    legacy_422: bool = False
    # list pages that never end: cursors that cycle A -> B -> A; or, after the last real
    # page, empty pages that still say has_next_page with a fresh cursor each time
    cycling_cursors: bool = False
    endless_empty_pages: bool = False
    exit_ratio: float = 0.2
    error_ratio: float = 0.05
    archived_ratio: float = 0.1
    service_user_id: str = "service-user-simulator"
    service_user_name: str = "Simulator Bot"

    def __post_init__(self) -> None:
        _check_choice("retry_after", self.retry_after, RETRY_AFTER_MODES)
        _check_choice("limit_kind", self.limit_kind, LIMIT_KINDS)
        _check_choice("already_terminated", self.already_terminated, ALREADY_TERMINATED_MODES)
        _check_choice("problem_content_type", self.problem_content_type, PROBLEM_CONTENT_TYPES)
        _check_faults(self)
        _check_numbers(self)

    def picked(self, share: float, session_id: str, salt: str) -> bool:
        """Whether ``session_id`` is among the ``share`` of sessions a knob ``salt`` picks:
        the same ids on every run of one seed, apart for each knob."""
        if share <= 0.0:
            return False  # (no hash can be below 0: a knob that is off costs nothing)
        digest = zlib.crc32(f"{self.seed}:{salt}:{session_id}".encode())
        return digest < share * 2**32

    @property
    def burst(self) -> int:
        """Bucket size: ``rate_burst``, else a tenth of a second's worth (at least 1)."""
        return self.burst_for(self.rate_limit or 0.0)

    def burst_for(self, limit: float) -> int:
        """The bucket size for ``limit`` requests/s (``rate_burst`` if set)."""
        if self.rate_burst is not None:
            return self.rate_burst
        return max(1, int(limit / 10))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(choices)}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _check_faults(config: SimulatorConfig) -> None:
    for kind in config.fault_kinds:
        _check_choice("fault_kinds", kind, RANDOM_FAULT_KINDS)
    for kind, share in config.fault_mix.items():
        _check_choice("fault_mix", kind, MIX_FAULT_KINDS)
        _check_probability(f"fault_mix[{kind}]", share)
    if sum(config.fault_mix.values()) > 1.0:
        raise ValueError("the probabilities of fault_mix add up to more than 1")
    for script in config.faults_by_id.values():
        for kind in script:
            _check_choice("faults_by_id", kind, SCRIPTED_FAULT_KINDS)
    if config.fault_rate > 0 and not config.fault_kinds:
        raise ValueError("fault_rate > 0 needs at least one of fault_kinds")


def _check_numbers(config: SimulatorConfig) -> None:
    shares = ("forbidden_share", "archive_fail_share")
    ratios = ("fault_rate", "ghost_success_rate", "exit_ratio", "error_ratio", "archived_ratio")
    for name in (*ratios, *shares):
        _check_probability(name, getattr(config, name))
    if config.sessions < 0:
        raise ValueError(f"sessions must be 0 or more, got {config.sessions}")
    if config.sessions and config.exit_ratio + config.error_ratio > 0.95:
        raise ValueError(
            "exit_ratio + error_ratio must stay under 0.95: sessions that can be "
            "terminated are what --sessions counts"
        )
    if config.rate_limit is not None and config.rate_limit <= 0:
        raise ValueError(
            f"rate_limit must be positive (or None for unlimited), got {config.rate_limit}"
        )
    _check_schedule(config.limit_schedule)
    if config.fault_retry_after < 0:
        raise ValueError(f"fault_retry_after must be 0 or more, got {config.fault_retry_after}")
    if config.archive_fail_times is not None and config.archive_fail_times < 1:
        raise ValueError(f"archive_fail_times must be at least 1, got {config.archive_fail_times}")
    if config.rate_burst is not None and config.rate_burst < 1:
        raise ValueError(f"rate_burst must be at least 1, got {config.rate_burst}")
    if min(config.latency_ms, config.latency_jitter_ms, config.timeout_hang_s) < 0:
        raise ValueError("latency_ms, latency_jitter_ms and timeout_hang_s must be 0 or more")


def _check_schedule(schedule: tuple[tuple[float, float], ...]) -> None:
    times = [at for at, _ in schedule]
    if times != sorted(times) or (times and times[0] != 0):
        raise ValueError("limit_schedule must start at 0 s and be in order of time")
    if any(limit <= 0 for _, limit in schedule):
        raise ValueError("every limit of limit_schedule must be positive")
