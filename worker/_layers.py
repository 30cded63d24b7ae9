"""The middle layers of the settings as operators write them: the TOML file (``--config``)
and the environment. A TOML value must have the TOML type of its setting (``archive =
"yes"`` is an error, not true), and a ``DEVIN_TERMINATE_*`` variable that names no setting
is a warning line with a "did you mean", as a TOML typo is an error."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from worker._names import ENV_PREFIX, PASSWORD_ENV, TOKEN_ENV, env_name
from worker.errors import ConfigError

__all__ = ["from_env", "read_toml"]

# variables of the tool that are not settings of the table, and of its test suite
_OTHER_ENV = frozenset(
    {
        PASSWORD_ENV,
        "DEVIN_TERMINATE_REDIS_URL",
        "DEVIN_TERMINATE_REDIS_SERVER",
        "DEVIN_TERMINATE_PRISM_SERVERS",
        "DEVIN_TERMINATE_REQUIRE_PRISM",
    }
)


def read_toml(path: str, booleans: Iterable[str]) -> dict[str, Any]:
    """The settings of the TOML file ``path``; ConfigError for a file that cannot be read,
    a token in it, or a switch that is not a TOML boolean."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    section = data.get("devin_terminate", data)
    if "token" in section:
        raise ConfigError(
            f"{path}: the token must not be stored in the config file; "
            f"set {TOKEN_ENV} or token_file instead"
        )
    for name in booleans:
        value = section.get(name)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(
                f"setting {name} (from {path}): must be true or false (unquoted), not {value!r}"
            )
    return dict(section)


def from_env(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, tuple[Any, str]]:
    """{setting: (value, variable)} of the variables set (and not empty); a warning line
    for each ``DEVIN_TERMINATE_*`` variable that is not the tool's."""
    known = {name: env_name(name) for name in names}
    found = {name: (environ[key], key) for name, key in known.items() if environ.get(key, "")}
    ours = {*known.values(), *_OTHER_ENV}
    for key in sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in ours):
        import difflib  # only for a variable that names no setting: not at start-up

        import structlog

        close = difflib.get_close_matches(key, sorted(ours), n=1, cutoff=0.8)
        hint = (
            f"did you mean {close[0]}?" if close else "it names no setting; see config/example.toml"
        )
        structlog.get_logger("worker.settings").warning("env.unknown", variable=key, hint=hint)
    return found
