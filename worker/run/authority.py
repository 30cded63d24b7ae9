"""Whether a 403 naming a permission is about its session or about the token.

A service user may be refused one session (owned by someone it may not act for) and allowed
the rest; a token without ``ManageOrgSessions`` is refused every one. The answer is what the
run already knows: once a DELETE or an archive with this token succeeded, or the identity
check (``GET /v3/self``) named a service user whose earlier runs in the result log
terminated sessions, the token can terminate, and a 403 is about its session (``failed``
with the server's reason, the run goes on). Until then, a permission 403 is counted;
`PROOF` of them with no success at all mean a token that can terminate nothing, and the run
stops (exit 3). (The answer of ``GET /v3/self`` names no permissions of its own.)
"""

from __future__ import annotations

from dataclasses import dataclass

from worker._names import TOKEN_ENV

PROOF = 8  # permission 403s with no success between them: the token can terminate nothing


@dataclass(slots=True)
class Authority:
    """What the run knows of its token's right to terminate, shared by its sessions."""

    can_terminate: bool = False
    refused: int = 0  # permission 403s while nothing succeeded
    token_from: str = TOKEN_ENV  # where the token came from, as a refusal names it

    def succeeded(self) -> None:
        """A DELETE or an archive with this token was carried out."""
        self.can_terminate = True

    def refuses_token(self) -> bool:
        """A 403 naming a permission came: True when it is the token's (stop the run),
        False when it is its session's."""
        if self.can_terminate:
            return False
        self.refused += 1
        return self.refused >= PROOF
