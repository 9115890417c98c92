"""The broadcasts domain's refusal, below every broadcasts module that raises it."""

from __future__ import annotations

from backend.refusals import Refusal


class BroadcastError(Refusal):
    """A refused broadcast step; its code names a text in ``messages/*/errors``."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.detail = {k: str(v) for k, v in detail.items()}
