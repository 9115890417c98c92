"""Steps and parsers shared by the enrollment flows: product facts, quote, disclosure, summary."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiogram.types import InlineKeyboardMarkup

from backend.enrollment import validation
from bot.forms.engine import STAY, Choice, Form, Invalid, Io, Step, choice_keyboard, nav_row
from bot.forms.parsers import MAX_PEOPLE, whole_count
from bot.forms.steps import validated


async def ensure_product(io: Io, form: Form) -> dict[str, Any]:
    """The chosen product's facts (unit, ear tags, kind), fetched once per form and cached."""
    code = form.answers["product"]
    cached: dict[str, Any] | None = form.cache.get("product")
    if cached is None or cached.get("code") != code:
        cached = await io.backend.product(code)
        form.cache["product"] = cached
        form.cache["unit_label"] = io.label(f"enroll.unit_{cached['unit']}")
        form.cache["product_name"] = product_name(cached, io.locale)
    return cached


def product_name(product: dict[str, Any], locale: str) -> str:
    return str(product["name_en"] if locale == "en" else product["name_zh"])


def parse_person_name(raw: str, _form: Form) -> str:
    return str(validated(validation.validate_person_name, raw))


def parse_free_name(raw: str, _form: Form) -> str:
    """Company and organisation names: 2 to 100 characters of anything printable."""
    name = " ".join(raw.split())
    if not 2 <= len(name) <= 100:
        raise Invalid("company_name_length")
    return name


def parse_resident_id(raw: str, _form: Form) -> str:
    return str(validated(validation.validate_resident_id, raw))


def parse_credit_code(raw: str, _form: Form) -> str:
    return str(validated(validation.validate_credit_code, raw))


def parse_bank_account(raw: str, _form: Form) -> str:
    return str(validated(validation.validate_bank_account, raw))


def parse_positive_int(raw: str, _form: Form) -> int:
    """Head counts ("35", "35人", "三十五人"): the enterprise's employees."""
    count = whole_count(raw, "person", low=1, high=MAX_PEOPLE)
    if count is None:
        raise Invalid("whole_number", low=1, high=MAX_PEOPLE)
    return count


class ProceedStep(Step):
    """A message with one "go on" button (quote, disclosure, summary); the flow continues on the tap."""

    def __init__(self, name: str, proceed_label: str) -> None:
        self.name, self.proceed_label = name, proceed_label

    async def text(self, io: Io, form: Form) -> str:
        raise NotImplementedError

    async def ask(self, io: Io, form: Form) -> None:
        text = await self.text(io, form)
        button = io.button(io.label(self.proceed_label), "pick", "ok")
        await io.say(text, InlineKeyboardMarkup(inline_keyboard=[[button], nav_row(io)]))

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        if value != "ok":
            raise Invalid("stale_choice")
        return True


class DisclosureStep(ProceedStep):
    """R-ENR-4: coverage, exclusions, rights and duties, claim standard, how to report; read and confirmed."""

    def __init__(self, name: str = "disclosure") -> None:
        super().__init__(name, "enroll.agree")

    async def text(self, io: Io, form: Form) -> str:
        product = await ensure_product(io, form)
        form.cache["disclosure_version"] = product["disclosure_version"]
        return io.t(
            f"enroll/disclosure_{product['kind']}",
            product=product,
            product_name=product_name(product, io.locale),
        )


def yuan(fen: int | str) -> str:
    return f"{Decimal(int(fen)) / 100:,.2f}"


class YesNoSurveyStep(Step):
    """R-LIA-4: the safety risk survey, one question per screen, answered yes or no."""

    def __init__(self, name: str = "survey") -> None:
        self.name = name

    async def _questions(self, io: Io, form: Form) -> list[dict[str, Any]]:
        if "risk_questions" not in form.cache:
            form.cache["risk_questions"] = await io.backend.risk_questions()
        questions: list[dict[str, Any]] = form.cache["risk_questions"]
        return questions

    def _answers(self, form: Form) -> dict[str, str]:
        answers: dict[str, str] = form.cache.setdefault("survey_answers", {})
        return answers

    async def ask(self, io: Io, form: Form) -> None:
        questions = await self._questions(io, form)
        answers = self._answers(form)
        pending = [q for q in questions if q["code"] not in answers]
        if not pending:  # came back from a later step: show the last question again
            answers.pop(questions[-1]["code"], None)
            pending = [questions[-1]]
        question = pending[0]
        number = len(questions) - len(pending) + 1
        text = io.label(
            "enroll_ask.survey",
            number=number,
            total=len(questions),
            question=question["text_en"] if io.locale == "en" else question["text_zh"],
        )
        choices = [Choice("yes", io.label("enroll.yes")), Choice("no", io.label("enroll.no"))]
        await io.say(text, choice_keyboard(io, choices))

    async def on_back(self, io: Io, form: Form) -> bool:
        questions = await self._questions(io, form)
        answers = self._answers(form)
        answered = [q["code"] for q in questions if q["code"] in answers]
        if not answered:
            return False
        answers.pop(answered[-1])
        await self.ask(io, form)
        return True

    async def on_pick(self, io: Io, form: Form, value: str) -> Any:
        if value not in ("yes", "no"):
            raise Invalid("stale_choice")
        questions = await self._questions(io, form)
        answers = self._answers(form)
        pending = [q for q in questions if q["code"] not in answers]
        answers[pending[0]["code"]] = value
        if len(pending) > 1:
            await self.ask(io, form)
            return STAY
        return dict(answers)
