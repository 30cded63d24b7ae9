"""``devin-terminate config --example``: print the example configuration (every setting
with its default and what it does), shipped inside the package so that an installed wheel
(pipx, uv tool) has it: ``devin-terminate config --example > config.toml``."""

from __future__ import annotations

import argparse
import sys

HELP = "print the example TOML configuration (every setting, its default, what it does)"


def example_toml() -> str:
    from importlib.resources import files

    return files("worker").joinpath("data", "example.toml").read_text(encoding="utf-8")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--example",
        action="store_true",
        required=True,
        help="print config/example.toml to stdout (redirect it to a file, then edit)",
    )
    from worker.commands.options import add_verbosity

    add_verbosity(parser)  # taken by every command; this one prints nothing but the TOML


def main(args: argparse.Namespace) -> int:
    sys.stdout.write(example_toml())
    sys.stdout.flush()
    return 0
