"""The claims domain's refusal, below every claims module that raises it (so none imports another for it)."""

from __future__ import annotations


class ClaimError(Exception):
    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = {k: str(v) for k, v in detail.items()}
