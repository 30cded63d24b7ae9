"""Settings: built-in defaults < TOML file (``--config``) < environment < command-line flags.

Names line up: flag ``--max-attempts`` = TOML ``max_attempts`` = env
``DEVIN_TERMINATE_MAX_ATTEMPTS``, except the conventional ``DEVIN_API_KEY`` (the token:
environment or ``--token-file`` only, never a flag or TOML value), ``DEVIN_ORG_ID`` and
``DEVIN_API_URL``. Every error names the setting and where its value came from.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)

from worker._layers import from_env, read_toml
from worker._names import TOKEN_ENV, env_name, flag_name
from worker._table import default
from worker._token import read_token
from worker.errors import ConfigError
from worker.outcomes import Outcome

__all__ = [
    "TOKEN_ENV",
    "Settings",
    "check_base_url",
    "env_name",
    "library_settings",
    "load_settings",
]

_MIN_RATE = 0.01  # one request every 100 s: anything slower is a typo
_MAX_RATE = 100_000.0
_MAX_CONCURRENCY = 1024
AUTO_CONCURRENCY_MAX = 256  # connections one worker opens at most with --concurrency auto


class Settings(BaseModel):
    """Every setting of ``run`` (and the connection settings of ``list``): types and bounds
    here, defaults and help text in the one table (``worker._table``)."""

    # inf and nan are refused everywhere: "--timeout inf" is a typo, not a wish
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    org_id: str | None = Field(default("org_id"), pattern=r"^org-[A-Za-z0-9_-]{1,128}$")
    base_url: str = default("base_url")
    token_file: Path | None = default("token_file")
    ca_bundle: Path | None = default("ca_bundle")
    proxy: str | None = default("proxy")
    archive: bool = default("archive")
    # "auto": sized from the rate and the answer times seen (worker/run/slots.py)
    concurrency: int | Literal["auto"] = default("concurrency")
    rate: float = Field(default("rate"), ge=0, le=_MAX_RATE)
    burst: int | None = Field(default("burst"), ge=1)
    adaptive: bool = default("adaptive")
    max_attempts: int = Field(default("max_attempts"), ge=1, le=100)
    timeout: float = Field(default("timeout"), ge=0.01, le=3600)
    backoff_base: float = Field(default("backoff_base"), ge=0)
    backoff_max: float = Field(default("backoff_max"), ge=0)
    retry_after_max: float = Field(default("retry_after_max"), ge=0)
    retry_budget: int = Field(default("retry_budget"), ge=0)
    session_timeout: float = Field(default("session_timeout"), gt=0, le=86400)
    throttle_timeout: float = Field(default("throttle_timeout"), gt=0, le=86400)
    breaker_window: int = Field(default("breaker_window"), ge=1)
    breaker_threshold: float = Field(default("breaker_threshold"), gt=0, le=1)
    drain_timeout: float = Field(default("drain_timeout"), ge=0, le=3600)
    results: Path = default("results")
    resume: bool = default("resume")
    dry_run: bool = default("dry_run")
    max_sessions: int | None = Field(default("max_sessions"), ge=0)
    limit: int | None = Field(default("limit"), ge=1)
    yes: bool = default("yes")
    column: str | None = default("column")
    encoding: str | None = default("encoding")
    # outcomes of a result log given as input whose ids are taken (None: failed,
    # cancelled, would_terminate); a string is split on commas (env, TOML)
    outcome: tuple[Outcome, ...] | None = default("outcome")
    metrics_file: Path | None = default("metrics_file")
    lock: Path | None = default("lock")
    log_format: Literal["auto", "console", "json"] = default("log_format")
    log_level: Literal["debug", "info", "warning", "error"] = default("log_level")
    progress: Literal["auto", "on", "off"] = default("progress")
    # None: every 30 s in JSON, every 300 s in text
    progress_interval: float | None = Field(default("progress_interval"), ge=0.01, le=86400)

    token: SecretStr | None = Field(None, exclude=True, repr=False)
    # where each value came from: its flag, variable or config file (absent: the default)
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    def origin(self, name: str) -> str:
        """Where the setting ``name`` came from, as a message names it."""
        return self._origins.get(name, "the default")

    @property
    def token_origin(self) -> str:
        return f"the token file {self.token_file}" if self.token_file else TOKEN_ENV

    @field_validator("rate")
    @classmethod
    def _rate_floor(cls, rate: float) -> float:
        if 0 < rate < _MIN_RATE:
            raise ValueError(
                f"must be 0 (no limit) or at least {_MIN_RATE} requests per second, not {rate}"
            )
        return rate

    @field_validator("base_url")
    @classmethod
    def _one_name(cls, url: str) -> str:
        return normalized_base_url(url)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _auto_or_count(cls, value: Any) -> Any:
        text = value.strip().lower() if isinstance(value, str) else value
        if text == "auto":
            return "auto"
        if isinstance(text, str) and text.isdecimal():
            text = int(text)
        if type(text) is int and 1 <= text <= _MAX_CONCURRENCY:
            return text
        raise ValueError(
            f"must be a number of requests from 1 to {_MAX_CONCURRENCY}, or auto, not {value!r}"
        )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        from worker.input.decoding import check_encoding

        return None if value is None else check_encoding(value)

    @field_validator("outcome", mode="before")
    @classmethod
    def _split_outcomes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def in_flight_max(self) -> int:
        """The most requests in flight ever: ``--concurrency``, or auto's ceiling."""
        return AUTO_CONCURRENCY_MAX if self.concurrency == "auto" else self.concurrency

    def public(self) -> dict[str, Any]:
        """The settings as written to ``run.started``: JSON-ready, no secret."""
        return self.model_dump(mode="json", exclude={"token"})


