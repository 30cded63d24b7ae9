"""devin-terminate: terminate Devin sessions in bulk through the Devin API v3.

The library API: ``await terminate_sessions(ids, org_id=..., token=...)`` returns a
``RunSummary`` of typed ``SessionResult`` values. The command line is ``worker.cli``.
Names are loaded on first use, so that the command line's ``--help`` imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker._lazy import lazy_names
from worker._version import __version__

if TYPE_CHECKING:
    from worker.api import RunSummary, terminate_sessions
    from worker.outcomes import FINAL_OUTCOMES, OUTCOMES, Outcome, SessionResult

_LAZY = {
    "RunSummary": "worker.api",
    "terminate_sessions": "worker.api",
    "FINAL_OUTCOMES": "worker.outcomes",
    "OUTCOMES": "worker.outcomes",
    "Outcome": "worker.outcomes",
    "SessionResult": "worker.outcomes",
}

__all__ = ["FINAL_OUTCOMES", "OUTCOMES", "Outcome", "RunSummary", "SessionResult"]
__all__ += ["__version__", "terminate_sessions"]


__getattr__ = lazy_names(__name__, _LAZY)
