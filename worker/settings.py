"""Settings: built-in defaults < TOML file (``--config``) < environment < command-line flags.

Names line up: flag ``--max-attempts`` = TOML ``max_attempts`` = env
``DEVIN_TERMINATE_MAX_ATTEMPTS``, except the conventional ``DEVIN_API_KEY`` (the token:
environment or ``--token-file`` only, never a flag or TOML value), ``DEVIN_ORG_ID`` and
``DEVIN_API_URL``. Every error names the setting and where its value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import worker._checks as c
import worker._rules as r
from worker._base_url import check_base_url, normalized_base_url
from worker._layers import from_env, read_toml
from worker._names import TOKEN_ENV, env_name, flag_name
from worker._table import ROWS
from worker._token import Secret, read_token
from worker.errors import ConfigError
from worker.outcomes import OUTCOMES, Outcome

__all__ = [
    "TOKEN_ENV",
    "Settings",
    "check_base_url",
    "env_name",
    "library_settings",
    "load_settings",
]

AUTO_CONCURRENCY_MAX = 256  # connections one worker opens at most with --concurrency auto


def _secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(c.text(value))


# Every setting's type and bounds (defaults and help text: the one table, worker._table).
# inf and nan are refused everywhere: "--timeout inf" is a typo, not a wish.
_CHECKS: dict[str, c.Check] = {
    "org_id": c.optional(c.matching(r"^org-[A-Za-z0-9_-]{1,128}$")),
    "base_url": c.steps(c.text, normalized_base_url),
    "token_file": c.optional(c.path),
    "ca_bundle": c.optional(c.path),
    "proxy": c.optional(c.text),
    "archive": c.boolean,
    # "auto": sized from the rate and the answer times seen (worker/run/slots.py)
    "concurrency": c.steps(r.auto_or_count),
    "rate": c.steps(c.number(ge=0, le=r.MAX_RATE), r.rate_floor),
    "burst": c.optional(c.integer(ge=1)),
    "adaptive": c.boolean,
    "max_attempts": c.integer(ge=1, le=100),
    "timeout": c.number(ge=0.01, le=3600),
    "backoff_base": c.number(ge=0),
    "backoff_max": c.number(ge=0),
    "retry_after_max": c.number(ge=0),
    "retry_budget": c.integer(ge=0),
    "session_timeout": c.number(gt=0, le=86400),
    "throttle_timeout": c.number(gt=0, le=86400),
    "breaker_window": c.integer(ge=1),
    "breaker_threshold": c.number(gt=0, le=1),
    "drain_timeout": c.number(ge=0, le=3600),
    "results": c.path,
    "resume": c.boolean,
    "dry_run": c.boolean,
    "max_sessions": c.optional(c.integer(ge=0)),
    "limit": c.optional(c.integer(ge=1)),
    "yes": c.boolean,
    "column": c.optional(c.text),
    "encoding": c.optional(c.steps(c.text, r.known_encoding)),
    # outcomes of a result log given as input whose ids are taken (None: failed,
    # cancelled, would_terminate)
    "outcome": c.optional(c.steps(r.split_outcomes, c.items(c.choice(*OUTCOMES)))),
    "metrics_file": c.optional(c.path),
    "lock": c.optional(c.path),
    "log_format": c.choice("auto", "console", "json"),
    "log_level": c.choice("debug", "info", "warning", "error"),
    "progress": c.choice("auto", "on", "off"),
    # None: every 30 s in JSON, every 300 s in text
    "progress_interval": c.optional(c.number(ge=0.01, le=86400)),
    "token": c.optional(_secret),
}
_DEFAULTS: dict[str, Any] = {row.name: row.default for row in ROWS} | {"token": None}


class Settings:
    """Every setting of ``run`` (and the connection settings of ``list``), checked:
    ``Settings(rate=5)``, the rest their defaults; frozen. Types and bounds are the checks
    above, defaults and help text the one table (``worker._table``). A value that does not
    pass raises ``SettingsError`` (``load_settings`` and ``library_settings`` turn it into a
    ``ConfigError`` that names where the value came from)."""

    NAMES: tuple[str, ...] = tuple(name for name in _CHECKS if name != "token")
    SWITCHES: tuple[str, ...] = tuple(n for n in NAMES if _CHECKS[n] is c.boolean)
    __slots__ = (*_CHECKS, "_given", "_origins")

    org_id: str | None
    base_url: str
    token_file: Path | None
    ca_bundle: Path | None
    proxy: str | None
    archive: bool
    concurrency: int | Literal["auto"]
    rate: float
    burst: int | None
    adaptive: bool
    max_attempts: int
    timeout: float
    backoff_base: float
    backoff_max: float
    retry_after_max: float
    retry_budget: int
    session_timeout: float
    throttle_timeout: float
    breaker_window: int
    breaker_threshold: float
    drain_timeout: float
    results: Path
    resume: bool
    dry_run: bool
    max_sessions: int | None
    limit: int | None
    yes: bool
    column: str | None
    encoding: str | None
    outcome: tuple[Outcome, ...] | None
    metrics_file: Path | None
    lock: Path | None
    log_format: Literal["auto", "console", "json"]
    log_level: Literal["debug", "info", "warning", "error"]
    progress: Literal["auto", "on", "off"]
    progress_interval: float | None
    token: Secret | None
    _given: frozenset[str]
    _origins: dict[str, str]

    def __init__(self, **values: Any) -> None:
        unknown = [name for name in values if name not in _CHECKS]
        found, faults = c.run_checks(_CHECKS, values)
        if faults or unknown:
            raise SettingsError(faults, unknown)
        for name, default in _DEFAULTS.items():
            object.__setattr__(self, name, found.get(name, default))
        object.__setattr__(self, "_given", frozenset(values))
        object.__setattr__(self, "_origins", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are frozen: {name} cannot be changed")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _CHECKS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:  # never the token
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.NAMES)
        return f"Settings({shown})"

    def replace(self, **changes: Any) -> Settings:
        """These settings with ``changes`` (checked), as ``dataclasses.replace``; what was
        given and where it came from stay as they were, the changes given."""
        new = Settings(**({name: getattr(self, name) for name in _CHECKS} | changes))
        object.__setattr__(new, "_given", self._given | frozenset(changes))
        object.__setattr__(new, "_origins", dict(self._origins))
        return new

    def given(self, name: str) -> bool:
        """Whether ``name`` was set (by any layer or argument), not left to its default."""
        return name in self._given

    def origin(self, name: str) -> str:
        """Where the setting ``name`` came from, as a message names it."""
        return self._origins.get(name, "the default")

    @property
    def token_origin(self) -> str:
        return f"the token file {self.token_file}" if self.token_file else TOKEN_ENV

    @property
    def in_flight_max(self) -> int:
        """The most requests in flight ever: ``--concurrency``, or auto's ceiling."""
        return AUTO_CONCURRENCY_MAX if self.concurrency == "auto" else self.concurrency

    def public(self) -> dict[str, Any]:
        """The settings as written to ``run.started``: JSON-ready, no secret."""
        return {name: _json(getattr(self, name)) for name in self.NAMES}


