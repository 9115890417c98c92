"""The claim form offers the backend's causes table, not a copy of its own."""

from __future__ import annotations

from typing import Any, cast

import pytest

from backend.claims import rules
from bot.forms.claim import cause_choices
from bot.forms.engine import Form, Io


def _io() -> Io:
    # cause_choices only needs the language; nothing talks to Telegram or the backend.
    return Io(
        message=cast(Any, None),
        bot=cast(Any, None),
        locale="zh-CN",
        backend=cast(Any, None),
        identity=cast(Any, None),
        chat_id=0,
    )


def _form(category: str) -> Form:
    return Form(flow="claim", step="cause", cache={"product": {"category": category}})


@pytest.mark.parametrize("category", ["crop", "facility", "livestock"])
async def test_every_category_offers_exactly_the_backends_causes(category: str) -> None:
    offered = [c.value for c in await cause_choices(_io(), _form(category))]
    assert offered == list(rules.CAUSES_BY_CATEGORY[category])


async def test_a_cause_the_backend_adds_is_offered_without_a_bot_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(rules.CAUSES_BY_CATEGORY, "crop", ("hail", "other"))
    offered = [c.value for c in await cause_choices(_io(), _form("crop"))]
    assert offered == ["hail", "other"]
