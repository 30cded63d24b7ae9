"""argparse as the CLI uses it: no prefix matching, errors in the words of the subcommand
that failed, with a "did you mean" when a flag, command or value is close to a known one."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

_UNKNOWN = re.compile(r"unrecognized arguments: (.+)$")
_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.+)\)")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean --dry-run?)`` when ``word`` is close to one of ``known``, else ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Parser(argparse.ArgumentParser):
    """No abbreviations (``--dry`` is not ``--dry-run``: scripts must not break when a flag
    is added); unknown arguments are reported by the subcommand's own parser, with its usage
    and a suggestion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self._is_command():
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _is_command(self) -> bool:
        return not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)

    def error(self, message: str) -> NoReturn:
        super().error(message + self._suggestion(message))

    def _suggestion(self, message: str) -> str:
        unknown = _UNKNOWN.search(message)
        if unknown:
            first = unknown.group(1).split()[0].split("=")[0]
            return did_you_mean(first, self._option_string_actions)
        choice = _CHOICE.search(message)
        if choice:
            options = [part.strip().strip("'") for part in choice.group(2).split(",")]
            return did_you_mean(choice.group(1), options)
        return ""


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q`` (warnings and errors only) and ``-v`` (debug: every retry); --log-level wins."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings, errors and what needs a person"
    )
    loud.add_argument("-v", "--verbose", action="store_true", help="debug lines, every retry")