def load_settings(
    flags: Mapping[str, Any], *, config: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge the four layers and validate; raise ConfigError with a teaching message."""
    environ = os.environ if environ is None else environ
    layers: dict[str, tuple[Any, str]] = {}
    if config:
        booleans = [n for n, f in Settings.model_fields.items() if f.annotation is bool]
        layers.update({k: (v, f"{config}") for k, v in read_toml(config, booleans).items()})
    layers.update(from_env(environ, [name for name in Settings.model_fields if name != "token"]))
    layers.update({k: (v, flag_name(k)) for k, v in flags.items() if v is not None})
    values = {key: value for key, (value, _) in layers.items()}
    values["token"] = read_token(values.get("token_file"), environ)

    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, layers)) from None
    check_base_url(settings.base_url)
    settings._origins.update({key: origin for key, (_, origin) in layers.items()})
    return settings


def library_settings(values: Mapping[str, Any]) -> Settings:
    """The settings of a library call, given by name; ConfigError like the CLI's."""
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(
            _explain(exc, {k: (v, "an argument") for k, v in values.items()})
        ) from None
    check_base_url(settings.base_url)
    return settings


def normalized_base_url(url: str) -> str:
    """``url`` as one API has one name: scheme and host in lower case, no default port, no
    trailing slash (``HTTPS://API.devin.ai:443/`` is ``https://api.devin.ai``)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return url  # check_base_url says what is wrong
    if not parts.hostname:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = parts.scheme.lower()
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host += f":{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, parts.fragment))


def check_base_url(url: str) -> None:
    """https anywhere; plain http only to a loopback host (the simulator, a local proxy)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {url!r} is not an http(s) URL, e.g. https://api.devin.ai")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain http to {parts.hostname}: the token would travel unencrypted. "
            "Use https, or http only for a loopback host such as 127.0.0.1."
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _explain(exc: ValidationError, layers: Mapping[str, tuple[Any, str]]) -> str:
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        origin = layers.get(name, (None, "default"))[1]
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {name!r} (from {origin}); see config/example.toml")
        else:
            lines.append(f"setting {name} (from {origin}): {error['msg']}")
    return "; ".join(lines)
