"""The broadcast contract: what to say (``BroadcastContent``), to whom (``AudienceSpec``), and the staff
API's requests and answers.

``BroadcastContent``, the shape other domains pass to ``service.create_broadcast`` and
``service.send_system_broadcast``::

    BroadcastContent(
        locales={
            "zh-CN": LocaleContent(
                chat=Part(text="台风预计今晚登陆，请做好防范。"),          # or Part(template=..., params=...)
                sections={"banana": Part(text="香蕉请立桩加固。"),        # by subject: a product code
                          "livestock": Part(template="alerts/advice_flood_livestock")},  # or a category
                sms=SmsPart(template="broadcast_warning", params={"kind": "台风预警"}),
            ),
            "en": LocaleContent(chat=Part(text="A typhoon lands tonight.")),
        },
        buttons=[[ButtonSpec(label={"zh-CN": "我要报案", "en": "Report a loss"}, callback_data="...")]],
    )

A recipient's chat message is the common text followed by the sections of what they insure (product
codes, or categories: crop, livestock, facility, index, liability), in the order given. ``text`` is plain
text (escaped); ``template`` names a ``messages/<locale>/<template>.html.j2`` rendered with ``params``. A
locale left out falls back to zh-CN. SMS goes through an approved template of ``messages/*/sms/
templates.json``; its ``token`` variable is filled with the recipient's short link (which opens the
message in web chat); leave ``sms`` out for the default text of the broadcast's kind."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Locale = Literal["zh-CN", "en"]
RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{2,12}$")]
SubjectKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Kind = Literal["warning", "reminder", "staff_message", "publicity"]
MAX_SECTIONS = 16  # the variant is a bit set of sections


class Part(BaseModel):
    """Plain text, or a message template with its parameters."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=3500)
    template: str | None = Field(default=None, pattern=r"^[a-z_]+(/[a-z0-9_]+)+$", max_length=120)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> Part:
        if (self.text is None) == (self.template is None):
            raise ValueError("give either text or template")
        return self


class SmsPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(pattern=r"^[a-z_]+$", max_length=60)
    params: dict[str, str] = Field(default_factory=dict)


class LocaleContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat: Part
    sections: dict[SubjectKey, Part] = Field(default_factory=dict, max_length=MAX_SECTIONS)
    sms: SmsPart | None = None


class ButtonSpec(BaseModel):
    """An extra button under the chat message: a tap (``callback_data``) or a link (``url``)."""

    model_config = ConfigDict(extra="forbid")

    label: dict[Locale, Annotated[str, StringConstraints(min_length=1, max_length=40)]]
    callback_data: str | None = Field(default=None, min_length=1, max_length=64)
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=300)

    @model_validator(mode="after")
    def _one_action(self) -> ButtonSpec:
        if (self.callback_data is None) == (self.url is None) or "zh-CN" not in self.label:
            raise ValueError("a button has a zh-CN label and either callback_data or url")
        return self


class BroadcastContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locales: dict[Locale, LocaleContent]
    buttons: list[list[ButtonSpec]] = Field(default_factory=list, max_length=4)

    @model_validator(mode="after")
    def _default_locale(self) -> BroadcastContent:
        if "zh-CN" not in self.locales:
            raise ValueError("zh-CN content is required (the fallback)")
        keys = {key for content in self.locales.values() for key in content.sections}
        if len(keys) > MAX_SECTIONS:
            raise ValueError(f"at most {MAX_SECTIONS} sections")
        return self

    def section_keys(self) -> list[str]:
        """Every section key in a stable order: its bit is its position (variant = bit set)."""
        seen: list[str] = []
        for locale in ("zh-CN", "en"):
            content = self.locales.get(locale)
            for key in content.sections if content else ():
                if key not in seen:
                    seen.append(key)
        return seen


