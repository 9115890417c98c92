"""The callback-data vocabulary: the backend's notice buttons and the bot's CallbackData classes pack
the same string for every action, and the bot's filters accept what the backend packs."""

from __future__ import annotations

from typing import get_args

import pytest

from backend import chat_actions
from backend.chat_actions import ClaimButton, PayButton, UnknownAction
from bot.keyboards import ClaimAction, PayAction


def test_pay_button_packs_like_the_bots_pay_action() -> None:
    assert chat_actions.pay_button(42) == PayAction(application_id=42).pack() == "pay:42"
    assert PayAction.unpack(chat_actions.pay_button(42)).application_id == 42


@pytest.mark.parametrize("verb", get_args(chat_actions.ClaimVerb))
def test_every_claim_verb_packs_like_the_bots_claim_action(verb: chat_actions.ClaimVerb) -> None:
    backend_packed = chat_actions.claim_button(verb, 7, 120000)
    assert backend_packed == ClaimAction(action=verb, claim_id=7, amount=120000).pack()
    bot_view = ClaimAction.unpack(backend_packed)
    assert (bot_view.action, bot_view.claim_id, bot_view.amount) == (verb, 7, 120000)
    assert chat_actions.unpack(backend_packed) == ClaimButton(verb, 7, 120000)


def test_bot_prefixes_come_from_the_vocabulary() -> None:
    assert PayAction.__prefix__ == chat_actions.PAY_PREFIX
    assert ClaimAction.__prefix__ == chat_actions.CLAIM_PREFIX


def test_unpack_round_trips_and_refuses_strangers() -> None:
    assert chat_actions.unpack("pay:5") == PayButton(5)
    for bad in ("pay:x", "clm:explode:1:0", "clm:view:1", "zz:1", ""):
        with pytest.raises(UnknownAction):
            chat_actions.unpack(bad)


def test_a_button_for_an_unsaved_row_is_refused() -> None:
    with pytest.raises(ValueError):
        chat_actions.claim_button("view", None)
