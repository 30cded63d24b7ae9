"""The checks of the settings, value by value: what is taken (and as what) and the words
of what is refused. These are pydantic's lax rules and messages, which checked the settings
before `worker._checks` did; the table was taken from that model, so operators' scripts and
the tests that match on these words see no change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.errors import ConfigError
from worker.settings import library_settings


@dataclass(frozen=True)
class Refused:
    message: str


_OUTCOMES = (
    "Input should be 'terminated', 'archived', 'already_terminated', 'not_found', 'failed', "
    "'cancelled', 'invalid' or 'would_terminate'"
)
CASES = [
    ("org_id", "org-x", "org-x"),
    ("org_id", "acme", Refused("String should match pattern '^org-[A-Za-z0-9_-]{1,128}$'")),
    ("org_id", "", Refused("String should match pattern '^org-[A-Za-z0-9_-]{1,128}$'")),
    ("org_id", " org-x", Refused("String should match pattern '^org-[A-Za-z0-9_-]{1,128}$'")),
    ("org_id", 5, Refused("Input should be a valid string")),
    ("org_id", None, None),
    ("base_url", "https://api.devin.ai/", "https://api.devin.ai"),
    ("base_url", "HTTPS://X.ai:443", "https://x.ai"),
    ("base_url", 5, Refused("Input should be a valid string")),
    ("token_file", "/tmp/nope", Path("/tmp/nope")),
    ("token_file", Path("/x"), Path("/x")),
    ("token_file", 5, Refused("Input is not a valid path for <class 'pathlib.Path'>")),
    ("token_file", "", Path(".")),
    ("archive", True, True),
    ("archive", False, False),
    ("archive", "true", True),
    ("archive", "yes", True),
    ("archive", "1", True),
    ("archive", "off", False),
    ("archive", "f", False),
    ("archive", "maybe", Refused("Input should be a valid boolean, unable to interpret input")),
    ("archive", 1, True),
    ("archive", 0, False),
    ("archive", 2, Refused("Input should be a valid boolean, unable to interpret input")),
    ("archive", 1.0, True),
    ("archive", 0.5, Refused("Input should be a valid boolean")),
    ("archive", "", Refused("Input should be a valid boolean, unable to interpret input")),
    ("archive", None, Refused("Input should be a valid boolean")),
    ("concurrency", "auto", "auto"),
    ("concurrency", "16", 16),
    (
        "concurrency",
        0,
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not 0"),
    ),
    (
        "concurrency",
        1025,
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not 1025"),
    ),
    (
        "concurrency",
        "many",
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not 'many'"),
    ),
    (
        "concurrency",
        8.5,
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not 8.5"),
    ),
    (
        "concurrency",
        16.0,
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not 16.0"),
    ),
    (
        "concurrency",
        None,
        Refused("Value error, must be a number of requests from 1 to 1024, or auto, not None"),
    ),
    ("rate", 0, 0.0),
    (
        "rate",
        0.005,
        Refused(
            "Value error, must be 0 (no limit) or at least 0.01 requests per second, not 0.005"
        ),
    ),
    (
        "rate",
        "0.005",
        Refused(
            "Value error, must be 0 (no limit) or at least 0.01 requests per second, not 0.005"
        ),
    ),
    ("rate", 10, 10.0),
    ("rate", "10", 10.0),
    ("rate", " 10 ", 10.0),
    ("rate", "1e3", 1000.0),
    ("rate", "1_0", 10.0),
    ("rate", "inf", Refused("Input should be a finite number")),
    ("rate", float("inf"), Refused("Input should be a finite number")),
    ("rate", float("nan"), Refused("Input should be a finite number")),
    ("rate", 100001, Refused("Input should be less than or equal to 100000")),
    ("rate", -1, Refused("Input should be greater than or equal to 0")),
    ("rate", "x", Refused("Input should be a valid number, unable to parse string as a number")),
    ("rate", True, 1.0),
    ("rate", "", Refused("Input should be a valid number, unable to parse string as a number")),
    ("rate", None, Refused("Input should be a valid number")),
    ("burst", None, None),
    ("burst", 0, Refused("Input should be greater than or equal to 1")),
    ("burst", "3.0", 3),
    ("burst", 3.0, 3),
    ("burst", 3.5, Refused("Input should be a valid integer, got a number with a fractional part")),
    (
        "burst",
        "x",
        Refused("Input should be a valid integer, unable to parse string as an integer"),
    ),
    ("burst", False, Refused("Input should be greater than or equal to 1")),
    ("burst", "", Refused("Input should be a valid integer, unable to parse string as an integer")),
    ("burst", " 4 ", 4),
    ("burst", "1_000", 1000),
    ("burst", "+5", 5),
    (
        "burst",
        "٣",
        Refused("Input should be a valid integer, unable to parse string as an integer"),
    ),
    ("max_attempts", 1, 1),
    ("max_attempts", 0, Refused("Input should be greater than or equal to 1")),
    ("max_attempts", 101, Refused("Input should be less than or equal to 100")),
    ("max_attempts", "7", 7),
    ("max_attempts", 7.0, 7),
    (
        "max_attempts",
        7.5,
        Refused("Input should be a valid integer, got a number with a fractional part"),
    ),
    (
        "max_attempts",
        "7.5",
        Refused("Input should be a valid integer, unable to parse string as an integer"),
    ),
    (
        "max_attempts",
        "x",
        Refused("Input should be a valid integer, unable to parse string as an integer"),
    ),
    ("max_attempts", True, 1),
    ("timeout", 0.01, 0.01),
    ("timeout", 0.001, Refused("Input should be greater than or equal to 0.01")),
    ("timeout", 3601, Refused("Input should be less than or equal to 3600")),
    ("timeout", "5", 5.0),
    ("timeout", "x", Refused("Input should be a valid number, unable to parse string as a number")),
    ("timeout", 0, Refused("Input should be greater than or equal to 0.01")),
    ("timeout", True, 1.0),
    ("session_timeout", 0, Refused("Input should be greater than 0")),
    ("session_timeout", 0.1, 0.1),
    ("session_timeout", 86400, 86400.0),
    ("session_timeout", 86401, Refused("Input should be less than or equal to 86400")),
    ("breaker_threshold", 0, Refused("Input should be greater than 0")),
    ("breaker_threshold", 1, 1.0),
    ("breaker_threshold", 1.1, Refused("Input should be less than or equal to 1")),
    ("breaker_threshold", 0.5, 0.5),
    ("breaker_threshold", "0.5", 0.5),
    ("results", "r.jsonl", Path("r.jsonl")),
    ("results", Path("x"), Path("x")),
    ("results", 5, Refused("Input is not a valid path for <class 'pathlib.Path'>")),
    ("results", "", Path(".")),
    ("results", None, Refused("Input is not a valid path for <class 'pathlib.Path'>")),
    ("lock", None, None),
    ("lock", "l", Path("l")),
    ("lock", "", Path(".")),
    ("column", None, None),
    ("column", "id", "id"),
    ("column", 5, Refused("Input should be a valid string")),
    ("column", "", ""),
    ("encoding", None, None),
    ("encoding", "utf-8", "utf-8"),
    ("encoding", "latin-1", "iso8859-1"),
    (
        "encoding",
        "nope",
        Refused("Value error, unknown encoding 'nope'; e.g. utf-8, cp1252, utf-16"),
    ),
    ("encoding", "UTF8", "utf-8"),
    ("encoding", 5, Refused("Input should be a valid string")),
    ("outcome", None, None),
    ("outcome", "failed", ("failed",)),
    ("outcome", "failed, cancelled", ("failed", "cancelled")),
    ("outcome", ("failed",), ("failed",)),
    ("outcome", ("terminated",), ("terminated",)),
    (
        "outcome",
        "bogus",
        Refused(_OUTCOMES),
    ),
    ("outcome", "", ()),
    (
        "outcome",
        ("x", "failed"),
        Refused(_OUTCOMES),
    ),
    ("outcome", 5, Refused("Input should be a valid tuple")),
    ("outcome", "failed,,", ("failed",)),
    ("log_format", "auto", "auto"),
    ("log_format", "json", "json"),
    ("log_format", "console", "console"),
    ("log_format", "JSON", Refused("Input should be 'auto', 'console' or 'json'")),
    ("log_format", "x", Refused("Input should be 'auto', 'console' or 'json'")),
    ("log_format", 5, Refused("Input should be 'auto', 'console' or 'json'")),
    ("progress", "on", "on"),
    ("progress", "off", "off"),
    ("progress", "auto", "auto"),
    ("progress", "yes", Refused("Input should be 'auto', 'on' or 'off'")),
    ("progress_interval", None, None),
    ("progress_interval", 0.01, 0.01),
    ("progress_interval", 0.001, Refused("Input should be greater than or equal to 0.01")),
    ("progress_interval", "30", 30.0),
    ("progress_interval", 86401, Refused("Input should be less than or equal to 86400")),
    (
        "colour",
        "red",
        Refused("unknown setting 'colour' (from an argument); see config/example.toml"),
    ),
]


@pytest.mark.parametrize(("name", "value", "expected"), CASES)
def test_each_value_is_taken_or_refused_as_before(
    name: str, value: object, expected: object
) -> None:
    if isinstance(expected, Refused):
        with pytest.raises(ConfigError) as info:
            library_settings({name: value})
        prefix = "" if name == "colour" else f"setting {name} (from an argument): "
        assert str(info.value) == prefix + expected.message
    else:
        assert getattr(library_settings({name: value}), name) == expected


def test_every_fault_is_named_in_the_order_of_the_settings() -> None:
    with pytest.raises(ConfigError) as info:
        library_settings({"rate": "x", "burst": 0, "zzz": 1, "archive": "q"})
    assert str(info.value) == (
        "setting archive (from an argument): Input should be a valid boolean, unable to "
        "interpret input; setting rate (from an argument): Input should be a valid number, "
        "unable to parse string as a number; setting burst (from an argument): Input should "
        "be greater than or equal to 1; unknown setting 'zzz' (from an argument); see "
        "config/example.toml"
    )


def test_replace_keeps_what_was_given_and_gives_the_changes() -> None:
    from worker.settings import Settings

    changed = Settings(rate=5.0).replace(progress="on")
    assert (changed.rate, changed.progress) == (5.0, "on")
    assert changed.given("rate") and changed.given("progress")
    assert not changed.given("concurrency")  # left to its default, as before
