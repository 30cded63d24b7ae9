"""devin-terminate: terminate Devin sessions in bulk through the Devin API v3.

The library API: ``await terminate_sessions(ids, org_id=..., token=...)`` returns a
``RunSummary`` of typed ``SessionResult`` values. The command line is ``worker.cli``.
"""

from worker._version import __version__
from worker.api import RunSummary, terminate_sessions
from worker.outcomes import FINAL_OUTCOMES, OUTCOMES, Outcome, SessionResult

__all__ = [
    "FINAL_OUTCOMES",
    "OUTCOMES",
    "Outcome",
    "RunSummary",
    "SessionResult",
    "__version__",
    "terminate_sessions",
]
