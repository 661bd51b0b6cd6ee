"""OAuth-specific errors, kept in the docmail error tree."""

from __future__ import annotations

from typing import Any

from docmail.errors import AuthenticationFailed

NEEDS_AUTH_PREFIX = "needs authentication"


class NeedsReauthentication(AuthenticationFailed):
    """The mailbox's authorization is gone (refresh token revoked or expired, or never granted).

    It is an ``AuthenticationFailed``, so the worker pauses the account and requeues the
    message instead of failing it; a successful re-authentication unpauses the account.
    """

    def __init__(self, reason: str, **kwargs: Any) -> None:
        message = reason
        if not reason.startswith(NEEDS_AUTH_PREFIX):  # a stored message is used as it is
            message = (
                f"{NEEDS_AUTH_PREFIX}: {reason}; click Authenticate on the mail account "
                "to connect the mailbox again (waiting messages go out afterwards)"
            )
        super().__init__(message, **kwargs)
