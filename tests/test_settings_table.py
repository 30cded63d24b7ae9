"""The one table of settings (worker._table) and the Settings model agree: same names, and
each model default is the table's."""

from __future__ import annotations

from worker import _table
from worker.cli import build_parser
from worker.settings import Settings


def test_the_table_and_the_model_hold_the_same_settings() -> None:
    assert set(_table.BY_NAME) == set(Settings.NAMES)


def test_every_default_comes_from_the_table() -> None:
    model = Settings()
    for row in _table.ROWS:
        assert getattr(model, row.name) == row.default, row.name


def test_the_help_shows_the_table_default() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    assert "(default 20)" in " ".join(text.split())
    assert "[env DEVIN_TERMINATE_MAX_ATTEMPTS]" in " ".join(text.split())
