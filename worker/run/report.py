"""What a run reports: its counts by outcome and its exit code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(slots=True)
class RunReport:
    counts: dict[str, int]
    exit_code: int
    interrupted: bool
    reason: str | None
    elapsed_s: float
    requests: int


def exit_code(counts: Mapping[str, int], *, signalled: int | None, aborted: bool) -> int:
    """The signal's code (130, 143); 3 when the run was aborted; 1 when a session failed, an
    input line was invalid or a session was cancelled; else 0."""
    if signalled is not None:
        return signalled
    if aborted:
        return 3
    if counts.get("failed") or counts.get("invalid") or counts.get("cancelled"):
        return 1
    return 0
