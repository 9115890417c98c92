"""The outbox's ``sms`` channel: an item's approved template, its values and its number, through the
configured provider. The backend rendered and checked the values (``backend/outbox/sms``); here the
template key becomes the provider's template id (``TIANBAO_SMS_TEMPLATE_IDS``)."""

from __future__ import annotations

from pydantic import SecretStr

from backend.outbox.schemas import DeliveryResult, OutboxItem, Outcome
from backend.settings import Settings
from bot.channels.sms.provider import SmsBatch, SmsProvider, SmsProviderSettings
from messages.sms import template_id_key


def provider_settings(settings: Settings) -> SmsProviderSettings:
    return SmsProviderSettings(
        provider=settings.sms_provider,
        secret_id=settings.tencent_sms_secret_id,
        secret_key=SecretStr(settings.tencent_sms_secret_key),
        sdk_app_id=settings.tencent_sms_app_id,
        sign_name=settings.sms_sign_name,
        region=settings.tencent_sms_region,
        endpoint=settings.tencent_sms_endpoint,
        rate_per_second=settings.sms_rate_per_second,
        redis_url=settings.redis_url,
        log_dir=settings.var_dir,
    )


class SmsSender:
    def __init__(self, provider: SmsProvider, settings: Settings) -> None:
        self.provider = provider
        self.sign_name = settings.sms_sign_name
        self.template_ids = settings.sms_template_ids
        # The log provider needs no approval: the template's own key names it in the log.
        self.ids_required = settings.sms_provider != "log"

    def template_id(self, item: OutboxItem) -> str | None:
        template = item.template or {}
        key = template_id_key(str(template.get("key", "")), str(template.get("locale", "")))
        found = self.template_ids.get(key, "").strip()
        return found or (None if self.ids_required else key)

    async def __call__(self, item: OutboxItem) -> DeliveryResult:
        template_id = self.template_id(item)
        if template_id is None or item.template is None:
            return DeliveryResult(
                id=item.id, outcome=Outcome.FAILED, error="no approved template for this text"
            )
        batch = SmsBatch.build(
            template_id=template_id,
            sign_name=self.sign_name,
            params=[str(value) for value in item.template.get("params", [])],
            phones=[item.address],
            session_context=f"outbox:{item.id}",
            text=item.text,
        )
        [result] = await self.provider.send(batch)
        return DeliveryResult(
            id=item.id,
            outcome=result.outcome,
            error=result.error,
            retry_after=result.retry_after,
            external_message_id=result.serial_id,
        )