class Exclusions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Skip people who got a broadcast of the same kind in the last N hours (0: no such rule).
    same_kind_within_hours: int = Field(default=0, ge=0, le=24 * 30)
    person_ids: list[int] = Field(default_factory=list, max_length=10_000)


class AudienceSpec(BaseModel):
    """Who: insureds whose policy matches every filter given (regions by any level, a prefix of the 12-digit
    code; products; policy status, default in force; subject types: product codes or categories; insured
    items inside ``geometry``), together with ``person_ids`` and the recipients of ``from_broadcast_ids``.
    Each person once, whichever filters or lists they are in."""

    model_config = ConfigDict(extra="forbid")

    region_codes: list[RegionCode] = Field(default_factory=list, max_length=500)
    product_codes: list[SubjectKey] = Field(default_factory=list, max_length=100)
    policy_statuses: list[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]] = Field(
        default_factory=list, max_length=10
    )
    subject_types: list[SubjectKey] = Field(default_factory=list, max_length=100)
    # GeoJSON Polygon or MultiPolygon (a circle as a polygon), longitude/latitude (WGS84).
    geometry: dict[str, Any] | None = None
    person_ids: list[int] = Field(default_factory=list, max_length=10_000)
    from_broadcast_ids: list[int] = Field(default_factory=list, max_length=20)
    exclusions: Exclusions = Field(default_factory=Exclusions)

    @property
    def has_policy_filter(self) -> bool:
        return bool(self.region_codes or self.product_codes or self.subject_types or self.geometry)

    @property
    def is_empty(self) -> bool:
        return not (
            self.has_policy_filter or self.person_ids or self.from_broadcast_ids or self.policy_statuses
        )


# --- the staff API ---------------------------------------------------------------------------------------


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    content: BroadcastContent
    audience: AudienceSpec
    send_at: datetime | None = None
    ack_button: bool = False


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audience: AudienceSpec


class AudienceSizeOut(BaseModel):
    people: int
    threshold: int
    needs_approval: bool


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    content: BroadcastContent
    subjects: list[SubjectKey] = Field(default_factory=list, max_length=20, description="the sample insures")
    ack_button: bool = False


class PreviewText(BaseModel):
    locale: str
    chat: str
    sms: str
    buttons: list[list[dict[str, str]]]


class PreviewOut(BaseModel):
    texts: list[PreviewText]


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_at: datetime | None = None


class BroadcastOut(BaseModel):
    id: int
    kind: str
    status: str
    source_key: str | None
    send_at: datetime | None
    ack_button: bool
    audience: dict[str, Any]
    audience_size: int | None
    recipient_count: int
    excluded_count: int
    created_by: int | None
    approved_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RegionAck(BaseModel):
    region_code: str
    recipients: int
    acked: int
    rate: float


class ProgressOut(BaseModel):
    broadcast_id: int
    status: str
    recipients: int
    excluded: dict[str, int]
    queued: int
    held: int
    sending: int
    sent: int
    delivered: int
    failed: int
    stopped: int
    failed_reasons: dict[str, int]
    rate_per_second: float
    estimated_finish: datetime | None
    acked: int
    ack_by_region: list[RegionAck]


class ResendOut(BaseModel):
    requeued: int


class AreaImportOut(BaseModel):
    accepted: int
    rejected: list[dict[str, str]]  # {"feature": index, "code", "reason"}


# The "收到 / Got it" button: ``bca:<broadcast id>`` (aiogram CallbackData packs the same string).
ACK_PREFIX = "bca"


def ack_button_data(broadcast_id: int) -> str:
    return f"{ACK_PREFIX}:{broadcast_id}"


class AckOut(BaseModel):
    broadcast_id: int
    acked_at: datetime
    first: bool  # False: this person had already tapped it


class BroadcastChatOut(BaseModel):
    """What a broadcast said to this chat's person (a text's link opens it in web chat)."""

    broadcast_id: int
    text: str
    buttons: list[list[dict[str, str]]]
