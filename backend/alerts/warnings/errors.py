"""The warnings domain's refusal (below every module that raises it)."""

from __future__ import annotations

from backend.refusals import Refusal


class WarningError(Refusal):
    """``cap_not_xml``, ``cap_unsafe``, ``cap_invalid``, ``cap_too_large`` (a document refused, with its
    ``reason`` and ``path``); ``warning_not_found``; ``warning_not_pending``; ``warning_expired``."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.detail = {k: str(v) for k, v in detail.items()}
