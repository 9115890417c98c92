"""The claims domain's refusal, below every claims module that raises it (so none imports another for it)."""

from __future__ import annotations

from backend.refusals import Refusal


class ClaimError(Refusal):
    """A refused claims step; its code names a text in ``messages/*/errors`` or ``enroll_errors``."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.detail = {k: str(v) for k, v in detail.items()}  # a detail may be called "message" here
