"""The one table of settings, ``worker/data/settings.toml``: for each, its default, help
text and metavar. ``Settings`` takes its defaults from here, the CLI its flags and help, and
every name maps to a TOML key, a flag and an env variable (``worker._names``). Standard
library only, so ``--help`` stays fast."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).parent / "data" / "settings.toml"
_KINDS: dict[str, type] = {"int": int, "float": float, "path": Path}


@dataclass(frozen=True)
class Row:
    name: str
    default: Any
    help: str
    metavar: str | None = None
    kind: type | None = None  # the flag's type (int, float) when the default does not tell it
    choices: tuple[str, ...] = ()
    shown: str | None = None  # the default in words; "" when the help says it already
    switch: bool = False  # a bare flag (store_true), no --no- form
    many: bool = False  # repeatable (append)


def _row(name: str, spec: dict[str, Any]) -> Row:
    kind = _KINDS.get(spec.pop("type", ""))
    default = spec.pop("default", None)
    if kind is Path:
        default, kind = Path(default), None
    choices = tuple(spec.pop("choices", ()))
    return Row(name, default, kind=kind, choices=choices, **spec)


ROWS: tuple[Row, ...] = tuple(
    _row(name, dict(spec)) for name, spec in tomllib.loads(TABLE.read_text("utf-8")).items()
)
BY_NAME = {row.name: row for row in ROWS}


def default(name: str) -> Any:
    return BY_NAME[name].default


def help_text(row: Row) -> str:
    shown = _words(row.default) if row.shown is None else row.shown
    return f"{row.help} (default {shown})" if shown else row.help


def _words(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
