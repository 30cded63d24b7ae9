"""The checks of one setting's value: the types, bounds and patterns of ``Settings``, each
a function from what an operator wrote (a flag, a variable's text, a TOML value, a library
argument) to the value, or ``Invalid`` with what was wrong.

The rules and their words are those of pydantic's lax mode, which checked the settings
before and whose messages operators and the tests know ("Input should be greater than or
equal to 1"): a number's text may carry spaces, a sign, ``_`` between digits and, for a
count, a ``.0``; a switch takes true/false, yes/no, on/off, 1/0, t/f, y/n in any case.
Standard library only: pydantic's import and a model's build took 70-100 ms of every start,
and the settings are read before the first request (the API's models load after it)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, KeysView, Mapping, ValuesView
from os import PathLike
from pathlib import Path
from typing import Any

Check = Callable[[Any], Any]

_INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
# the words of a switch, in any case (pydantic's lax booleans): the settings' and the
# API's (`worker.devin.state` reads an ``is_archived`` given as text by them)
BOOL_WORDS = {
    **dict.fromkeys(("1", "on", "t", "true", "y", "yes"), True),
    **dict.fromkeys(("0", "off", "f", "false", "n", "no"), False),
}


class Invalid(ValueError):
    """A value a check refused: one message per fault (a list's items each have theirs)."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounded(value: Any, ge: float | None, gt: float | None, le: float | None) -> Any:
    if ge is not None and not value >= ge:
        raise Invalid(f"Input should be greater than or equal to {_bound(ge)}")
    if gt is not None and not value > gt:
        raise Invalid(f"Input should be greater than {_bound(gt)}")
    if le is not None and not value <= le:
        raise Invalid(f"Input should be less than or equal to {_bound(le)}")
    return value


def integer(*, ge: int | None = None, le: int | None = None) -> Check:
    """A whole number (``7``, ``7.0``, ``" 7 "``, ``"1_000"``; not ``7.5``, not ``"x"``)."""
    return lambda value: _bounded(_as_int(value), ge, None, le)


def _as_int(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        value = _decoded(value)
    if isinstance(value, int):  # bool included: True is 1
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("Input should be a finite number")
        if not value.is_integer():
            raise Invalid("Input should be a valid integer, got a number with a fractional part")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not _INT_TEXT.fullmatch(text):
            raise Invalid("Input should be a valid integer, unable to parse string as an integer")
        return int(text.split(".")[0])
    raise Invalid("Input should be a valid integer")


def number(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Check:
    """A finite number (``5``, ``"0.5"``, ``"1e3"``; not ``inf``, not ``"x"``)."""
    return lambda value: _bounded(_as_float(value), ge, gt, le)


def _as_float(value: Any) -> float:
    if isinstance(value, bytes | bytearray):
        value = _decoded(value)
    if isinstance(value, int | float):
        found = float(value)
    elif isinstance(value, str):
        try:
            if not value.isascii():  # float() reads other scripts' digits; pydantic did not
                raise ValueError(value)
            found = float(value)
        except ValueError:
            raise Invalid(
                "Input should be a valid number, unable to parse string as a number"
            ) from None
    else:
        raise Invalid("Input should be a valid number")
    if not math.isfinite(found):
        raise Invalid("Input should be a finite number")
    return found


def boolean(value: Any) -> bool:
    """A switch: a boolean, 1/0, or their words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and (word := BOOL_WORDS.get(value.lower())) is not None:
        return word
    if isinstance(value, int | str) or (isinstance(value, float) and value.is_integer()):
        raise Invalid("Input should be a valid boolean, unable to interpret input")
    raise Invalid("Input should be a valid boolean")


def text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        value = _decoded(value)
    if not isinstance(value, str):
        raise Invalid("Input should be a valid string")
    return value


def _decoded(value: bytes | bytearray) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            "Input should be a valid string, unable to parse raw data as a unicode string"
        ) from None


def matching(pattern: str) -> Check:
    """Text that matches ``pattern`` (anchored by the pattern itself)."""
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        found = text(value)
        if not compiled.search(found):
            raise Invalid(f"String should match pattern '{pattern}'")
        return found

    return check


def path(value: Any) -> Path:
    if not isinstance(value, str | PathLike):
        raise Invalid("Input is not a valid path for <class 'pathlib.Path'>")
    return Path(value)


def choice(*values: str) -> Check:
    """One of ``values``, exactly (``"JSON"`` is not ``"json"``)."""
    quoted = [f"'{v}'" for v in values]
    words = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise Invalid(f"Input should be {words}")
        return value

    return check


def optional(check: Check) -> Check:
    """``None`` (not set), or a value ``check`` takes."""

    def maybe(value: Any) -> Any:
        return None if value is None else check(value)

    return maybe


def items(check: Check) -> Check:
    """A list or tuple of values ``check`` takes, as a tuple; each bad item is a fault."""

    def each(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple | set | frozenset | Iterator | KeysView | ValuesView):
            raise Invalid("Input should be a valid tuple")
        found: list[Any] = []
        faults: list[str] = []
        for item in value:
            try:
                found.append(check(item))
            except Invalid as exc:
                faults.extend(exc.messages)
        if faults:
            raise Invalid(*faults)
        return tuple(found)

    return each


def steps(*checks: Callable[[Any], Any]) -> Check:
    """Each of ``checks`` in turn on the value the one before returned; a ``ValueError`` of
    the tool's own steps is a fault in pydantic's words ("Value error, ...")."""

    def chain(value: Any) -> Any:
        for check in checks:
            try:
                value = check(value)
            except Invalid:
                raise
            except ValueError as exc:
                raise Invalid(f"Value error, {exc}") from None
        return value

    return chain


def run_checks(
    checks: Mapping[str, Check], values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(the checked values, [(name, fault)...]) of the ``values`` given, in the order of
    ``checks``."""
    found: dict[str, Any] = {}
    faults: list[tuple[str, str]] = []
    for name, check in checks.items():
        if name not in values:
            continue
        try:
            found[name] = check(values[name])
        except Invalid as exc:
            faults.extend((name, message) for message in exc.messages)
    return found, faults


__all__ = ["Check", "Invalid", "boolean", "choice", "integer", "items", "matching", "number"]
__all__ += ["optional", "path", "run_checks", "steps", "text"]