def _json(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class SettingsError(ValueError):
    """Values ``Settings`` refused: ``faults`` [(name, what is wrong)], ``unknown`` names."""

    def __init__(self, faults: list[tuple[str, str]], unknown: list[str]) -> None:
        super().__init__("; ".join([*(f"{n}: {m}" for n, m in faults), *unknown]))
        self.faults, self.unknown = faults, unknown


def load_settings(
    flags: Mapping[str, Any], *, config: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge the four layers and validate; raise ConfigError with a teaching message."""
    environ = os.environ if environ is None else environ
    layers: dict[str, tuple[Any, str]] = {}
    if config:
        toml = read_toml(config, Settings.SWITCHES)
        layers.update({k: (v, f"{config}") for k, v in toml.items()})
    layers.update(from_env(environ, Settings.NAMES))
    layers.update({k: (v, flag_name(k)) for k, v in flags.items() if v is not None})
    values = {key: value for key, (value, _) in layers.items()}
    values["token"] = read_token(values.get("token_file"), environ)

    try:
        settings = Settings(**values)
    except SettingsError as exc:
        raise ConfigError(_explain(exc, layers)) from None
    check_base_url(settings.base_url)
    settings._origins.update({key: origin for key, (_, origin) in layers.items()})
    return settings


def library_settings(values: Mapping[str, Any]) -> Settings:
    """The settings of a library call, given by name; ConfigError like the CLI's."""
    try:
        settings = Settings(**values)
    except SettingsError as exc:
        raise ConfigError(
            _explain(exc, {k: (v, "an argument") for k, v in values.items()})
        ) from None
    check_base_url(settings.base_url)
    return settings


def _explain(exc: SettingsError, layers: Mapping[str, tuple[Any, str]]) -> str:
    lines = []
    for name, fault in exc.faults:
        origin = layers.get(name, (None, "default"))[1]
        lines.append(f"setting {name} (from {origin}): {fault}")
    for name in exc.unknown:
        origin = layers.get(name, (None, "default"))[1]
        lines.append(f"unknown setting {name!r} (from {origin}); see config/example.toml")
    return "; ".join(lines)
