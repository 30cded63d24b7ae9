"""The settings' own rules, beside their types and bounds (`worker._checks`): a rate of 0
or at least one request every 100 s, a concurrency that is a count or ``auto``, an encoding
Python knows, outcomes written as one comma-separated string. A value refused raises
``ValueError`` saying what is taken."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_RATE", "auto_or_count", "known_encoding", "rate_floor", "split_outcomes"]

MIN_RATE = 0.01  # one request every 100 s: anything slower is a typo
MAX_RATE = 100_000.0
MAX_CONCURRENCY = 1024


def rate_floor(rate: float) -> float:
    if 0 < rate < MIN_RATE:
        raise ValueError(
            f"must be 0 (no limit) or at least {MIN_RATE} requests per second, not {rate}"
        )
    return rate


def auto_or_count(value: Any) -> int | str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text == "auto":
        return "auto"
    if isinstance(text, str) and text.isdecimal():
        text = int(text)
    if type(text) is int and 1 <= text <= MAX_CONCURRENCY:
        return text
    raise ValueError(
        f"must be a number of requests from 1 to {MAX_CONCURRENCY}, or auto, not {value!r}"
    )


def known_encoding(value: str) -> str:
    from worker.input.decoding import check_encoding

    return check_encoding(value)


def split_outcomes(value: Any) -> Any:
    if isinstance(value, str):  # a string is split on commas (env, TOML)
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value
